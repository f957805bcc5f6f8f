"""Tests of pggan_hub.py against a fake pytorch_GAN_zoo built here (no network, CPU only).

The fake hub repo has the real one's shape: a hubconf.py whose PGAN(pretrained, model_name,
useGPU) builds a `models.progressive_gan.ProgressiveGAN` (buildNoiseData, test, getSize,
load_state_dict), makes its optimizers with Adam(betas=[0, 0.99]) as the real repo does (so it
fails the same way on PyTorch >= 2.6), and loads its weights through
torch.hub.load_state_dict_from_url from the real URLs, i.e. from <hub dir>/checkpoints/. Its
checkpoints pickle a `models` config object, as the real ones do. Every network call is sent to
a closed local port through the proxy variables, so nothing can leave the machine.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import pggan_hub
from common import run

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pggan_hub.py")
NO_NET = {k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}

HUBCONF = textwrap.dedent('''
    import json, os
    import torch
    dependencies = ["torch"]
    URLS = {n: "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/" + f for n, f in {
        "celebAHQ-256": "celebaHQ_s6_i80000-6196db68.pth",
        "celebAHQ-512": "celebaHQ16_december_s7_i96000-9c72988c.pth",
        "DTD": "testDTD_s5_i96000-04efa39f.pth",
        "celeba": "celebaCropped_s5_i83000-2b0acc76.pth"}.items()}

    def PGAN(pretrained=False, *args, **kwargs):
        from models.progressive_gan import ProgressiveGAN
        if os.environ.get("FAKE_HUB_LOG"):
            with open(os.environ["FAKE_HUB_LOG"], "a") as f:
                f.write(json.dumps(dict(pretrained=pretrained, args=list(args), **kwargs)) + "\\n")
        if os.environ.get("FAKE_HUB_IMPORT"):  # some versions of the repo import scipy
            __import__(os.environ["FAKE_HUB_IMPORT"])
        if os.environ.get("FAKE_HUB_FAIL"):
            raise ValueError("fake failure while loading")
        model = ProgressiveGAN(useGPU=kwargs.get("useGPU", True))
        if pretrained:
            model.load_state_dict(torch.hub.load_state_dict_from_url(
                URLS[kwargs.get("model_name", "celebAHQ-256")], map_location="cpu"))
        return model
''')

PROGRESSIVE_GAN = textwrap.dedent('''
    import torch, torch.nn as nn, torch.nn.functional as F, torch.optim as optim

    class Config:  # pickled into checkpoints, like the real repo's BaseConfig
        def __init__(self, size=4):
            self.size, self.noiseVectorDim = size, 512

    class GNet(nn.Module):
        def __init__(self, size):
            super().__init__()
            self.size, self.formatLayer = size, nn.Linear(512, 3 * 4 * 4)
        def forward(self, x):
            x = x * x.shape[1] ** 0.5 / x.norm(dim=1, keepdim=True)  # the latent normalization
            x = 3 * self.formatLayer(x).view(-1, 3, 4, 4)            # unbounded, as the real one
            return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)

    class ProgressiveGAN:
        def __init__(self, useGPU=True):
            self.useGPU = useGPU and torch.cuda.is_available()
            self.device = torch.device("cuda:0" if self.useGPU else "cpu")
            self.config = Config()
            self.build()
        def build(self):
            self.netG = GNet(self.config.size).to(self.device)
            self.avgG = GNet(self.config.size).to(self.device)
            self.optimizerG = optim.Adam(self.netG.parameters(), betas=[0, 0.99], lr=0.001)
        def state_dict(self):
            return {"config": self.config, "netG": self.netG.state_dict(), "avgG": self.avgG.state_dict()}
        def load_state_dict(self, state):
            self.config = state["config"]
            self.build()
            self.netG.load_state_dict(state["netG"])
            self.avgG.load_state_dict(state["avgG"])
        def buildNoiseData(self, n_samples):
            return torch.randn(n_samples, self.config.noiseVectorDim).to(self.device), None
        def test(self, input, getAvG=False, toCPU=True):
            out = (self.avgG if getAvG else self.netG)(input.to(self.device)).detach()
            return out.cpu() if toCPU else out
        def getSize(self):
            return (self.config.size, self.config.size)

    def save_checkpoint(path, size, seed):
        torch.manual_seed(seed)
        original = torch.optim.Adam  # build with float betas: the bug is the script's to handle
        optim.Adam = lambda params, betas, lr: original(params, betas=tuple(map(float, betas)), lr=lr)
        try:
            model = ProgressiveGAN(useGPU=False)
            model.config = Config(size)
            model.build()
        finally:
            optim.Adam = original
        torch.save(model.state_dict(), path)
''')


def forget_fake_models():
    """The fake's `models` package must not leak from one test into the next."""
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]


