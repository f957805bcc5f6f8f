"""Generation throughput (images/s) of pggan_hub.py, end to end (a subprocess, real flags).

    python benchmarks/bench_pggan.py [--num-images 8] [--batch-sizes 1 8]
    python benchmarks/bench_pggan.py --repo ~/src/pytorch_GAN_zoo     # the real model, if here

Without --repo it writes, in a temporary TORCH_HOME, a stand-in hub repo whose PGAN generator
has the PGGAN paper's 512 px layer widths (4x4 x 512 channels, then 8..512 px with 512, 512,
512, 256, 128, 64, 32 channels; two 3x3 convolutions per scale, pixel norm, leaky ReLU, 1x1
to RGB) and random weights: about the real celebAHQ-512 generator's arithmetic, none of its
quality. With --repo (a clone of facebookresearch/pytorch_GAN_zoo, branch hub) the real model
is used, its weights from the torch.hub cache or --weights. Prints the script's own images/s
for each batch size, on the CPU and, when there is one, on CUDA (also with --half); asserts
nothing.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "pggan_hub.py")
WEIGHTS_FILE = "celebaHQ16_december_s7_i96000-9c72988c.pth"

HUBCONF = textwrap.dedent('''
    import torch
    dependencies = ["torch"]

    def PGAN(pretrained=False, *args, **kwargs):
        from models.progressive_gan import ProgressiveGAN
        model = ProgressiveGAN(useGPU=kwargs.get("useGPU", True))
        if pretrained:
            model.load_state_dict(torch.hub.load_state_dict_from_url(
                "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/''' + WEIGHTS_FILE + '''",
                map_location="cpu"))
        return model
''')

STAND_IN = textwrap.dedent('''
    import torch, torch.nn as nn, torch.nn.functional as F

    WIDTHS = [512, 512, 512, 512, 256, 128, 64, 32]  # 4, 8, ..., 512 px (PGGAN paper, table 2)

    def pixel_norm(x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)

    class GNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.formatLayer = nn.Linear(512, 16 * WIDTHS[0])
            self.conv0 = nn.Conv2d(WIDTHS[0], WIDTHS[0], 3, padding=1)
            self.scales = nn.ModuleList(nn.ModuleList([nn.Conv2d(a, b, 3, padding=1),
                                                       nn.Conv2d(b, b, 3, padding=1)])
                                        for a, b in zip(WIDTHS, WIDTHS[1:]))
            self.toRGB = nn.Conv2d(WIDTHS[-1], 3, 1)
        def forward(self, z):
            x = F.leaky_relu(self.formatLayer(pixel_norm(z)), 0.2).view(len(z), WIDTHS[0], 4, 4)
            x = pixel_norm(F.leaky_relu(self.conv0(pixel_norm(x)), 0.2))
            for a, b in self.scales:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = pixel_norm(F.leaky_relu(a(x), 0.2))
                x = pixel_norm(F.leaky_relu(b(x), 0.2))
            return self.toRGB(x)

    class ProgressiveGAN:
        def __init__(self, useGPU=True):
            self.device = torch.device("cuda:0" if useGPU and torch.cuda.is_available() else "cpu")
            self.netG = GNet().to(self.device).eval()
        def load_state_dict(self, state):
            self.netG.load_state_dict(state["netG"])
        def buildNoiseData(self, n_samples):
            return torch.randn(n_samples, 512).to(self.device), None
        def test(self, input, getAvG=False, toCPU=True):
            out = self.netG(input.to(self.device)).detach()
            return out.cpu() if toCPU else out
        def getSize(self):
            return (512, 512)
''')


def make_stand_in(torch_home):
    repo = os.path.join(torch_home, "hub", "facebookresearch_pytorch_GAN_zoo_hub")
    os.makedirs(os.path.join(repo, "models"))
    os.makedirs(os.path.join(torch_home, "hub", "checkpoints"))
    with open(os.path.join(repo, "hubconf.py"), "w") as f:
        f.write(HUBCONF)
    open(os.path.join(repo, "models", "__init__.py"), "w").close()
    with open(os.path.join(repo, "models", "progressive_gan.py"), "w") as f:
        f.write(STAND_IN)
    sys.path.insert(0, repo)
    from models.progressive_gan import GNet
    sys.path.remove(repo)
    torch.manual_seed(0)
    g = GNet()
    print(f"stand-in generator: {sum(p.numel() for p in g.parameters()) / 1e6:.1f} M parameters")
    torch.save({"netG": g.state_dict()},
               os.path.join(torch_home, "hub", "checkpoints", WEIGHTS_FILE))


def run(flags, env):
    proc = subprocess.run([sys.executable, SCRIPT, *flags], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1]}"
    m = re.search(r"generated \d+ images at ([\d.]+) images/s", proc.stdout)
    return f"{float(m.group(1)):8.2f} images/s"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-images", type=int, default=8)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repo", help="a clone of the real repo (hub branch); default: the stand-in")
    p.add_argument("--weights", help="a local .pth of the real repo (with --repo)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (OMP_NUM_THREADS)")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MPLBACKEND="Agg")
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        extra = []
        if args.repo:
            extra = ["--repo", args.repo] + (["--weights", args.weights] if args.weights else [])
            print(f"model: the real pytorch_GAN_zoo PGAN from {args.repo}")
        else:
            env["TORCH_HOME"] = tmp
            make_stand_in(tmp)
            print("model: the stand-in (PGGAN-512 layer widths, random weights)")
        devices = [("cpu", [])] + ([("cuda", []), ("cuda", ["--half"]),
                                    ("cuda", ["--half", "fp16"])]
                                   if torch.cuda.is_available() else [])
        for device, half in devices:
            for bs in args.batch_sizes:
                flags = extra + ["--device", device, "--num-images", str(args.num_images),
                                 "--batch-size", str(bs), "--out", os.path.join(tmp, "out"),
                                 "--overwrite", *half]
                label = f"{device} {' '.join(half) or 'fp32':12s} batch {bs:3d}"
                print(f"{label}: {run(flags, env)}  ({args.num_images} images, model.test only)",
                      flush=True)
        flags = extra + ["--num-images", str(args.num_images), "--save-images", "--overwrite",
                         "--out", os.path.join(tmp, "out")]
        print(f"default device, with --save-images: {run(flags, env)}  (images/s of generation; "
              f"PNG writing is included per batch)")


if __name__ == "__main__":
    main()
