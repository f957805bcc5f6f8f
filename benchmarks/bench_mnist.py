"""Training throughput (images/s) of dcgan_mnist.py against the cookbook's loop as written.

    flock /tmp/gan-bench.lock python benchmarks/bench_mnist.py [--images 6400] [--rounds 2]

Makes a PNG ImageFolder of 28x28 digit-like images (as mnist_png/training) in a temporary
folder, then measures, interleaved for --rounds rounds so that both sides see the same load:
1. the cookbook's training loop as written: ImageFolder(Grayscale, ToTensor, Normalize),
   DataLoader(batch 128, shuffle, num_workers=2), Generator_model/Discriminator_model with a
   sigmoid and BCELoss, Adam's defaults, fp32, its .item() calls every 50 steps;
2. dcgan_mnist.py with its defaults on the same folder (a subprocess with real flags), and
3. with --with-tutorial, dcgan_mnist.py --tutorial (the cookbook's settings, files decoded
   every epoch).
Each figure is the steady state: images/s of the second epoch (the first warms up; decoding
the folder once happens before it). Prints medians; asserts nothing.
"""
import argparse
import os
import re
import statistics
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
        Image.fromarray(img).convert("RGB").save(os.path.join(root, str(c), f"{i:05d}.png"))


def cookbook_loop(root, device, epochs=2, batch_size=128, z_dim=100):
    """The recipe's loop as written (its D ends in a sigmoid; ours returns logits)."""
    import torchvision as tv
    transform = tv.transforms.Compose([tv.transforms.Grayscale(num_output_channels=1),
                                       tv.transforms.ToTensor(),
                                       tv.transforms.Normalize((0.5,), (0.5,))])
    dataset = tv.datasets.ImageFolder(root=root, transform=transform)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                               num_workers=2)
    generator = dcgan_mnist.Generator_model(z_dim).to(device)
    discriminator = dcgan_mnist.Discriminator_model().to(device)
    generator.apply(dcgan_mnist.weights_init)
    discriminator.apply(dcgan_mnist.weights_init)
    criterion = nn.BCELoss()
    doptimizer = optim.Adam(discriminator.parameters())
    goptimizer = optim.Adam(generator.parameters())
    real_label, fake_label = 1.0, 0.0
    for epoch in range(epochs):
        t0, seen = time.perf_counter(), 0
        for i, data in enumerate(train_loader):
            discriminator.zero_grad()
            real_images = data[0].to(device)
            size = real_images.size(0)
            label = torch.full((size,), real_label, device=device)
            d_output = F.sigmoid(discriminator(real_images)).view(-1)
            derror_real = criterion(d_output, label)
            derror_real.backward()
            noise = torch.randn(size, z_dim, device=device)
            fake_images = generator(noise)
            label.fill_(fake_label)
            d_output = F.sigmoid(discriminator(fake_images.detach())).view(-1)
            derror_fake = criterion(d_output, label)
            derror_fake.backward()
            derror_total = derror_real + derror_fake
            doptimizer.step()
            generator.zero_grad()
            label.fill_(1)
            d_output = F.sigmoid(discriminator(fake_images)).view(-1)
            gerror = criterion(d_output, label)
            gerror.backward()
            goptimizer.step()
            if i % 50 == 0:
                print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '
                      f'| D Loss: {derror_total.item():.3f} |', end="\r")
            seen += size
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - t0)
    return rate


def script_rate(root, device, *flags):
    """dcgan_mnist.py on the folder for 2 epochs; images/s of the second (its last line)."""
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "dcgan_mnist.py"), "--dataset",
                            "folder", "--dataroot", root, "--epochs", "2", "--no-eval",
                            "--out", out, "--device", device.type, "--log-every", "1000000",
                            *flags], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    return float(re.findall(r"\| (\d+) img/s \|", r.stdout)[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=6400, help="PNG files in the folder")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    p.add_argument("--with-tutorial", action="store_true", help="also time --tutorial")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} "
          f"threads, device {device}")
    if hasattr(os, "getloadavg"):
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    sides = {"cookbook loop as written (PNG DataLoader, batch 128, fp32)":
             lambda root: cookbook_loop(root, device),
             "dcgan_mnist.py (defaults)": lambda root: script_rate(root, device)}
    if args.with_tutorial:
        sides["dcgan_mnist.py --tutorial"] = lambda root: script_rate(root, device, "--tutorial")
    rates = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.images)
        print(f"{args.images} PNG images; images/s of the second epoch, {args.rounds} rounds")
        for r in range(args.rounds):
            for name, measure in sides.items():
                rates[name].append(measure(root))
                print(f"round {r + 1}: {name}: {rates[name][-1]:.0f} img/s", flush=True)
    base = statistics.median(rates[next(iter(sides))])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"median {name:62s} {rate:7.0f} img/s  {rate / base:.2f}x")
    if hasattr(os, "getloadavg"):
        print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
