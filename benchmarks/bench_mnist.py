"""Training throughput (images/s) of dcgan_mnist.py against the cookbook's own loop.

    python benchmarks/bench_mnist.py [--images 6400] [--epochs 2]

Makes a PNG ImageFolder of 28x28 digits-like images in a temporary folder (as mnist_png), then
1. runs the cookbook's training loop as written (seed 000 + seed 002's ImageFolder /
   DataLoader(num_workers=2), batch 128, Adam defaults, sigmoid + BCELoss), and
2. runs dcgan_mnist.py itself (a subprocess, real flags) on the same folder for both
   architectures: with its defaults, with --no-amp (float32), and with the tutorial's batch size,
on the CPU and, when there is one, on CUDA. Prints images/s of the last epoch; asserts nothing.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import dcgan_mnist  # noqa: E402


def make_folder(root, n):
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % 10
        img = rng.integers(0, 40, size=(28, 28)).astype(np.uint8)
        img[4:24, 3 + 2 * c:5 + 2 * c] = 255
        os.makedirs(os.path.join(root, str(c)), exist_ok=True)
        Image.fromarray(img).save(os.path.join(root, str(c), f"{i:05d}.png"))


def cookbook_loop(root, device, epochs, batch_size=128):
    """The tutorial's loop as written: DataLoader over PNG files, BCELoss on sigmoid outputs."""
    import torchvision as tv
    transform = tv.transforms.Compose([tv.transforms.Grayscale(num_output_channels=1),
                                       tv.transforms.ToTensor(), tv.transforms.Normalize((0.5,), (0.5,))])
    dataset = tv.datasets.ImageFolder(root=root, transform=transform)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=2)
    generator = dcgan_mnist.Generator_model(100).to(device)
    discriminator = dcgan_mnist.Discriminator_model().to(device)
    generator.apply(dcgan_mnist.weights_init)
    discriminator.apply(dcgan_mnist.weights_init)
    criterion = nn.BCELoss()
    doptimizer = optim.Adam(discriminator.parameters())
    goptimizer = optim.Adam(generator.parameters())
    rate = 0.0
    for epoch in range(epochs):
        t0, seen = time.perf_counter(), 0
        for i, data in enumerate(train_loader):
            discriminator.zero_grad()
            real_images = data[0].to(device)
            size = real_images.size(0)
            label = torch.full((size,), 1.0, device=device)
            d_output = F.sigmoid(discriminator(real_images)).view(-1)
            derror_real = criterion(d_output, label)
            derror_real.backward()
            noise = torch.randn(size, 100, device=device)
            fake_images = generator(noise)
            label.fill_(0)
            d_output = F.sigmoid(discriminator(fake_images.detach())).view(-1)
            derror_fake = criterion(d_output, label)
            derror_fake.backward()
            doptimizer.step()
            generator.zero_grad()
            label.fill_(1)
            d_output = F.sigmoid(discriminator(fake_images)).view(-1)
            gerror = criterion(d_output, label)
            gerror.backward()
            goptimizer.step()
            if i % 50 == 0:  # the tutorial's .item() calls
                gerror.item(), (derror_real + derror_fake).item()
            seen += size
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - t0)
    return rate


def script_rate(root, device, epochs, *flags):
    """Run dcgan_mnist.py; the throughput of its last epoch from its last progress line."""
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "dcgan_mnist.py"), "--dataset", "folder",
                            "--dataroot", root, "--epochs", str(epochs), "--no-eval", "--out", out,
                            "--device", device.type, "--log-every", "1000000", *flags],
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return float(re.findall(r"\| (\d+) img/s \|", r.stdout)[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=6400, help="PNG files in the benchmark folder")
    p.add_argument("--epochs", type=int, default=2, help="epochs per measurement (the last is timed)")
    args = p.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    if hasattr(os, "getloadavg"):
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.images)
        print(f"{args.images} PNG images, {args.epochs} epochs, images/s of the last epoch")
        for device in devices:
            base = cookbook_loop(root, device, args.epochs)
            print(f"[{device.type}] cookbook loop as written (PNG DataLoader, batch 128): {base:8.0f} img/s", flush=True)
            for arch, tutorial_batch in (("cookbook", 128), ("dropout", 32)):
                for flags in ([], ["--no-amp"], ["--batch-size", str(tutorial_batch)]):
                    rate = script_rate(root, device, args.epochs, "--arch", arch, *flags)
                    shown = " ".join(flags) or "(defaults: batch 64, --amp, --ema 0.995)"
                    print(f"[{device.type}] dcgan_mnist.py --arch {arch:8s} {shown:41s}: "
                          f"{rate:8.0f} img/s  ({rate / base:.2f}x)", flush=True)
    if hasattr(os, "getloadavg"):
        print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
