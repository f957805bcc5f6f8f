"""A GAN that learns to draw points (x, y) on the curve y = 1.08^x.

Follows M. Liu, *Learn Generative AI with PyTorch* (Manning), chapter 3, sections 3.1-3.4
(code: https://github.com/markhliu/DGAI), with the book's names and order: train_data,
train_loader, D, G, loss_fn, optimD, optimG, performance, EarlyStop, train_D_on_real,
train_D_on_fake, train_G, test_epoch. The chapter's exercises are --shape sine, cosine and
quadratic (the U shape y = x^2, x in [-5, 5]).

    python exponential_gan.py                    # ~15 s on a 2-core CPU
    python exponential_gan.py --tutorial         # the book's settings (minutes)
    python exponential_gan.py --shape sine --out outputs/sine
    python exponential_gan.py --generate outputs/exponential_gan/generator_weights.pt

Writes to --out (default outputs/exponential_gan; an earlier run there is refused unless
--overwrite, which replaces all of its files): train_data.png (the training set), p{epoch}.png
(fake over real points at epoch 1 and every --plot-every epochs), generator.pt2 (the kept
generator, torch.export, for other projects: noise (N, 2) standard normal -> (N, 2) points (x,
y) in the data's own units), generator_weights.pt (its settings and weights: what --generate
reads), new_samples.png (new points from the saved generator), losses.png and metrics.csv (with
MSE and KS per epoch). --generate PATH reads a generator_weights.pt (torch.load with
weights_only: no code runs) and writes generated.png and samples.csv into a new folder beside it
(generated, generated-2, ...), or into --out (refusing to replace them there unless
--overwrite). Another project loads generator.pt2 with torch.export.load(path).module() -- load
only files you trust.

Quality is measured, as in the book, by performance() (MSE of y against the curve at the
generated x), plus the Kolmogorov-Smirnov distance of x against the data's uniform x (coverage).

What differs from the book, and why:
- defaults: batch 256, lr 0.002, Adam beta1 0.5, lr annealed to 0 over 200 epochs, (x, y)
  scaled to [-1, 1] inside D and G: MSE ~0.3 in ~13 s where the book's settings stop at
  MSE 8-16 after minutes. --tutorial gives the book's settings.
- EarlyStop watches RMSE/spread + KS of a fixed 4,096-point batch (the book: MSE of the last
  128 fake points, which is noisy and blind to a G that draws only part of the curve), and the
  best generator it saw is kept (the book keeps the last).
- D ends in logits with BCEWithLogitsLoss (the book: Sigmoid + BCELoss, same maths, less stable);
  labels fit each batch (the book's fixed (128, 1) labels break on a smaller last batch).
- torch.export (.pt2) replaces the deprecated torch.jit.script; files go under --out, not files/.
- loss curves, metrics.csv, progress with steps/s and ETA, --time-budget for the whole run;
  Ctrl-C/SIGTERM save and exit 130; a diverging loss (too high an --lr) stops with an error.

Copy this file together with common.py.
"""
import argparse
import contextlib
import csv
import datetime
import math
import os
import sys
import time

STARTED = time.monotonic()  # before the heavy imports (seconds): --time-budget counts them

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from common import (ArgumentParser, as_flags, command_line, fail, generate_out, int_range,
                    load_checkpoint, parse, pick_device, positive_float, prepare_out, run,
                    save_generator, seed_int, stop_if_diverged, stop_on_ctrl_c, unit_interval)

