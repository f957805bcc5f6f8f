"""Wall time and final quality of the two chapter-3 scripts' default runs.

    python benchmarks/bench_chapter3.py                      # seed 0, multiples 5, 3, 7
    python benchmarks/bench_chapter3.py --seeds 0 1 2 3 4    # the spread over seeds
    python benchmarks/bench_chapter3.py --book               # also the book's settings
    python benchmarks/bench_chapter3.py --compare ../old     # also another checkout, interleaved

Runs exponential_gan.py and sequence_gan.py as a user does (subprocesses, default flags, a
temporary --out) and prints, per run: the training time the script reports (first training
step to saved generator) and its CPU time (the scripts train on one thread, so this is close
to the wall time on an idle machine), the wall and CPU time of the whole process (with Python
start-up and imports), and the quality of the saved generator measured here, independently of
the script, on fresh noise: MSE and KS on 4,096 points; validity, coverage and balance on
10,000 numbers (and the balance a perfectly uniform sampler gets, the floor for that many
values). With --compare DIR the scripts of DIR (e.g. `git archive <commit> | tar -x -C DIR`)
run right after each run of these, so both see the same load. Asserts nothing.
"""
import argparse
import glob
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

BOOK = ["--tutorial", "--device", "cpu"]  # the book's settings, on the CPU


def timed(root, name, args, out):
    """Run root/name; returns (wall s, cpu s, reported training s, its training CPU s, .pt2)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.join(root, name), *args, "--out", out],
                       capture_output=True, text=True, cwd=root)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{root}/{name} {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"generator saved after ([\d.]+) s \(([\d.]+) s of CPU time\)", p.stdout)
    pt2 = (glob.glob(os.path.join(out, "generator.pt2")) + glob.glob(os.path.join(out, "*.pt2")))
    return wall, cpu, float(m.group(1)), float(m.group(2)), pt2[0]


def uniform_floor(values, n=10000, trials=200):
    """Median most/least ratio of n draws from a perfectly uniform sampler over `values`."""
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
    p.add_argument("--book", action="store_true", help="also the book's settings (minutes)")
    p.add_argument("--compare", metavar="DIR", help="also run the scripts of another checkout")
    args = p.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPU(s), torch {torch.__version__}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    settings = [("defaults", [])] + ([("book", BOOK)] if args.book else [])
    roots = [("this", ROOT)] + ([("compare", os.path.abspath(args.compare))]
                                if args.compare else [])
    with tempfile.TemporaryDirectory() as tmp:
        print("\nexponential_gan.py (targets: trained <= 30 s, MSE <= 1.0, KS <= 0.05 on 4,096)")
        print(f"{'checkout':8} {'settings':9} {'seed':>4} {'train s':>8} {'train cpu':>9} "
              f"{'total s':>8} {'cpu s':>6} {'MSE':>8} {'KS':>7}")
        for label, extra in settings:
            for seed in args.seeds:
                for which, root in roots:
                    out = os.path.join(tmp, f"e-{which}-{label}-{seed}")
                    wall, cpu, saved, train_cpu, pt2 = timed(
                        root, "exponential_gan.py", [*extra, "--seed", str(seed)], out)
                    G = torch.export.load(pt2).module()  # our own file, just written
                    with torch.no_grad():
                        noise = torch.randn(4096, 2, generator=torch.Generator().manual_seed(
                            1000 + seed))
                        xy = G(noise)
                    print(f"{which:8} {label:9} {seed:>4} {saved:8.1f} {train_cpu:9.1f} "
                          f"{wall:8.1f} {cpu:6.1f} {E.performance(xy):8.3f} "
                          f"{E.ks_uniform(xy[:, 0], 0, 50):7.4f}", flush=True)

        print("\nsequence_gan.py (targets: trained <= 5 s; on 10,000 numbers 100% valid, all "
              "values, balance <= 1.5)")
        print(f"{'checkout':8} {'settings':9} {'mult':>4} {'seed':>4} {'train s':>8} "
              f"{'train cpu':>9} {'total s':>8} {'cpu s':>6} {'valid %':>8} {'covered':>8} "
              f"{'balance':>8} {'uniform':>8}")
        for label, extra in settings:
            for multiple in args.multiples:
                floor = uniform_floor(len(range(0, 100, multiple)))
                for seed in args.seeds:
                    for which, root in roots:
                        out = os.path.join(tmp, f"s-{which}-{label}-{multiple}-{seed}")
                        wall, cpu, saved, train_cpu, pt2 = timed(
                            root, "sequence_gan.py",
                            [*extra, "--multiple", str(multiple), "--seed", str(seed)], out)
                        G = torch.export.load(pt2).module()
                        with torch.no_grad():
                            noise = torch.randn(10000, 100, generator=torch.Generator()
                                                .manual_seed(1000 + seed))
                            q = S.quality(S.data_to_num(G(noise)), multiple)
                        print(f"{which:8} {label:9} {multiple:>4} {seed:>4} {saved:8.1f} "
                              f"{train_cpu:9.1f} {wall:8.1f} {cpu:6.1f} "
                              f"{100 * q['validity']:8.2f} {q['coverage']:>4}/{q['values']:<3} "
                              f"{q['balance']:8.2f} {floor:8.2f}", flush=True)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; 'train cpu' is "
          f"the CPU time of the training (one thread: about its idle wall time), 'cpu s' that "
          f"of the whole process, 'uniform' the median balance of a perfect sampler")


if __name__ == "__main__":
    main()