def save_checkpoint(repo, path, size, seed=0):
    """Write a checkpoint of the fake repo's PGAN making `size` px images."""
    sys.path.insert(0, str(repo))
    try:
        forget_fake_models()
        from models.progressive_gan import save_checkpoint
        save_checkpoint(str(path), size, seed)
    finally:
        sys.path.remove(str(repo))
        forget_fake_models()
    return path


@pytest.fixture
def fake_repo(tmp_path):
    """A fake pytorch_GAN_zoo `hub` branch checkout."""
    repo = tmp_path / "pytorch_GAN_zoo"
    (repo / "models").mkdir(parents=True)
    (repo / "hubconf.py").write_text(HUBCONF)
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "progressive_gan.py").write_text(PROGRESSIVE_GAN)
    yield repo
    forget_fake_models()


@pytest.fixture
def torch_home(tmp_path, fake_repo):
    """A TORCH_HOME whose hub cache holds the fake repo and celebAHQ-512 weights (512 px)."""
    home = tmp_path / "torch_home"
    hub = home / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    os.symlink(fake_repo, hub / "facebookresearch_pytorch_GAN_zoo_hub")
    save_checkpoint(fake_repo, hub / "checkpoints" / "celebaHQ16_december_s7_i96000-9c72988c.pth", 512)
    return home


def run_script(tmp_path, *flags, torch_home=None):
    """Run pggan_hub.py as a user does, offline, logging the hub entry point's arguments."""
    log = tmp_path / "hub_calls.jsonl"
    env = dict(os.environ, **NO_NET, TORCH_HOME=str(torch_home or tmp_path / "empty_torch_home"),
               FAKE_HUB_LOG=str(log), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, SCRIPT, *flags], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def png_size(path):
    with Image.open(path) as im:
        return im.size