SCRIPT = "exponential_gan"
# Each shape: x range of the data, y = f(x), plot limits and labels (the book's exercises).
SHAPES = {
    "exponential": dict(low=0.0, high=50.0, f=lambda x: 1.08 ** x, xlim=(0, 50), ylim=(0, 50),
                        ylabel="$y=1.08^x$", title="An exponential growth shape"),
    "sine": dict(low=-5.0, high=5.0, f=torch.sin, xlim=(-5, 5), ylim=(-1.2, 1.2),
                 ylabel="$y=sin(x)$", title="A sine shape"),
    "cosine": dict(low=-5.0, high=5.0, f=torch.cos, xlim=(-5, 5), ylim=(-1.2, 1.2),
                   ylabel="$y=cos(x)$", title="A cosine shape"),
    "quadratic": dict(low=-5.0, high=5.0, f=lambda x: x ** 2, xlim=(-5, 5), ylim=(-1, 26),
                      ylabel="$y=x^2$", title="A U shape"),
}
# The book's own settings (section 3.3-3.4), what --tutorial switches to.
TUTORIAL_SETTINGS = dict(epochs=10000, batch_size=128, lr=0.0005, beta1=0.9, anneal=False,
                         scale=False, stop_on="batch-mse", keep="last", patience=1000,
                         device="auto")
DEFAULT_LR = 0.002
MAX = 10**6  # cap of every count: no accepted value can exhaust memory


# -- 1. Arguments ------------------------------------------------------------------------------
def parse_args(argv=None):
    p = ArgumentParser(prog=os.path.basename(__file__),
                       description="GAN that learns to draw points on a curve (M. Liu, "
                       "Learn Generative AI with PyTorch, chapter 3).")
    book = p.add_argument_group("the tutorial's inputs")
    book.add_argument("--tutorial", action="store_true",
                      help="the book's exact settings: " + as_flags(TUTORIAL_SETTINGS))
    book.add_argument("--shape", choices=list(SHAPES), default="exponential",
                      help="the curve: exponential y=1.08^x, x in [0,50] (the book); sine, "
                      "cosine, quadratic (y=x^2) over x in [-5,5] (the exercises)")
    book.add_argument("--observations", type=int_range(2, MAX), default=2048,
                      help="training pairs (x, y), x uniform over the shape's range")
    book.add_argument("--epochs", type=int_range(1, MAX), default=200,
                      help="most passes over the data (early stopping may end sooner)")
    book.add_argument("--batch-size", type=int_range(1, MAX), default=256, help="pairs per step")
    book.add_argument("--lr", type=positive_float, default=DEFAULT_LR, help="Adam learning rate")
    book.add_argument("--beta1", type=unit_interval, default=0.5,
                      help="Adam beta1; 0.5 damps the GAN's swings (the book: Adam's usual 0.9)")
    book.add_argument("--patience", type=int_range(1, MAX), default=100,
                      help="EarlyStop: stop after this many epochs without a better generator")
    speed = p.add_argument_group("data and speed")
    speed.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu",
                       help="auto: cuda, then mps, then cpu (the default is cpu: these tiny "
                       "networks run fastest there)")
    better = p.add_argument_group("additions")
    better.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=True,
                        help="lower the learning rate in a straight line to 0 over --epochs "
                        "(the book: constant)")
    better.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                        help="scale (x, y) to [-1, 1] inside D and G, with a Tanh on G's output "
                        "(the book: raw units)")
    better.add_argument("--stop-on", choices=["mse-ks", "batch-mse"], default="mse-ks",
                        help="what EarlyStop watches: the spread and coverage of "
                        "--eval-samples fixed points, or the book's MSE of the last fake batch")
    better.add_argument("--keep", choices=["best", "last"], default="best",
                        help="save the best generator EarlyStop saw, or the last (the book)")
    evaluation = p.add_argument_group("evaluation")
    evaluation.add_argument("--eval-samples", type=int_range(1, MAX), default=4096,
                            help="generated points behind the quality figures (MSE, KS)")
    evaluation.add_argument("--plot-every", type=int_range(1, MAX), default=25,
                            help="save p{epoch}.png at epoch 1 and every N epochs")
    evaluation.add_argument("--generate", metavar="PATH",
                            help="no training: read a run's generator_weights.pt and write "
                            "generated.png and samples.csv into a new folder beside it (or --out)")
    evaluation.add_argument("--num-samples", type=int_range(1, MAX), default=4096,
                            help="points for --generate")
    control = p.add_argument_group("run control")
    control.add_argument("--seed", type=seed_int, default=0,
                         help="random seed, printed at the start (the tutorial's: 0)")
    control.add_argument("--out", help=f"folder for everything the run writes (default: "
                         f"outputs/{SCRIPT})")
    control.add_argument("--overwrite", action="store_true",
                         help="replace an earlier run in --out (all of its files)")
    control.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                         help="end the whole run, files included, within this many seconds")
    control.add_argument("--dry-run", action="store_true",
                         help="one training step, then write every output file")
    control.add_argument("--show", action="store_true", help="also show the figures in windows")
    args, _ = parse(p, argv, TUTORIAL_SETTINGS)
    if not args.generate:  # --generate's default is a new folder beside the weights
        args.out = args.out or f"outputs/{SCRIPT}"
    return p, args


