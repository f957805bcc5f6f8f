"""Images/s of dcgan_celeba.py against the PyTorch DCGAN Tutorial's own code, run its way.

    python benchmarks/bench_celeba.py                       # synthetic 178x218 JPEG folder
    python benchmarks/bench_celeba.py --dataroot data/celeba --images 0   # real CelebA
    python benchmarks/bench_celeba.py --variant "--amp off" --variant "--compile"

The baseline is the tutorial's code itself (TUTORIAL below: its ImageFolder + 2-worker shuffled
DataLoader, its Generator and Discriminator with Sigmoid, BCELoss, Adam, and its loop with an
.item() per iteration), timed per interval of --log-every iterations. Beside it the script runs
as a user runs it: its defaults, then --tutorial, then any --variant (a subprocess with real
flags; images/s from its metrics.csv; its decoding of every image once, into memory, comes
before its first interval and is timed in the whole run). The first interval of every run
(warm-up) is left out;
--repeat interleaves the settings, so a shared machine's load hits all alike. Takes the
machine-wide lock /tmp/gan-bench.lock. Prints figures only; asserts nothing about time.
"""
import argparse
import csv
import fcntl
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(HERE, "dcgan_celeba.py")

# The tutorial's code (https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html), its
# statements unchanged except: inputs from argv, no figures, and a timer around the loop's
# iterations (outside its statements) that prints images/s every `log_every` iterations.
TUTORIAL = r'''
import sys, time, random
import torch, torch.nn as nn, torch.optim as optim, torch.utils.data
import torchvision.datasets as dset, torchvision.transforms as transforms
import torchvision.utils as vutils
dataroot, log_every, device_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
manualSeed = 999
random.seed(manualSeed)
torch.manual_seed(manualSeed)
workers = 2
batch_size = 128
image_size = 64
nc = 3
nz = 100
ngf = 64
ndf = 64
num_epochs = 1
lr = 0.0002
beta1 = 0.5
ngpu = 1
dataset = dset.ImageFolder(root=dataroot,
                           transform=transforms.Compose([
                               transforms.Resize(image_size),
                               transforms.CenterCrop(image_size),
                               transforms.ToTensor(),
                               transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                           ]))
dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                         shuffle=True, num_workers=workers)
device = torch.device("cuda:0" if (torch.cuda.is_available() and ngpu > 0
                                   and device_name != "cpu") else "cpu")
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)
class Generator(nn.Module):
    def __init__(self, ngpu):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d( nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d( ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d( ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d( ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
        )
    def forward(self, input):
        return self.main(input)
netG = Generator(ngpu).to(device)
netG.apply(weights_init)
class Discriminator(nn.Module):
    def __init__(self, ngpu):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )
    def forward(self, input):
        return self.main(input)
netD = Discriminator(ngpu).to(device)
netD.apply(weights_init)
criterion = nn.BCELoss()
fixed_noise = torch.randn(64, nz, 1, 1, device=device)
real_label = 1.
fake_label = 0.
optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))
img_list = []
G_losses = []
D_losses = []
iters = 0
t_log, seen = time.perf_counter(), 0
for epoch in range(num_epochs):
    for i, data in enumerate(dataloader, 0):
        netD.zero_grad()
        real_cpu = data[0].to(device)
        b_size = real_cpu.size(0)
        label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
        output = netD(real_cpu).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b_size, nz, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        optimizerG.step()
        if i % 50 == 0:
            print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f'
                  % (epoch, num_epochs, i, len(dataloader),
                     errD.item(), errG.item(), D_x, D_G_z1, D_G_z2))
        G_losses.append(errG.item())
        D_losses.append(errD.item())
        if (iters % 500 == 0) or ((epoch == num_epochs-1) and (i == len(dataloader)-1)):
            with torch.no_grad():
                fake = netG(fixed_noise).detach().cpu()
            img_list.append(vutils.make_grid(fake, padding=2, normalize=True))
        iters += 1
        seen += b_size
        if (i + 1) % log_every == 0:
            print("images_per_sec", seen / (time.perf_counter() - t_log), flush=True)
            t_log, seen = time.perf_counter(), 0
'''


