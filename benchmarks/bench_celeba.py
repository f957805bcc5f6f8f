"""Images/s of dcgan_celeba.py: the tutorial-equivalent settings beside the fast defaults.

    python benchmarks/bench_celeba.py                       # synthetic 178x218 JPEG folder
    python benchmarks/bench_celeba.py --dataroot data/celeba --images 0   # real CelebA
    python benchmarks/bench_celeba.py --variant "--amp off" --variant "--compile"

Each setting trains one epoch over the folder with the real script (a subprocess, real flags);
images/s is read from its metrics.csv, leaving out the first log interval (warm-up, compile).
The cache is built once beforehand and its build time printed separately. Prints figures only;
asserts nothing about time.
"""
import argparse
import csv
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


def make_folder(root, n, seed=0):
    """n CelebA-sized (178x218) JPEGs with some structure (JPEG decode time depends on content)."""
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
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"


def run(flags, out, timeout):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, SCRIPT, *flags, "--out", out], capture_output=True,
                       text=True, timeout=timeout, cwd=HERE)
    if r.returncode != 0:
        sys.exit(f"dcgan_celeba.py {' '.join(flags)} failed:\n{r.stderr[-2000:]}")
    return r, time.perf_counter() - t0


def images_per_sec(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        rates = [float(row["images_per_sec"]) for row in csv.DictReader(f)]
    steady = rates[1:] or rates  # the first interval holds the warm-up
    return float(np.median(steady))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", help="a folder of images (default: a synthetic one in a temp dir)")
    p.add_argument("--images", type=int, default=1536, help="synthetic images to make")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--log-every", type=int, default=3, help="iterations per measured interval")
    p.add_argument("--device", default="auto")
    p.add_argument("--fast", default=None,
                   help="flags of the fast run (default: the script's defaults, plus --amp bf16 "
                   "on a machine without CUDA, where the default is --amp off)")
    p.add_argument("--variant", action="append", default=[], help="more flag sets to measure")
    p.add_argument("--repeat", type=int, default=1, help="runs of each setting (interleaved)")
    p.add_argument("--timeout", type=int, default=1800)
    args = p.parse_args()

    import torch
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    fast = args.fast if args.fast is not None else ("" if cuda else "--amp bf16")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.dataroot or make_folder(os.path.join(tmp, "celeba"), args.images)
        cache_dir = os.path.join(tmp, "cache")
        os.makedirs(cache_dir)
        common = ["--dataroot", data, "--epochs", "1", "--batch-size", str(args.batch_size),
                  "--log-every", str(args.log_every), "--sample-every", "1000000",
                  "--device", args.device, "--cache-dir", cache_dir]
        print(f"machine: {machine()}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"data: {data} ({'synthetic 178x218 JPEGs' if not args.dataroot else 'given'})")
        _, t = run(common + ["--cache", "--dry-run"], os.path.join(tmp, "warm"), args.timeout)
        print(f"cache build (decode + resize + crop once, one dry-run iteration): {t:.1f} s")
        settings = [("tutorial (--amp off --no-cache --workers 2 --no-channels-last)",
                     "--amp off --no-cache --workers 2 --no-channels-last"),
                    (f"fast defaults ({fast or 'no flags'})", fast)]
        settings += [(v, v) for v in args.variant]
        rates = {name: [] for name, _ in settings}
        for rep in range(args.repeat):  # interleaved, so a shared machine's load hits all alike
            for k, (name, flags) in enumerate(settings):
                out = os.path.join(tmp, f"run{rep}_{k}")
                _, t = run(common + shlex.split(flags), out, args.timeout)
                rates[name].append(images_per_sec(out))
                print(f"[{rep + 1}/{args.repeat}] {name:60s} {rates[name][-1]:8.1f} images/s "
                      f"(whole run {t:.0f} s, load {os.getloadavg()[0]:.2f})", flush=True)
        base = float(np.median(rates[settings[0][0]]))
        print(f"\nsetting (median of {args.repeat})" + " " * 34 + "images/s   vs tutorial")
        for name, _ in settings:
            rate = float(np.median(rates[name]))
            print(f"{name:60s} {rate:8.1f}   {rate / base:5.2f}x")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