def idle_flags(args):
    """The flags that do nothing in this run, left out of the `arguments:` line."""
    if args.generate:  # the shape and everything else comes from the file
        return [dest for dest in vars(args)
                if dest not in ("generate", "num_samples", "seed", "out", "overwrite", "show")]
    return ["num_samples"] + (["epochs", "patience", "plot_every", "time_budget"]
                              if args.dry_run else [])


# -- 2. Data: the book's training set and DataLoader (section 3.2) -----------------------------
def make_train_data(shape, observations, seed=0):
    """Listing 3.1, for any --shape: x uniform over the shape's range, y = f(x)."""
    s = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)  # the book's torch.manual_seed(0), for the data alone
    train_data = torch.zeros((observations, 2))
    train_data[:, 0] = s["low"] + (s["high"] - s["low"]) * torch.rand(observations, generator=g)
    train_data[:, 1] = s["f"](train_data[:, 0])
    return train_data


# -- 3. Networks, loss, performance() and EarlyStop (section 3.3) ------------------------------
class Scale(nn.Module):
    """Addition: maps [-1, 1] to the data's range [low, high] per column (G's output, after a
    Tanh), or back (D's input, inverse=True). The book feeds raw units (x up to 50) to layers
    made for inputs of size ~1, which slows learning, and its G's unbounded output lands points
    beyond x = 50, where 1.08^x runs away. Buffers, so the exported G returns raw (x, y)."""

    def __init__(self, low, high, inverse=False):
        super().__init__()
        self.register_buffer("mid", (high + low) / 2)
        self.register_buffer("radius", (high - low) / 2)
        self.inverse = inverse

    def forward(self, x):
        return (x - self.mid) / self.radius if self.inverse else x * self.radius + self.mid


def performance(fake_samples, shape="exponential"):
    """The book's measure: mean squared error of y against the curve f(x) (lower is better)."""
    fake_samples = fake_samples.detach().double().cpu()
    real = SHAPES[shape]["f"](fake_samples[:, 0])
    return torch.mean((fake_samples[:, 1] - real) ** 2).item()


def ks_uniform(x, low, high):
    """Addition: Kolmogorov-Smirnov distance between the sample x and Uniform[low, high]
    (0 = perfect). performance() alone is fooled by a G that draws only part of the curve
    (points near x = 0 have tiny errors); this says how evenly x covers the data's range."""
    x = torch.sort(x.detach().double().cpu().flatten()).values
    n = len(x)
    cdf = ((x - low) / (high - low)).clamp(0, 1)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return max((i / n - cdf).max().item(), (cdf - (i - 1) / n).max().item())


class EarlyStop:
    """Listing 3.5, plus `improved`: whether the last value was a new best (to keep that G)."""

    def __init__(self, patience=1000):
        self.patience = patience
        self.steps = 0
        self.min_gdif = float("inf")
        self.improved = False

    def stop(self, gdif):
        self.improved = gdif < self.min_gdif
        if self.improved:
            self.min_gdif = gdif
            self.steps = 0
        else:
            self.steps += 1
        return self.steps >= self.patience


# -- 4. Training: the book's three steps and test_epoch (section 3.4.1) ------------------------
def train_D_on_real(real_samples, D, loss_fn, optimD, device):
    real_samples = real_samples.to(device)
    real_labels = torch.ones((len(real_samples), 1), device=device)
    optimD.zero_grad()
    out_D = D(real_samples)
    loss_D = loss_fn(out_D, real_labels)
    loss_D.backward()
    optimD.step()
    return loss_D.detach(), torch.sigmoid(out_D).mean().detach()  # Addition: D(x) for metrics