def make_folder(root, n, seed=0):
    """n CelebA-sized (178x218) JPEGs with some structure (JPEG decode time depends on it)."""
    folder = os.path.join(root, "img_align_celeba")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:218, :178]
    for i in range(n):
        img = (rng.integers(0, 40, size=(218, 178, 3)) + np.array([90, 70, 60])).astype(np.uint8)
        r = rng.integers(40, 60)
        img[(xx - 89) ** 2 / 1.0 + (yy - 109) ** 2 / 1.4 < r * r] = rng.integers(120, 240, size=3)
        Image.fromarray(img).save(os.path.join(folder, f"{i + 1:06d}.jpg"), quality=90)
    return root


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"


def run(command, timeout):
    t0 = time.perf_counter()
    r = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    if r.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} ... failed:\n{r.stderr[-2000:]}")
    return r, time.perf_counter() - t0


def steady(rates):
    """The median images/s without the first interval (warm-up)."""
    return float(np.median(rates[1:] or rates))


def run_tutorial(data, args):
    r, t = run([sys.executable, "-c", TUTORIAL, data, str(args.log_every), args.device],
               args.timeout)
    return steady([float(line.split()[1]) for line in r.stdout.splitlines()
                   if line.startswith("images_per_sec")]), t


def run_script(flags, data, out, args):
    command = [sys.executable, SCRIPT, "--dataroot", data, "--epochs", "1", "--log-every",
               str(args.log_every), "--sample-every", "1000000", "--device", args.device,
               "--out", out, *flags]
    _, t = run(command, args.timeout)
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        return steady([float(row["images_per_sec"]) for row in csv.DictReader(f)
                       if row["images_per_sec"]]), t


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", help="a folder of images (default: a synthetic one)")
    p.add_argument("--images", type=int, default=1536, help="synthetic images to make")
    p.add_argument("--log-every", type=int, default=3, help="iterations per measured interval")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--variant", action="append", default=[],
                   help="more flag sets of dcgan_celeba.py to measure")
    p.add_argument("--repeat", type=int, default=1, help="runs of each setting (interleaved)")
    p.add_argument("--timeout", type=int, default=3600)
    args = p.parse_args()
    lock = open("/tmp/gan-bench.lock", "w")
    print("waiting for /tmp/gan-bench.lock ...", flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)  # one benchmark on the machine at a time
    with tempfile.TemporaryDirectory() as tmp:
        data = args.dataroot or make_folder(os.path.join(tmp, "celeba"), args.images)
        print(f"machine: {machine()}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"data: {data} ({'given' if args.dataroot else 'synthetic 178x218 JPEGs'})")
        settings = [("the tutorial's own code", None), ("dcgan_celeba.py (defaults)", []),
                    ("dcgan_celeba.py --tutorial", ["--tutorial"])]
        settings += [(f"dcgan_celeba.py {v}", shlex.split(v)) for v in args.variant]
        rates = {name: [] for name, _ in settings}
        for rep in range(args.repeat):  # interleaved, so a shared machine's load hits all alike
            for k, (name, flags) in enumerate(settings):
                rate, t = run_tutorial(data if args.dataroot else os.path.join(tmp, "celeba"),
                                       args) if flags is None else \
                    run_script(flags, data, os.path.join(tmp, f"run{rep}_{k}"), args)
                rates[name].append(rate)
                print(f"[{rep + 1}/{args.repeat}] {name:45s} {rate:8.1f} images/s (whole run "
                      f"{t:.0f} s, load {os.getloadavg()[0]:.2f})", flush=True)
        base = float(np.median(rates[settings[0][0]]))
        print(f"\nsetting (median of {args.repeat})" + " " * 19 + "images/s   vs the tutorial")
        for name, _ in settings:
            rate = float(np.median(rates[name]))
            print(f"{name:45s} {rate:8.1f}   {rate / base:5.2f}x")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
