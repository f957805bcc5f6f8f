"""What every test file needs: run a script as a user does, and check what a user would see."""
import csv
import os
import signal
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
       **{k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                            "HTTPS_PROXY")}}  # no network, ever
# For tests/test_gpu.py: the user's CUDA_VISIBLE_DEVICES from before the root conftest.py hid
# CUDA (None: unset, every GPU visible), in the environment of the scripts it starts.
_CUDA = os.environ.get("GAN_EXAMPLES_CUDA_VISIBLE_DEVICES",
                       os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
GPU_ENV = {"CUDA_VISIBLE_DEVICES": None if _CUDA == "unset" else _CUDA, "PYTHONUNBUFFERED": "1"}


def environment(env=None):
    """ENV updated with env; a None value removes that variable."""
    return {k: v for k, v in {**ENV, **(env or {})}.items() if v is not None}


def script(name, *args, check=True, timeout=600, env=None, cwd=None):
    """Run ROOT/name with real flags in a subprocess (env: see environment()); returns the
    CompletedProcess."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, name), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout,
                       env=environment(env), cwd=cwd)
    if check:
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return p


def start(name, *args, env=None, cwd=None):
    """Start ROOT/name in its own process group (for signal tests); returns the Popen."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, name), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment(env), cwd=cwd, start_new_session=True)


def signal_at(name, *args, at, sig=signal.SIGINT, env=None, cwd=None, timeout=300):
    """Start ROOT/name in its own process group, wait for a progress line on its stdout (one
    starting with `at`, or matching it if `at` is a compiled regex), send `sig` to the whole group
    (as a terminal's Ctrl-C, docker and Slurm do) and collect the result: a CompletedProcess with
    all of stdout and stderr. Fails the test if the line never comes; never leaves a process."""
    p = start(name, *args, env=env, cwd=cwd)
    killer = threading.Timer(timeout, lambda: _killpg(p, signal.SIGKILL))  # a hung run
    killer.start()
    seen, found, err = [], False, ""
    try:
        for line in p.stdout:
            seen.append(line)
            if at.search(line) if hasattr(at, "search") else line.startswith(at):
                found = True
                _killpg(p, sig)
                break
        out, err = p.communicate(timeout=timeout)
        seen.append(out)
    finally:
        killer.cancel()
        if p.poll() is None:
            _killpg(p, signal.SIGKILL)
            p.communicate()
    assert found, f"no line starting {at!r} on stdout:\n{''.join(seen)[-2000:]}{err[-2000:]}"
    return subprocess.CompletedProcess(p.args, p.returncode, "".join(seen), err)


def _killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:  # the group has ended already
        pass


def assert_user_error(p, *words):
    """Exit 2 with exactly one `error:` line on stderr, no traceback, mentioning `words`."""
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, p.stderr[-3000:]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def rows(path):
    """metrics.csv as a list of dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_mnist(root, n=64, name="MNIST", n_test=None):
    """n small real-format MNIST digits (a bar whose column is the class, plus noise) as
    torchvision's raw IDX files under root/<name>/raw (train and t10k); returns root for
    `--dataroot`. name="FashionMNIST" gives the Fashion-MNIST layout."""
    import numpy as np
    raw = os.path.join(root, name, "raw")
    os.makedirs(raw, exist_ok=True)
    for prefix, count, seed in (("train", n, 0), ("t10k", n_test or max(n // 2, 10), 1)):
        rng = np.random.default_rng(seed)
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
        for img, c in zip(images, labels):
            img[4:24, 3 + 2 * c:5 + 2 * c] = 255
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            with open(os.path.join(raw, f"{prefix}-{kind}-ubyte"), "wb") as f:
                f.write(bytes([0, 0, 8, array.ndim]))  # IDX: magic, big-endian sizes, bytes
                f.write(np.array(array.shape, dtype=">i4").tobytes())
                f.write(array.tobytes())
    return str(root)


def make_image_folder(root, n=16, size=32, flat=False, corrupt=False, seed=0):
    """n small real JPEGs (a bright disc on a noisy background) in root/img_align_celeba/ (the
    DCGAN tutorial's CelebA layout) or, with flat, directly in root; corrupt adds one file that
    is not a JPEG. Returns root, usable as dcgan_celeba.py --dataroot."""
    import numpy as np
    from PIL import Image
    folder = root if flat else os.path.join(root, "img_align_celeba")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
        cx, cy = size // 2 + rng.integers(-size // 8, size // 8 + 1, size=2)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size // 3) ** 2] = rng.integers(120, 255, size=3)
        Image.fromarray(img).save(os.path.join(folder, f"{i + 1:06d}.jpg"), quality=90)
    if corrupt:
        with open(os.path.join(folder, f"{n + 1:06d}.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return str(root)


# -- pggan_hub.py: an offline pytorch_GAN_zoo ---------------------------------------------------
FAKE_HUBCONF = '''\
"""hubconf.py of a tiny offline stand-in for facebookresearch/pytorch_GAN_zoo (branch hub):
the real entry point's signature, URLs and loading, a small network."""
import json
import os

import torch.utils.model_zoo as model_zoo

dependencies = ['torch']


def PGAN(pretrained=False, *args, **kwargs):
    """Progressive growing model (as the real one: model_name picks the checkpoint)."""
    from models.progressive_gan import ProgressiveGAN as PGAN
    if os.environ.get("FAKE_HUB_LOG"):  # for tests: how the script called the entry point
        with open(os.environ["FAKE_HUB_LOG"], "a") as f:
            f.write(json.dumps(dict(pretrained=pretrained, args=list(args), **kwargs)) + "\\n")
    if os.environ.get("FAKE_HUB_IMPORT"):  # for tests: a package the repository lacks
        __import__(os.environ["FAKE_HUB_IMPORT"])
    if 'config' not in kwargs or kwargs['config'] is None:
        kwargs['config'] = {}
    model = PGAN(useGPU=kwargs.get('useGPU', True), storeAVG=True, **kwargs['config'])
    url = 'https://dl.fbaipublicfiles.com/gan_zoo/PGAN/'
    checkpoint = {"celebAHQ-256": url + 'celebaHQ_s6_i80000-6196db68.pth',
                  "celebAHQ-512": url + 'celebaHQ16_december_s7_i96000-9c72988c.pth',
                  "DTD": url + 'testDTD_s5_i96000-04efa39f.pth',
                  "celeba": url + "celebaCropped_s5_i83000-2b0acc76.pth"}
    if pretrained:
        if "model_name" in kwargs:
            if kwargs["model_name"] not in checkpoint.keys():
                raise ValueError("model_name should be in " + str(checkpoint.keys()))
        else:
            print("Loading default model : celebaHQ-256")
            kwargs["model_name"] = "celebAHQ-256"
        state_dict = model_zoo.load_url(checkpoint[kwargs["model_name"]], map_location='cpu')
        model.load_state_dict(state_dict)
    return model
'''

FAKE_MODELS = {
    "models/__init__.py": "",
    "models/utils/__init__.py": "",
    "models/utils/config.py": '''\
class BaseConfig():
    """An empty class used for configuration members (pickled into checkpoints)."""

    def __init__(self, orig=None):
        pass


def updateConfig(obj, ref):
    items = ref.items() if isinstance(ref, dict) else vars(ref).items()
    for member, value in items:
        setattr(obj, member, value)
''',
    "models/networks/__init__.py": "",
    "models/networks/custom_layers.py": '''\
import math

import torch
import torch.nn as nn


class NormalizationLayer(nn.Module):
    def forward(self, x, epsilon=1e-8):
        return x * (((x**2).mean(dim=1, keepdim=True) + epsilon).rsqrt())


def Upscale2d(x, factor=2):
    s = x.size()
    x = x.view(-1, s[1], s[2], 1, s[3], 1).expand(-1, s[1], s[2], factor, s[3], factor)
    return x.contiguous().view(-1, s[1], s[2] * factor, s[3] * factor)


class ConstrainedLayer(nn.Module):
    """The equalized learning rate: weights N(0, 1), scaled at run time (keys module.*)."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.module.bias.data.fill_(0)
        self.module.weight.data.normal_(0, 1)
        self.weight = math.sqrt(2.0 / (module.weight.numel() / module.weight.size(0)))

    def forward(self, x):
        return self.module(x) * self.weight


class EqualizedConv2d(ConstrainedLayer):
    def __init__(self, nChannelsPrevious, nChannels, kernelSize, padding=0):
        super().__init__(nn.Conv2d(nChannelsPrevious, nChannels, kernelSize, padding=padding))


class EqualizedLinear(ConstrainedLayer):
    def __init__(self, nChannelsPrevious, nChannels):
        super().__init__(nn.Linear(nChannelsPrevious, nChannels))
''',
    "models/networks/progressive_conv_net.py": '''\
import torch.nn as nn

from .custom_layers import EqualizedConv2d, EqualizedLinear, NormalizationLayer, Upscale2d


class GNet(nn.Module):
    def __init__(self, dimLatent, depthScale0, dimOutput=3):
        super().__init__()
        self.dimOutput, self.scalesDepth = dimOutput, [depthScale0]
        self.formatLayer = EqualizedLinear(dimLatent, 16 * depthScale0)
        self.groupScale0 = nn.ModuleList([EqualizedConv2d(depthScale0, depthScale0, 3, padding=1)])
        self.scaleLayers = nn.ModuleList()
        self.toRGBLayers = nn.ModuleList([EqualizedConv2d(depthScale0, dimOutput, 1)])
        self.normalizationLayer = NormalizationLayer()
        self.leakyRelu = nn.LeakyReLU(0.2)

    def addScale(self, depthNewScale):
        depthLastScale = self.scalesDepth[-1]
        self.scalesDepth.append(depthNewScale)
        self.scaleLayers.append(nn.ModuleList([
            EqualizedConv2d(depthLastScale, depthNewScale, 3, padding=1),
            EqualizedConv2d(depthNewScale, depthNewScale, 3, padding=1)]))
        self.toRGBLayers.append(EqualizedConv2d(depthNewScale, self.dimOutput, 1))

    def getOutputSize(self):
        side = 4 * (2**(len(self.toRGBLayers) - 1))
        return (side, side)

    def forward(self, x):
        x = self.normalizationLayer(x)
        x = self.leakyRelu(self.formatLayer(x.view(len(x), -1))).view(len(x), -1, 4, 4)
        x = self.normalizationLayer(x)
        for convLayer in self.groupScale0:
            x = self.normalizationLayer(self.leakyRelu(convLayer(x)))
        for layerGroup in self.scaleLayers:
            x = Upscale2d(x)
            for convLayer in layerGroup:
                x = self.normalizationLayer(self.leakyRelu(convLayer(x)))
        return self.toRGBLayers[-1](x)


class DNet(nn.Module):
    def __init__(self, depthScale0, dimInput=3):
        super().__init__()
        self.fromRGBLayers = nn.ModuleList([EqualizedConv2d(dimInput, depthScale0, 1)])
        self.decisionLayer = EqualizedLinear(depthScale0, 1)

    def forward(self, x):
        return self.decisionLayer(self.fromRGBLayers[0](x).mean(dim=(2, 3)))
''',
    "models/base_GAN.py": '''\
from copy import deepcopy

import torch
import torch.nn as nn

from .utils.config import BaseConfig, updateConfig


class BaseGAN():
    def __init__(self, dimLatentVector, dimOutput=3, useGPU=True, baseLearningRate=0.001,
                 **kwargs):
        if 'config' not in vars(self):
            self.config = BaseConfig()
        self.useGPU = useGPU and torch.cuda.is_available()
        self.device = torch.device("cuda:0" if self.useGPU else "cpu")
        self.config.noiseVectorDim = dimLatentVector
        self.config.dimOutput = dimOutput
        self.config.learningRate = baseLearningRate
        self.netD = self.getNetD()
        self.netG = self.getNetG()
        self.updateSolversDevice()

    def test(self, input, getAvG=False, toCPU=True):
        input = input.to(self.device)
        if getAvG:
            return self.avgG(input).cpu() if toCPU else self.avgG(input)
        elif toCPU:
            return self.netG(input).detach().cpu()
        return self.netG(input).detach()

    def buildAvG(self):
        self.avgG = deepcopy(self.getOriginalG())
        for param in self.avgG.parameters():
            param.requires_grad = False
        if self.useGPU:
            self.avgG = nn.DataParallel(self.avgG)
            self.avgG.to(self.device)

    def updateSolversDevice(self, buildAvG=True):
        if buildAvG:
            self.buildAvG()
        if not isinstance(self.netD, nn.DataParallel) and self.useGPU:
            self.netD = nn.DataParallel(self.netD)
        if not isinstance(self.netG, nn.DataParallel) and self.useGPU:
            self.netG = nn.DataParallel(self.netG)
        self.netD.to(self.device)
        self.netG.to(self.device)
        self.optimizerD = self.getOptimizerD()
        self.optimizerG = self.getOptimizerG()

    def buildNoiseData(self, n_samples):
        inputLatent = torch.randn(n_samples, self.config.noiseVectorDim).to(self.device)
        return inputLatent, None

    def getOriginalG(self):
        return self.netG.module if isinstance(self.netG, nn.DataParallel) else self.netG

    def getOriginalD(self):
        return self.netD.module if isinstance(self.netD, nn.DataParallel) else self.netD

    def getOriginalAvgG(self):
        return self.avgG.module if isinstance(self.avgG, nn.DataParallel) else self.avgG

    def getStateDict(self, saveTrainTmp=False):
        return {'config': self.config, 'netG': self.getOriginalG().state_dict(),
                'netD': self.getOriginalD().state_dict(),
                'avgG': self.getOriginalAvgG().state_dict()}

    def save(self, path, saveTrainTmp=False):
        torch.save(self.getStateDict(saveTrainTmp=saveTrainTmp), path)

    def load_state_dict(self, in_state, loadG=True, loadD=True, loadConfig=True,
                        finetuning=False):
        if loadConfig:
            updateConfig(self.config, in_state['config'])
        self.netG = self.getNetG()
        self.getOriginalG().load_state_dict(in_state['netG'])
        self.buildAvG()
        self.getOriginalAvgG().load_state_dict(in_state['avgG'])
        self.netD = self.getNetD()
        self.getOriginalD().load_state_dict(in_state['netD'])
        self.updateSolversDevice(buildAvG=False)
''',
    "models/progressive_gan.py": '''\
import torch.optim as optim

from .base_GAN import BaseGAN
from .networks.progressive_conv_net import DNet, GNet
from .utils.config import BaseConfig


class ProgressiveGAN(BaseGAN):
    def __init__(self, dimLatentVector=512, depthScale0=512, depthOtherScales=None, **kwargs):
        if 'config' not in vars(self):
            self.config = BaseConfig()
        self.config.depthScale0 = depthScale0
        self.config.depthOtherScales = list(depthOtherScales or [])
        self.config.alpha = 0
        BaseGAN.__init__(self, dimLatentVector, **kwargs)

    def getNetG(self):
        gnet = GNet(self.config.noiseVectorDim, self.config.depthScale0, self.config.dimOutput)
        for depth in self.config.depthOtherScales:
            gnet.addScale(depth)
        return gnet

    def getNetD(self):
        return DNet(self.config.depthScale0, self.config.dimOutput)

    def getOptimizerD(self):  # betas=[0, 0.99] as the real repository: PyTorch >= 2.6 refuses
        return optim.Adam(filter(lambda p: p.requires_grad, self.netD.parameters()),
                          betas=[0, 0.99], lr=self.config.learningRate)

    def getOptimizerG(self):
        return optim.Adam(filter(lambda p: p.requires_grad, self.netG.parameters()),
                          betas=[0, 0.99], lr=self.config.learningRate)

    def getSize(self):
        return self.getOriginalG().getOutputSize()
''',
}

FAKE_CHECKPOINTS = {"celebAHQ-256": "celebaHQ_s6_i80000-6196db68.pth",
                    "celebAHQ-512": "celebaHQ16_december_s7_i96000-9c72988c.pth",
                    "DTD": "testDTD_s5_i96000-04efa39f.pth",
                    "celeba": "celebaCropped_s5_i83000-2b0acc76.pth"}


def save_fake_pgan(repo_dir, path, size=16, seed=0, depth=8):
    """A checkpoint in pytorch_GAN_zoo's format ({'config': BaseConfig, 'netG', 'netD',
    'avgG'}, the config pickled from models.utils.config) of a `size` px PGAN of the fake repo."""
    import torch
    sys.path.insert(0, str(repo_dir))
    adam = torch.optim.Adam
    try:
        from models.progressive_gan import ProgressiveGAN
        torch.optim.Adam = lambda params, betas, lr: adam(params, betas=tuple(map(float, betas)),
                                                          lr=lr)
        torch.manual_seed(seed)
        scales = max(0, int(size).bit_length() - 3)  # 4 px, then doubling
        model = ProgressiveGAN(useGPU=False, depthScale0=depth, depthOtherScales=[depth] * scales)
        for p in model.avgG.parameters():  # the moving average differs a little after training
            p.data.add_(0.05 * torch.randn_like(p))
        model.save(str(path))
    finally:
        torch.optim.Adam = adam
        sys.path.remove(str(repo_dir))
        for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
            del sys.modules[name]
    return str(path)


def make_fake_hub(root, size=16, models=("celebAHQ-512",)):
    """A tiny pytorch_GAN_zoo `hub` branch under root/pytorch_GAN_zoo (hubconf.py's PGAN(
    pretrained, model_name, useGPU), models/ with ProgressiveGAN: buildNoiseData, test, getSize,
    Adam(betas=[0, 0.99]) as the real one), and a TORCH_HOME whose hub cache holds a `size` px
    checkpoint in the real format for each of `models`. Returns (repo_dir, env): pass
    `--repo repo_dir` and run with env; nothing touches the network."""
    root = os.path.abspath(str(root))
    repo = os.path.join(root, "pytorch_GAN_zoo")
    for rel, text in {"hubconf.py": FAKE_HUBCONF, **FAKE_MODELS}.items():
        os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
        with open(os.path.join(repo, rel), "w") as f:
            f.write(text)
    torch_home = os.path.join(root, "torch_home")
    os.makedirs(os.path.join(torch_home, "hub", "checkpoints"), exist_ok=True)
    for i, name in enumerate(models):
        save_fake_pgan(repo, os.path.join(torch_home, "hub", "checkpoints",
                                          FAKE_CHECKPOINTS[name]), size=size, seed=i)
    return repo, {"TORCH_HOME": torch_home}


def in_process(main, *args):
    """common.run(main, args) in this process: the exit status a user would see."""
    import common
    try:
        return common.run(main, [str(a) for a in args])
    except SystemExit as e:  # argparse's own errors
        return e.code


def in_process_cpu(main, *args):
    """in_process with `--device cpu` added (unless args name a device): the tests' runs stay on
    the CPU on any machine."""
    return in_process(main, *args, *([] if "--device" in map(str, args) else ["--device", "cpu"]))


def assert_seed_repeats_a_run(train):
    """train(name, seed) runs a script into a folder of that name and returns it: the same
    seed gives the same metrics.csv (timings aside) and generator weights, another seed not."""
    import torch

    def record(out):
        figures = [{k: v for k, v in r.items() if k != "steps_per_sec"}
                   for r in rows(os.path.join(out, "metrics.csv"))]
        weights = torch.load(os.path.join(out, "generator_weights.pt"), weights_only=True)
        return figures, weights["state_dict"]
    a, b, c = record(train("a", 1)), record(train("b", 1)), record(train("c", 2))
    assert a[0] == b[0] and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
    assert a[0] != c[0] and not all(torch.equal(a[1][k], c[1][k]) for k in a[1])


CELEBA_SMALL = ["--image-size", 32, "--workers", 0, "--ngf", 8, "--ndf", 8,  # tiny, quick
                "--device", "cpu"]  # (CUDA is hidden from the tests; MPS is not)


def celeba(*args):
    """dcgan_celeba.py's main in this process, on the CPU: the exit status a user would see."""
    import dcgan_celeba
    return in_process_cpu(dcgan_celeba.main, *args)