def train_D_on_fake(batch_size, D, G, loss_fn, optimD, device):
    noise = torch.randn((batch_size, 2))
    noise = noise.to(device)
    fake_labels = torch.zeros((batch_size, 1), device=device)
    fake_samples = G(noise).detach()  # Addition: detached, D's step needs no gradient through G
    optimD.zero_grad()
    out_D = D(fake_samples)
    loss_D = loss_fn(out_D, fake_labels)
    loss_D.backward()
    optimD.step()
    return loss_D.detach(), torch.sigmoid(out_D).mean().detach()  # Addition: D(G(z))


def train_G(batch_size, D, G, loss_fn, optimG, device):
    noise = torch.randn((batch_size, 2))
    noise = noise.to(device)
    real_labels = torch.ones((batch_size, 1), device=device)
    optimG.zero_grad()
    fake_samples = G(noise)
    D.requires_grad_(False)  # Addition: G's step needs no gradients of D's weights (1/3 less)
    out_G = D(fake_samples)
    loss_G = loss_fn(out_G, real_labels)
    loss_G.backward()
    D.requires_grad_(True)
    optimG.step()
    return loss_G.detach(), fake_samples.detach()


def test_epoch(epoch, gloss, dloss, n, fake_samples, train_data, shape, out, every,
               status="", force=False):
    """Listing 3.9: at epoch 1 and every `every` epochs, print the mean losses and save the last
    fake batch over the real points as p{epoch}.png. (`status`, `force`: additions.)"""
    if epoch == 0 or (epoch + 1) % every == 0 or force:
        g = gloss.item() / (n + 1)  # the book divides by the last index n, one batch too few
        d = dloss.item() / (n + 1)
        print(f"at epoch {epoch + 1}, G loss: {g:.4f}, D loss {d:.4f}{status}", flush=True)
        fake = fake_samples.detach().cpu().numpy()
        plot_points(os.path.join(out, f"p{epoch + 1}.png"), fake, train_data, shape,
                    f"epoch {epoch + 1}")
        return True
    return False


def plot_points(path, fake, train_data, shape, title):
    """The book's figure: generated points (green stars) over the real ones (red dots)."""
    s = SHAPES[shape]
    real = train_data.numpy()
    fig = plt.figure(dpi=100)
    plt.plot(fake[:, 0], fake[:, 1], "*", c="g", label="generated samples")
    plt.plot(real[:, 0], real[:, 1], ".", c="r", alpha=0.1, label="real samples")
    plt.title(title)
    plt.xlim(*s["xlim"])
    plt.ylim(*s["ylim"])
    plt.xlabel("values of x")  # Addition: the axes' labels of the book's first figure
    plt.ylabel(f"values of {s['ylabel']}")
    plt.legend(loc="upper left", bbox_to_anchor=(1, 1))  # Addition: beside the data, not on it
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def quality(G, noise, shape):
    """Addition: MSE and KS of G's points for a fixed noise batch (G in eval mode)."""
    G.eval()
    with torch.no_grad():
        fake = G(noise).cpu()
    G.train()
    s = SHAPES[shape]
    return performance(fake, shape), ks_uniform(fake[:, 0], s["low"], s["high"])