def test_default_call_runs_unchanged_from_the_hub_cache(tmp_path, torch_home):
    out = tmp_path / "out"
    proc, calls = run_script(tmp_path, "--out", str(out), "--save-images", "--interpolate", "4",
                             "--batch-size", "2", torch_home=torch_home)
    assert proc.returncode == 0, proc.stderr
    # The recipe's call: PGAN(model_name='celebAHQ-512', pretrained=True, useGPU=<cuda?>).
    assert calls == [{"pretrained": True, "args": [], "model_name": "celebAHQ-512", "useGPU": False}]
    assert "Downloading" not in proc.stdout + proc.stderr
    assert "seed: 0" in proc.stdout and "images/s" in proc.stdout and "ETA" in proc.stdout
    # 5 images of 512 px in one row of the grid (padding 2), as the recipe shows them.
    assert png_size(out / "pggan_celebAHQ-512.png") == (5 * 514 + 2, 516)
    singles = sorted(p.name for p in out.glob("pggan_celebAHQ-512_0*.png"))
    assert singles == [f"pggan_celebAHQ-512_{i:05d}.png" for i in range(5)]
    assert png_size(out / singles[0]) == (512, 512)
    assert png_size(out / "pggan_celebAHQ-512_interp.png") == (4 * 514 + 2, 516)
    with Image.open(out / "pggan_celebAHQ-512_interp.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (512, 512)  # 4 steps there, 2 back
        gif.seek(0)
        first = gif.convert("RGB").copy()
    # The walk starts at image 0 of the grid (GIF colours are quantized, hence the tolerance).
    assert np.abs(np.asarray(first, dtype=np.int16) - pixels(out / singles[0])).mean() < 8


def test_seed_reproduces_images(tmp_path, fake_repo, torch_home):
    def images(name, *flags):
        proc, _ = run_script(tmp_path, "--out", str(tmp_path / name), "--save-images",
                             "--num-images", "3", "--nrow", "3", *flags, torch_home=torch_home)
        assert proc.returncode == 0, proc.stderr
        return np.stack([pixels(tmp_path / name / f"pggan_celebAHQ-512_{i:05d}.png") for i in range(3)])

    a = images("a", "--seed", "7")
    assert np.array_equal(images("b", "--seed", "7"), a)
    d = images("d", "--seed", "8")
    assert all(np.abs(x - y).mean() > 5 for x, y in zip(a, d))


def test_local_repo_and_weights_need_no_cache_and_no_network(tmp_path, fake_repo):
    weights = save_checkpoint(fake_repo, tmp_path / "my_dtd.pth", 128, seed=1)  # 128 px like DTD
    out = tmp_path / "out"
    proc, calls = run_script(tmp_path, "--repo", str(fake_repo), "--weights", str(weights),
                             "--model-name", "DTD", "--num-images", "3", "--half", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    # --weights: the entry point builds the model (pretrained=False), the script loads the file.
    assert calls == [{"pretrained": False, "args": [], "model_name": "DTD", "useGPU": False}]
    assert png_size(out / "pggan_DTD.png") == (3 * 130 + 2, 132)
    assert not (tmp_path / "empty_torch_home" / "hub" / "checkpoints" / "testDTD_s5_i96000-04efa39f.pth").exists()


def test_offline_without_cache_is_one_clear_error(tmp_path):
    proc, calls = run_script(tmp_path, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot download")
    hub = tmp_path / "empty_torch_home" / "hub"
    assert str(hub / "facebookresearch_pytorch_GAN_zoo_hub") in lines[0]
    assert str(hub / "checkpoints" / "celebaHQ16_december_s7_i96000-9c72988c.pth") in lines[0]
    assert "--repo" in lines[0] and "--weights" in lines[0]


def test_offline_with_repo_cached_names_only_the_weights(tmp_path, fake_repo, monkeypatch, capsys):
    hub = tmp_path / "torch_home" / "hub"
    hub.mkdir(parents=True)
    os.symlink(fake_repo, hub / "facebookresearch_pytorch_GAN_zoo_hub")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for k, v in NO_NET.items():
        monkeypatch.setenv(k, v)
    assert run(pggan_hub.main, ["--model-name", "celeba", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err  # torch.hub's "Using cache found in ..." line, then ours
    assert err.splitlines()[-1].startswith("error: cannot download") and "Traceback" not in err
    assert str(hub / "checkpoints" / "celebaCropped_s5_i83000-2b0acc76.pth") in err
    assert "git clone" not in err  # the repo is there


def test_truncated_cached_weights_are_one_clear_error(tmp_path, torch_home, monkeypatch, capsys):
    cached = torch_home / "hub" / "checkpoints" / "celebaHQ16_december_s7_i96000-9c72988c.pth"
    cached.write_bytes(cached.read_bytes()[:1000])  # an interrupted copy
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    assert run(pggan_hub.main, ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"error: cannot read the weights {cached}") and "delete it" in err


def test_missing_package_of_the_repo_is_one_clear_error(tmp_path, fake_repo, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_HUB_IMPORT", "no_such_package_for_pggan")
    assert run(pggan_hub.main, ["--repo", str(fake_repo), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the hub repo in") and "pip install no_such_package_for_pggan" in err


def test_adam_workaround_is_needed_and_scoped(tmp_path, fake_repo, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    weights = save_checkpoint(fake_repo, tmp_path / "w.pth", 8)
    args = pggan_hub.parse_args(["--repo", str(fake_repo), "--weights", str(weights)])
    original = torch.optim.Adam
    # The fake fails as the real repo does on PyTorch >= 2.6 when nothing is done ...
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        torch.hub.load(str(fake_repo), "PGAN", source="local", pretrained=False, useGPU=False)
    # ... loads with the workaround, and Adam is the original afterwards ...
    model = pggan_hub.load_model(args, use_gpu=False)
    assert model.getSize() == (8, 8) and torch.optim.Adam is original
    assert isinstance(model.optimizerG, original) and model.optimizerG.defaults["betas"] == (0.0, 0.99)
    # ... also when loading fails.
    monkeypatch.setenv("FAKE_HUB_FAIL", "1")
    with pytest.raises(ValueError, match="fake failure"):
        pggan_hub.load_model(args, use_gpu=False)
    assert torch.optim.Adam is original


@pytest.mark.parametrize("flags, message", [
    (["--repo", "no/such/dir"], "has no hubconf.py"),
    (["--weights", "no_such.pth"], "does not exist"),
    (["--weights", "{garbage}"], "is not a pytorch_GAN_zoo checkpoint"),
    (["--weights", "{misfit}"], "does not fit the hub's PGAN (KeyError"),
    (["--interpolate", "1"], "2 or more steps"),
    (["--interpolate", "3", "--num-images", "1"], "--num-images 2 or more"),
    (["--model-name", "celebahq-512"], "invalid choice"),
    (["--num-images", "0"], "must be a positive integer"),
    pytest.param(["--device", "cuda"], "no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_user_errors_are_one_line(tmp_path, fake_repo, capsys, flags, message):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    misfit = tmp_path / "misfit.pth"
    torch.save({"netG": {}}, misfit)  # a torch file, but no PGAN checkpoint
    flags = [f.format(garbage=garbage, misfit=misfit) for f in flags]
    if "--weights" in flags and "--repo" not in flags:
        flags += ["--repo", str(fake_repo)]
    try:
        status = run(pggan_hub.main, [*flags, "--out", str(tmp_path / "out")])
    except SystemExit as e:  # argparse errors exit straight away
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error:") and message in err and "Traceback" not in err


def test_batch_size_and_half_precision_change_little(tmp_path, fake_repo):
    weights = save_checkpoint(fake_repo, tmp_path / "w.pth", 16)
    base = ["--repo", str(fake_repo), "--weights", str(weights)]
    model = pggan_hub.load_model(pggan_hub.parse_args(base), use_gpu=False)
    noise, _ = model.buildNoiseData(5)
    cpu = torch.device("cpu")

    def images(*flags):
        out, rate = pggan_hub.generate(model, noise, pggan_hub.parse_args(base + list(flags)), cpu, log=False)
        assert out.shape == (5, 3, 16, 16) and out.dtype == torch.float32 and rate > 0
        return out

    full = images()
    # Other batches only change the float summation order.
    assert torch.allclose(images("--batch-size", "2"), full, atol=1e-5)
    half = images("--half", "--batch-size", "2")  # bfloat16 keeps about 3 digits
    assert (half - full).abs().max() < 0.05 * full.abs().max() and not torch.equal(half, full)
    assert not torch.equal(images("--avg-generator"), full)  # the moving-average generator


def test_slerp_ends_and_norm():
    z0, z1 = torch.randn(512), torch.randn(512)
    assert torch.allclose(pggan_hub.slerp(z0, z1, torch.tensor(0.0)), z0, atol=1e-5)
    assert torch.allclose(pggan_hub.slerp(z0, z1, torch.tensor(1.0)), z1, atol=1e-5)
    mid = pggan_hub.slerp(z0, z1, torch.tensor(0.5))
    assert mid.norm() > 0.95 * min(z0.norm(), z1.norm())  # no shrinking toward the origin
