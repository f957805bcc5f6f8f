"""Wall time and final quality of the two chapter-3 scripts' default runs.

    python benchmarks/bench_chapter3.py                      # seed 0, multiples 5, 3, 7
    python benchmarks/bench_chapter3.py --seeds 0 1 2 3 4    # the spread over seeds
    python benchmarks/bench_chapter3.py --book               # also the book's own settings

Runs exponential_gan.py and sequence_gan.py as a user does (subprocesses, default flags, a
temporary --out) and prints, per run: the training time the script reports (first training
step to saved generator) and its CPU time (the scripts train on one thread, so this is close to
the wall time on an idle machine), the total wall time and CPU time of the process (with Python
start-up and imports), and the quality of the saved generator measured here, independently of the script, on
fresh noise: MSE and KS on 4,096 points; validity, coverage and balance on 10,000 numbers (and
the balance a perfectly uniform sampler gets, the floor for that many values). Asserts nothing.
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import exponential_gan as E  # noqa: E402
import sequence_gan as S  # noqa: E402

BOOK = {
    "exponential_gan.py": ["--batch-size", "128", "--lr", "0.0005", "--beta1", "0.9", "--no-anneal",
                           "--no-scale", "--keep", "last", "--patience", "1000", "--epochs", "10000"],
    "sequence_gan.py": ["--batch-size", "10", "--lr", "0.0005", "--no-anneal", "--output", "relu",
                        "--feature-matching", "0", "--keep", "last", "--patience", "800",
                        "--epochs", "10000"],
}


def timed(name, args, out):
    """Run a script; returns (stdout, wall s, cpu s, reported training s, its training CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.join(ROOT, name), *args, "--out", out],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{name} {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"generator saved after ([\d.]+) s \(([\d.]+) s of CPU time\)", p.stdout)
    return p.stdout, wall, cpu, float(m.group(1)), float(m.group(2))


def uniform_floor(values, n=10000, trials=200):
    """Median most/least ratio of n draws from a perfectly uniform sampler over `values` values."""
    g = torch.Generator().manual_seed(0)
    ratios = []
    for _ in range(trials):
        c = torch.bincount(torch.randint(0, values, (n,), generator=g), minlength=values).double()
        ratios.append((c.max() / c.min()).item())
    return float(torch.tensor(ratios).median())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--multiples", type=int, nargs="+", default=[5, 3, 7])
    p.add_argument("--book", action="store_true", help="also run the book's settings (minutes)")
    args = p.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPU(s), torch {torch.__version__}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    settings = [("defaults", [])] + ([("book", None)] if args.book else [])
    with tempfile.TemporaryDirectory() as tmp:
        print("\nexponential_gan.py (targets: trained <= 30 s, MSE <= 1.0, KS <= 0.05 on 4,096)")
        print(f"{'settings':9} {'seed':>4} {'train s':>8} {'train cpu':>9} {'total s':>8} {'cpu s':>6} {'MSE':>8} {'KS':>7}")
        for label, extra in settings:
            for seed in args.seeds:
                out = os.path.join(tmp, f"e{label}{seed}")
                extra_args = BOOK["exponential_gan.py"] if extra is None else extra
                _, wall, cpu, saved, train_cpu = timed("exponential_gan.py", [*extra_args, "--seed", str(seed)], out)
                G = torch.export.load(os.path.join(out, "exponential.pt2")).module()
                with torch.no_grad():
                    xy = G(torch.randn(4096, 2, generator=torch.Generator().manual_seed(1000 + seed)))
                print(f"{label:9} {seed:>4} {saved:8.1f} {train_cpu:9.1f} {wall:8.1f} {cpu:6.1f} "
                      f"{E.performance(xy):8.3f} {E.ks_uniform(xy[:, 0], 0, 50):7.4f}")

        print("\nsequence_gan.py (targets: trained <= 5 s; on 10,000 numbers 100% valid, all "
              "values, balance <= 1.5)")
        print(f"{'settings':9} {'mult':>4} {'seed':>4} {'train s':>8} {'train cpu':>9} {'total s':>8} {'cpu s':>6} "
              f"{'valid %':>8} {'covered':>8} {'balance':>8} {'uniform':>8}")
        for label, extra in settings:
            for multiple in args.multiples:
                floor = uniform_floor(len(range(0, 100, multiple)))
                for seed in args.seeds:
                    out = os.path.join(tmp, f"s{label}{multiple}_{seed}")
                    extra_args = BOOK["sequence_gan.py"] if extra is None else extra
                    _, wall, cpu, saved, train_cpu = timed("sequence_gan.py", [*extra_args, "--multiple", str(multiple),
                                                                   "--seed", str(seed)], out)
                    G = torch.export.load(os.path.join(out, "num_gen.pt2")).module()
                    with torch.no_grad():
                        noise = torch.randn(10000, 100, generator=torch.Generator().manual_seed(1000 + seed))
                        q = S.quality(S.data_to_num(G(noise)), multiple)
                    print(f"{label:9} {multiple:>4} {seed:>4} {saved:8.1f} {train_cpu:9.1f} {wall:8.1f} {cpu:6.1f} "
                          f"{100 * q['validity']:8.2f} {q['coverage']:>4}/{q['values']:<3} "
                          f"{q['balance']:8.2f} {floor:8.2f}")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; 'train cpu' is the "
          f"CPU time of the training (one thread: about its idle wall time), 'cpu s' that of the "
          f"whole process, 'uniform' the median balance of a perfect sampler")


if __name__ == "__main__":
    main()