def save_loss_plot(path, G_losses, D_losses):
    """Addition: G's and D's mean loss per epoch."""
    fig = plt.figure(figsize=(10, 5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(G_losses, label="G")
    plt.plot(D_losses, label="D")
    plt.xlabel("epochs")
    plt.ylabel("Loss")
    plt.legend(loc="upper left", bbox_to_anchor=(1, 1))  # beside the curves, not on them
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)



# -- 6. Generate: points from a saved generator, no training -----------------------------------
def load_G(path):
    """The book's torch.jit.load, without running anything from the file: G is rebuilt as main()
    builds it, from the settings saved with its weights in generator_weights.pt.
    Returns (G, shape)."""
    saved = load_checkpoint(path, SCRIPT)
    settings = saved.get("settings") if isinstance(saved.get("settings"), dict) else {}
    shape, scale = settings.get("shape"), settings.get("scale")
    if not (isinstance(shape, str) and shape in SHAPES and isinstance(scale, bool)):
        fail(f"{path} holds no --shape and --scale this script knows; pass a "
             f"generator_weights.pt that {SCRIPT}.py wrote")
    new_G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(),
                          nn.Linear(32, 2))  # the book's G, as in main()
    if scale:  # the data's range: loaded with the weights
        new_G.extend([nn.Tanh(), Scale(torch.zeros(2), torch.ones(2))])
    try:
        new_G.load_state_dict(saved.get("state_dict"))
    except (RuntimeError, TypeError) as e:
        fail(f"{path}: its weights do not fit the generator of --shape {shape} "
             f"({type(e).__name__}); pass a generator_weights.pt that {SCRIPT}.py wrote")
    return new_G.eval(), shape


def generate(args):
    new_G, shape = load_G(args.generate)
    args.out = generate_out(args.out, args.generate)  # never over an earlier file
    csv_path = os.path.join(args.out, "samples.csv")
    png_path = os.path.join(args.out, "generated.png")
    if not args.overwrite and (os.path.exists(csv_path) or os.path.exists(png_path)):
        fail(f"--out {args.out} holds an earlier generated.png/samples.csv; pass a new --out, "
             f"or --overwrite to replace them")
    with prepare_out(args.out, new_run=False):  # holds --out while it writes
        torch.manual_seed(args.seed)
        with torch.no_grad():
            new_data = new_G(torch.randn((args.num_samples, 2))).double()
        np.savetxt(csv_path, new_data.numpy(), delimiter=",", header="x,y", comments="", fmt="%.6f")
        s = SHAPES[shape]
        plot_points(png_path, new_data.numpy(), make_train_data(shape, 2048), shape,
                    f"{args.num_samples} points from {os.path.basename(args.generate)}")
        print(f"wrote {csv_path} and {png_path}")
        print(f"quality against --shape {shape}: MSE {performance(new_data, shape):.4f}, "
              f"KS {ks_uniform(new_data[:, 0], s['low'], s['high']):.4f}")
        return 0


def main(argv=None):
    started = STARTED if argv is None else time.monotonic()  # a command line: from its start
    parser, args = parse_args(argv)
    print("arguments: " + command_line(parser, args, idle=idle_flags(args)))
    if not args.show:
        plt.switch_backend("Agg")
    # Ctrl-C/SIGTERM, in any phase: train no further, save everything, exit 130 (patient: a
    # second signal waits for the files, which take a second or two)
    with stop_on_ctrl_c(patient=True) as signal_stop, contextlib.ExitStack() as held:
        code = generate(args) if args.generate else train(args, signal_stop, started, held)
        return 130 if signal_stop.requested else code