def assert_one_error(status, err, *words):
    """assert_user_error for an in-process run: its exit status and what it wrote to stderr."""
    return assert_user_error(subprocess.CompletedProcess([], status, "", err), *words)


def ckpt(path):
    """A checkpoint.pt as --resume reads it (weights only, nothing unpickled)."""
    import torch
    return torch.load(path, map_location="cpu", weights_only=True)



def count_syncs(fn, *args, show=False):
    """(fn(*args), sites): the host syncs while fn ran, a Counter by call site (.total() for
    all), counted as aten._local_scalar_dense calls (`.item()`, `float(t)`, `int(t)`, `bool(t)`,
    `if t:`; each one stalls a GPU), leaving out the optimizers' own (made in torch/optim/
    other than swa_utils.py, whose AveragedModel a script chooses to use). show=True prints
    each call site's Python stack once, with its count."""
    import traceback
    from collections import Counter

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    torch_dir = os.path.dirname(torch.__file__)
    wrappers = [os.path.join(torch_dir, *f) for f in (
        ("_tensor.py",), ("_ops.py",), ("_compile.py",), ("utils", "_python_dispatch.py"))]
    dynamo = os.path.join(torch_dir, "_dynamo", "")
    optim = os.path.join(torch_dir, "optim", "")
    sites = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                stack = [f for f in traceback.extract_stack()[:-1]
                         if f.filename not in wrappers and not f.filename.startswith(dynamo)]
                caller = stack[-1].filename
                if not (caller.startswith(optim) and not caller.endswith("swa_utils.py")):
                    sites["".join(traceback.format_list(stack[-5:]))] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        result = fn(*args)
    if show:
        for site, n in sites.most_common():
            print(f"-- {n} host syncs from:\n{site}")
    return result, sites


def tiny_inception():
    """A stand-in for torch-fidelity's InceptionV3 feature extractor with its calling
    convention (uint8 (N, 3, H, W) in; '2048' features and 'logits_unbiased' out), buildable
    offline: the real weights cannot be downloaded here."""
    import torch
    import torch.nn.functional as F
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class TinyInception(FeatureExtractorBase):
        calls = []

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            g = torch.Generator().manual_seed(0)
            self.features = torch.randn(3 * 4 * 4, 16, generator=g)
            self.classes = torch.randn(16, 10, generator=g) * 3

        @staticmethod
        def get_provided_features_list():
            return "2048", "logits_unbiased"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"fid": "2048", "isc": "logits_unbiased", "kid": "2048"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

        def forward(self, x):
            assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3, x.shape
            TinyInception.calls.append(x.clone())
            f = F.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1) @ self.features
            out = {"2048": f, "logits_unbiased": f @ self.classes}
            return tuple(out[name] for name in self.features_list)
    return TinyInception