def train(args, signal_stop, started, held):
    """The book's sections 3.2-3.4 with the additions; 0, or 130 after a signal."""
    device = pick_device(args.device)
    prepare_out(args.out, overwrite=args.overwrite, hold=False)  # refuse a bad --out now
    out = args.out
    print(f"seed: {args.seed}\ndevice: {device}, float32")
    s = SHAPES[args.shape]
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny matrices: one thread beats the cost of waking others

    # 3.2.1 The training set and its plot (listings 3.1, 3.2)
    torch.manual_seed(args.seed)
    observations = args.observations
    train_data = make_train_data(args.shape, observations, args.seed)
    fig = plt.figure(dpi=100, figsize=(8, 6))
    plt.plot(train_data[:, 0].numpy(), train_data[:, 1].numpy(), ".", c="r")
    plt.xlabel("values of x", fontsize=15)
    plt.ylabel(f"values of {s['ylabel']}", fontsize=15)
    plt.title(s["title"], fontsize=20)
    held.enter_context(prepare_out(out, overwrite=args.overwrite))  # --out, until main returns
    t_figure = time.monotonic()
    fig.savefig(os.path.join(out, "train_data.png"))
    plt.show() if args.show else plt.close(fig)
    # Addition: --time-budget ends training early enough for what follows it: the last epoch's
    # end, the export (~1 s on a CPU) and three figures, each timed like this first one
    deadline = started + (args.time_budget or math.inf) - 1.5 - 4 * (time.monotonic() - t_figure)

    # 3.2.2 The DataLoader
    batch_size = args.batch_size
    train_loader = DataLoader(train_data, batch_size=batch_size, shuffle=True)
    # Addition: the same shuffled batches, indexed in one go instead of collated row by row
    # (~1 ms a batch saved, a third of the training time).
    train_loader = DataLoader(train_data, batch_size=None, sampler=BatchSampler(
        RandomSampler(train_data), batch_size=batch_size, drop_last=False))
    batch0 = next(iter(train_loader))
    print(f"batch0: {tuple(batch0.shape)}, first pair {batch0[0].tolist()}")

    # 3.3.1-3.3.2 The discriminator D and the generator G (listings 3.3, 3.4)
    low, high = train_data.min(0).values, train_data.max(0).values
    D = nn.Sequential(
        nn.Linear(2, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(64, 1)).to(device)  # Addition: logits, the book's nn.Sigmoid() is in loss_fn
    if args.scale:  # Addition: D sees (x, y) scaled to [-1, 1]
        D.insert(0, Scale(low, high, inverse=True).to(device))
    G = nn.Sequential(
        nn.Linear(2, 16),
        nn.ReLU(),
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Linear(32, 2)).to(device)
    if args.scale:  # Addition: Tanh bounds G's output to [-1, 1], Scale maps it to the data's
        G.extend([nn.Tanh(), Scale(low, high)]).to(device)
    print(f"D: {D}\nG: {G}")

    # 3.3.3 The loss function, optimizers and early stopping
    loss_fn = nn.BCEWithLogitsLoss()
    lr = args.lr
    optimD = torch.optim.Adam(D.parameters(), lr=lr, betas=(args.beta1, 0.999))
    optimG = torch.optim.Adam(G.parameters(), lr=lr, betas=(args.beta1, 0.999))
    stopper = EarlyStop(args.patience)
    # Additions, set up once: quality on a fixed noise batch, the kept G, records, progress.
    fixed_noise = torch.randn((args.eval_samples, 2), device=device)
    y_std = train_data[:, 1].std().item()
    best_state, best = None, None
    metrics_file = open(os.path.join(out, "metrics.csv"), "w", newline="", buffering=1)
    metrics = csv.DictWriter(metrics_file, ["epoch", "iteration", "loss_D", "loss_G", "D_x",
                             "D_G_z", "steps_per_sec", "mse", "ks", "best_epoch"])
    metrics.writeheader()
    G_losses, D_losses = [], []
    epochs = 1 if args.dry_run else args.epochs
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / epochs)
                  for opt in (optimD, optimG)] if args.anneal else []
    iteration, t_start, t_print = 0, time.perf_counter(), time.perf_counter()
    cpu_start = time.process_time()  # CPU time: the idle wall time on a busy machine

    # 3.4.1 The training loop (listing 3.10)
    for epoch in range(epochs):
        gloss = 0
        dloss = 0
        D_x = D_G_z = 0  # Addition: D's mean outputs, for metrics.csv
        t0 = time.perf_counter()
        for n, real_samples in enumerate(train_loader):
            loss_D, d_x = train_D_on_real(real_samples, D, loss_fn, optimD, device)
            dloss += loss_D
            loss_D, d_gz = train_D_on_fake(len(real_samples), D, G, loss_fn, optimD, device)
            dloss += loss_D
            loss_G, fake_samples = train_G(len(real_samples), D, G, loss_fn, optimG, device)
            gloss += loss_G
            D_x, D_G_z, iteration = D_x + d_x, D_G_z + d_gz, iteration + 1
            if args.dry_run or signal_stop.requested or time.monotonic() > deadline:
                break
        for scheduler in schedulers:
            scheduler.step()
        mse, ks = quality(G, fixed_noise, args.shape)  # Addition: on the fixed batch
        now, steps = time.perf_counter(), n + 1
        left = datetime.timedelta(seconds=round(max(0, min(
            (now - t_start) / (epoch + 1) * (epochs - epoch - 1), deadline - time.monotonic()))))
        if test_epoch(epoch, gloss, dloss, n, fake_samples, train_data, args.shape, out,
                      args.plot_every, f", MSE {mse:.3f}, KS {ks:.3f} | "
                      f"{steps / (now - t0):.0f} steps/s, ETA {left} (at most)",
                      force=args.dry_run or now - t_print > 10):
            t_print = now
        gdif = performance(fake_samples, args.shape) if args.stop_on == "batch-mse" \
            else math.sqrt(mse) / y_std + ks  # Addition: --stop-on
        gdif = gdif if math.isfinite(gdif) else float("inf")
        stop = stopper.stop(gdif)
        # Additions: keep the best G, record the epoch
        if stopper.improved or best_state is None:
            best_state = {k: v.clone() for k, v in G.state_dict().items()}
            best = dict(epoch=epoch + 1, mse=mse, ks=ks)
        G_losses.append(gloss.item() / steps)
        D_losses.append(dloss.item() / steps)
        metrics.writerow(dict(epoch=epoch + 1, iteration=iteration, loss_D=D_losses[-1],
                              loss_G=G_losses[-1], D_x=D_x.item() / steps,
                              D_G_z=D_G_z.item() / steps, steps_per_sec=steps / (now - t0),
                              mse=mse, ks=ks, best_epoch=best["epoch"]))
        stop_if_diverged(G_losses[-1], D_losses[-1], f"epoch {epoch + 1}", args.lr, DEFAULT_LR,
                         metrics_file)  # Addition: a NaN/inf loss stops the run
        if stop:
            print(f"early stop at epoch {epoch + 1}: no better generator for "
                  f"{args.patience} epochs")
            break
        if signal_stop.requested or time.monotonic() > deadline:
            break
    metrics_file.close()
    train_s = time.perf_counter() - t_start
    budget_spent = not stop and time.monotonic() > deadline

    # 3.4.2 Save the generator: torch.export replaces the deprecated torch.jit.script
    if args.keep == "best":
        G.load_state_dict(best_state)
        print(f"keeping the best generator: epoch {best['epoch']} (MSE {best['mse']:.3f}, "
              f"KS {best['ks']:.3f})")
    save_generator(G.cpu(), (torch.randn(4, 2),), out, SCRIPT,
                   {"shape": args.shape, "scale": args.scale})
    saved_s, saved_cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    save_loss_plot(os.path.join(out, "losses.png"), G_losses, D_losses)

    # ... and use it: load it, draw new samples, plot them over the real ones
    new_G, _ = load_G(os.path.join(out, "generator_weights.pt"))
    noise = torch.randn((args.eval_samples, 2))
    with torch.no_grad():
        new_data = new_G(noise)
    plot_points(os.path.join(out, "new_samples.png"), new_data.numpy(), train_data,
                args.shape, f"{s['title'].split(' ', 1)[1].capitalize()} generated by GANs")
    mse, ks = performance(new_data, args.shape), ks_uniform(new_data[:, 0], s["low"], s["high"])
    print(f"trained {iteration} steps in {train_s:.1f} s; generator saved after {saved_s:.1f} s "
          f"({saved_cpu:.1f} s of CPU time)")
    print(f"files in {out}/: generator.pt2, generator_weights.pt, metrics.csv, losses.png, "
          f"train_data.png, p*.png, new_samples.png")
    if signal_stop.requested:
        print("interrupted: the generator trained so far is saved", file=sys.stderr)
        return 130
    if budget_spent:
        print(f"--time-budget {args.time_budget:g} s spent: stopped after epoch {len(G_losses)} "
              f"of {epochs} ({time.monotonic() - started:.1f} s in all)")
    print(f"final quality of the saved generator on {args.eval_samples} new samples: "
          f"MSE {mse:.4f}, KS {ks:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
