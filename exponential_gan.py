"""A GAN that generates points (x, y) on a curve: y = 1.08^x (book chapter 3, sections 3.1-3.4).

Follows ../shared/seeds/001_266aebb6ef892b0e.txt step by step with its names (train_data,
train_loader, D, G, loss_fn, optimD, optimG, performance, EarlyStop, train_D_on_real,
train_D_on_fake, train_G, test_epoch), and the chapter's exercises as --shape
(sine / cosine over x in [-5, 5], quadratic: the U shape y = x^2).

    python exponential_gan.py                         # ~15 s on a 2-core CPU
    python exponential_gan.py --shape sine
    python exponential_gan.py --generate files/exponential.pt2 --num-samples 1000

Writes to --out (default `files`, as the book): train_data.png (the training set),
p{epoch}.png (generated over real points at epoch 1 and every --plot-every epochs),
exponential.pt2 (the best generator, torch.export: noise (N, 2) standard normal -> (N, 2)
points (x, y) in the data's own units; named after --shape), generated.png (new samples from
the reloaded file), losses.png, metrics.csv. --generate writes samples.csv and samples.png.

Quality, as in the book, is measured, not eyeballed: MSE of y against f(x) (the book's
performance()) and the Kolmogorov-Smirnov distance of x against the uniform x of the data.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from common import (ArgumentParser, MetricsCSV, adam_beta, export_generator, fail, format_eta,
                    format_flags, load_generator, make_out_dir, pick_device, positive_float,
                    positive_int, run, save_loss_plot, set_seed, use_agg_unless)

# Each shape: x range of the data, y = f(x), plot limits, labels (exercises 3.1-3.3).
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


# -- 1. Arguments: the book's settings are all reachable (see the README) ------------------
def parse_args(argv=None):
    p = ArgumentParser(description="GAN that learns to draw points on a curve "
                       "(book chapter 3, sections 3.1-3.4; seed 001).")
    p.add_argument("--shape", choices=list(SHAPES), default="exponential",
                   help="the curve: exponential y=1.08^x, x in [0,50] (the book); sine, cosine, "
                   "quadratic (U: y=x^2) over x in [-5,5] (exercises 3.1-3.3)")
    p.add_argument("--observations", type=positive_int, default=2048,
                   help="training pairs (x, y); x uniform over the shape's range")
    # 200 epochs of batch 256 at lr 0.002, annealed, reach MSE ~0.3 where the book's 10,000
    # epochs at 0.0005 (about 3 minutes with its patience) stop at MSE ~8-16.
    p.add_argument("--epochs", type=positive_int, default=200,
                   help="most passes over the data (book: 10000, stopped early by patience)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="pairs per step (book: 128)")
    p.add_argument("--lr", type=positive_float, default=0.002, help="Adam learning rate (book: 0.0005)")
    p.add_argument("--beta1", type=adam_beta, default=0.5,
                   help="Adam beta1; 0.5 damps the GAN's oscillations (book: 0.9, Adam's default)")
    p.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=True,
                   help="decay the learning rate linearly to 0 over --epochs (book: constant)")
    p.add_argument("--patience", type=positive_int, default=100,
                   help="stop when the quality has not improved for this many epochs (book: 1000)")
    p.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                   help="scale (x, y) to [-1, 1] inside D and G, with a Tanh on G's output (the book: raw units)")
    p.add_argument("--keep", choices=["best", "last"], default="best",
                   help="save the best generator the early stopper saw, or the last (the book)")
    p.add_argument("--eval-samples", type=positive_int, default=4096,
                   help="generated points behind the quality figures (MSE, KS)")
    p.add_argument("--plot-every", type=positive_int, default=25,
                   help="save p{epoch}.png at epoch 1 and every N epochs (book: 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (book: 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu",
                   help="cpu is fastest for these tiny networks; auto picks cuda, then mps, then cpu")
    p.add_argument("--out", default="files", help="folder for everything written (book: files)")
    p.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then write every output file")
    p.add_argument("--show", action="store_true", help="also show the figures in windows")
    p.add_argument("--generate", metavar="PATH",
                   help="no training: load a saved generator (.pt2) and write samples.csv/png")
    p.add_argument("--num-samples", type=positive_int, default=4096, help="points for --generate")
    args = p.parse_args(argv)
    if args.observations < 2:
        p.error("--observations must be at least 2 (the scaling needs the data's range)")
    return args


# -- Quality figures: the book's performance() plus a coverage measure ----------------------
def performance(fake_samples, shape="exponential"):
    """The book's measure: mean squared error of y against the curve f(x) (lower is better)."""
    fake_samples = fake_samples.detach().double()
    real = SHAPES[shape]["f"](fake_samples[:, 0])
    return torch.mean((fake_samples[:, 1] - real) ** 2).item()


def ks_uniform(x, low, high):
    """Kolmogorov-Smirnov distance between the sample x and Uniform[low, high] (0 = perfect).

    performance() alone is fooled by a generator that draws only part of the curve (all points
    near x = 0 have tiny errors); this says how evenly x covers the data's range."""
    x = torch.sort(x.detach().double().flatten()).values
    n = len(x)
    cdf = ((x - low) / (high - low)).clamp(0, 1)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return max((i / n - cdf).max().item(), (cdf - (i - 1) / n).max().item())


# -- 2. Data: the book's training set and DataLoader ---------------------------------------
def make_train_data(shape, observations, seed=0):
    """Listing 3.1 (and exercise 3.1): x uniform over the shape's range, y = f(x)."""
    s = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)  # the book's torch.manual_seed(0), kept local
    train_data = torch.zeros((observations, 2))
    train_data[:, 0] = s["low"] + (s["high"] - s["low"]) * torch.rand(observations, generator=g)
    train_data[:, 1] = s["f"](train_data[:, 0])
    return train_data


def make_loader(train_data, batch_size):
    # The book's DataLoader(train_data, batch_size, shuffle=True) collates 128 rows one by one
    # (~1 ms a batch); sampling whole index batches and indexing once gives the same shuffled
    # batches of the same sizes for a fraction of the cost.
    sampler = BatchSampler(RandomSampler(train_data), batch_size=batch_size, drop_last=False)
    return DataLoader(train_data, sampler=sampler, batch_size=None)


# -- 3. Networks: the book's D (2-256-128-64-1) and G (2-16-32-2) ----------------------------
class Scale(nn.Module):
    """Maps [-1, 1] to the data's range [low, high] per column (G's output, after a Tanh), or
    back (D's input, inverse=True). The book feeds raw units (x up to 50, y up to 47) to layers
    initialised for inputs of size ~1, which slows learning, and its G's unbounded output
    lands some points beyond x = 50, where y = 1.08^x runs away. Buffers, so the exported G
    still returns raw (x, y)."""

    def __init__(self, low, high, inverse=False):
        super().__init__()
        self.register_buffer("mid", (high + low) / 2)
        self.register_buffer("radius", (high - low) / 2)
        self.inverse = inverse

    def forward(self, x):
        return (x - self.mid) / self.radius if self.inverse else x * self.radius + self.mid


def make_D(low, high, scale):
    return nn.Sequential(
        Scale(low, high, inverse=True) if scale else nn.Identity(),  # added: (x, y) to [-1, 1]
        nn.Linear(2, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(64, 1))  # logits: the book's nn.Sigmoid() moved into BCEWithLogitsLoss (stable)


def make_G(low, high, scale):
    return nn.Sequential(
        nn.Linear(2, 16),
        nn.ReLU(),
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Linear(32, 2),
        *([nn.Tanh(), Scale(low, high)] if scale else []))  # added: bounded, in data units


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


# -- 4. Training: the book's three steps and test_epoch ---------------------------------------
def make_steps(D, G, loss_fn, optimD, optimG, device):
    """train_D_on_real, train_D_on_fake and train_G of listings 3.6-3.8. The labels are built
    per batch size (the book's fixed (128, 1) labels break on a last, smaller batch)."""

    def labels(n, value):
        return torch.full((n, 1), value, device=device)

    def train_D_on_real(real_samples):
        real_samples = real_samples.to(device)
        optimD.zero_grad()
        out_D = D(real_samples)
        loss_D = loss_fn(out_D, labels(len(real_samples), 1.0))
        loss_D.backward()
        optimD.step()
        return loss_D.detach(), torch.sigmoid(out_D).mean().detach()

    def train_D_on_fake(n):
        noise = torch.randn((n, 2), device=device)
        fake_samples = G(noise).detach()  # detached: the D step needs no gradient through G
        optimD.zero_grad()
        out_D = D(fake_samples)
        loss_D = loss_fn(out_D, labels(n, 0.0))
        loss_D.backward()
        optimD.step()
        return loss_D.detach(), torch.sigmoid(out_D).mean().detach()

    def train_G(n):
        noise = torch.randn((n, 2), device=device)
        optimG.zero_grad()
        fake_samples = G(noise)
        D.requires_grad_(False)  # G's step needs no gradients for D's weights: ~1/3 less work
        out_G = D(fake_samples)
        loss_G = loss_fn(out_G, labels(n, 1.0))
        loss_G.backward()
        D.requires_grad_(True)
        optimG.step()
        return loss_G.detach(), fake_samples.detach()

    return train_D_on_real, train_D_on_fake, train_G


def plot_points(plt, path, fake, train_data, s, title):
    """Generated points (green stars) over the real ones (red dots), as the book's figures."""
    fig = plt.figure(dpi=100)
    plt.plot(fake[:, 0], fake[:, 1], "*", c="g", label="generated samples")
    plt.plot(train_data[:, 0], train_data[:, 1], ".", c="r", alpha=0.1, label="real samples")
    plt.title(title)
    plt.xlim(*s["xlim"])
    plt.ylim(*s["ylim"])
    plt.legend()
    fig.savefig(path)
    plt.close(fig)


def test_epoch(plt, out, epoch, g, d, fake_samples, train_data, s, extra=""):
    """Listing 3.9: print the mean losses, save the last fake batch over the real points."""
    print(f"at epoch {epoch + 1}, G loss: {g:.4f}, D loss {d:.4f}{extra}")
    plot_points(plt, os.path.join(out, f"p{epoch + 1}.png"), fake_samples.cpu().numpy(),
                train_data, s, f"epoch {epoch + 1}")


# -- 6. Generate: samples from a saved generator, no training ---------------------------------


def check_generator(path, n_in=2, n_out=2):
    new_G = load_generator(path)
    try:
        with torch.no_grad():
            out = new_G(torch.randn(2, n_in))
    except Exception as e:
        fail(f"{path} does not take noise of shape (N, {n_in}) ({type(e).__name__}); "
             f"pass a .pt2 written by this script")
    if not (isinstance(out, torch.Tensor) and out.shape == (2, n_out)):
        fail(f"{path} does not return (N, {n_out}) points; pass a .pt2 written by this script")
    return new_G


def generate(args, plt):
    new_G = check_generator(args.generate)
    out = make_out_dir(args.out)
    set_seed(args.seed)
    with torch.no_grad():
        new_data = new_G(torch.randn((args.num_samples, 2))).double()
    csv_path = os.path.join(out, "samples.csv")
    np.savetxt(csv_path, new_data.numpy(), delimiter=",", header="x,y", comments="", fmt="%.6f")
    s = SHAPES[args.shape]
    png_path = os.path.join(out, "samples.png")
    plot_points(plt, png_path, new_data.numpy(), make_train_data(args.shape, args.observations), s,
                f"{args.num_samples} points from {os.path.basename(args.generate)}")
    print(f"wrote {csv_path} and {png_path}")
    print(f"quality against --shape {args.shape}: MSE {performance(new_data, args.shape):.4f}, "
          f"KS {ks_uniform(new_data[:, 0], s['low'], s['high']):.4f}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    if args.generate:
        return generate(args, plt)
    device = pick_device(args.device)
    out = make_out_dir(args.out)
    print("arguments: " + format_flags(args))
    print(f"seed: {args.seed}\ndevice: {device}")
    set_seed(args.seed)
    s = SHAPES[args.shape]
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny matrices: one thread beats the cost of waking others

    # 3.2.1 The training set and its plot (listings 3.1, 3.2)
    train_data = make_train_data(args.shape, args.observations)
    fig = plt.figure(dpi=100, figsize=(8, 6))
    plt.plot(train_data[:, 0], train_data[:, 1], ".", c="r")
    plt.xlabel("values of x", fontsize=15)
    plt.ylabel(f"values of {s['ylabel']}", fontsize=15)
    plt.title(s["title"], fontsize=20)
    fig.savefig(os.path.join(out, "train_data.png"))
    plt.show() if args.show else plt.close(fig)

    # 3.2.2 The DataLoader
    train_loader = make_loader(train_data, args.batch_size)
    batch0 = next(iter(train_loader))
    print(f"data: {len(train_data)} pairs (x, y); first batch {tuple(batch0.shape)}")

    # 3.3 D, G, loss, optimizers, performance() and EarlyStop
    low, high = train_data.min(0).values, train_data.max(0).values
    D = make_D(low, high, args.scale).to(device)
    G = make_G(low, high, args.scale).to(device)
    print(f"D: {D}\nG: {G}")
    loss_fn = nn.BCEWithLogitsLoss()
    optimD = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    optimG = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    stopper = EarlyStop(args.patience)
    train_D_on_real, train_D_on_fake, train_G = make_steps(D, G, loss_fn, optimD, optimG, device)
    # Quality on a fixed noise batch of --eval-samples (the book scores the last 128-point batch,
    # which is noisy); gdif = RMSE in units of y's spread + KS balances fit and coverage.
    fixed_noise = torch.randn((args.eval_samples, 2), device=device)
    y_std = train_data[:, 1].std().item()
    best_state, best = None, None

    # 3.4.1 The training loop (listing 3.10) with test_epoch (listing 3.9)
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"))
    G_losses, D_losses = [], []
    epochs = 1 if args.dry_run else args.epochs
    iteration, t_start, interrupted = 0, time.perf_counter(), False
    cpu_start = time.process_time()  # CPU time: the idle wall time on a busy machine
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            if args.anneal:
                for opt in (optimD, optimG):
                    for group in opt.param_groups:
                        group["lr"] = args.lr * (1 - epoch / epochs)
            gloss = dloss = dx = dgz = 0
            for n, real_samples in enumerate(train_loader):
                loss_D, d_x = train_D_on_real(real_samples)
                dloss = dloss + loss_D
                loss_D, d_gz = train_D_on_fake(len(real_samples))
                dloss = dloss + loss_D
                loss_G, fake_samples = train_G(len(real_samples))
                gloss = gloss + loss_G
                dx, dgz = dx + d_x, dgz + d_gz
                iteration += 1
                if args.dry_run:
                    break
            n += 1  # the book divides by the last index n, one less than the number of batches
            with torch.no_grad():
                G.eval()
                fake = G(fixed_noise).cpu()
                G.train()
            mse, ks = performance(fake, args.shape), ks_uniform(fake[:, 0], s["low"], s["high"])
            gdif = math.sqrt(mse) / y_std + ks if math.isfinite(mse) else float("inf")
            stop = stopper.stop(gdif)
            if stopper.improved or best_state is None:
                best_state = {k: v.clone() for k, v in G.state_dict().items()}
                best = dict(epoch=epoch + 1, mse=mse, ks=ks)
            g, d = gloss.item() / n, dloss.item() / n
            G_losses.append(g)
            D_losses.append(d)
            steps_per_sec = n / (time.perf_counter() - t0)
            metrics.write(epoch=epoch + 1, iteration=iteration, loss_D=d, loss_G=g,
                          D_x=dx.item() / n, D_G_z=dgz.item() / n, steps_per_sec=steps_per_sec,
                          mse=mse, ks=ks, best_epoch=best["epoch"])
            if epoch == 0 or (epoch + 1) % args.plot_every == 0 or args.dry_run:
                eta = (time.perf_counter() - t_start) / (epoch + 1) * (epochs - epoch - 1)
                test_epoch(plt, out, epoch, g, d, fake_samples, train_data, s,
                           f", MSE {mse:.3f}, KS {ks:.3f} | {steps_per_sec:.0f} steps/s, "
                           f"ETA {format_eta(eta)} (at most)")
            if stop:
                print(f"early stop at epoch {epoch + 1}: no better generator for {args.patience} epochs")
                break
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: saving the generator trained so far", file=sys.stderr)
    train_s = time.perf_counter() - t_start

    # 3.4.2 Save the generator (torch.export replaces the deprecated torch.jit.script)
    if args.keep == "best" and best_state is not None:
        G.load_state_dict(best_state)
        print(f"keeping the best generator: epoch {best['epoch']} (MSE {best['mse']:.3f}, KS {best['ks']:.3f})")
    path = os.path.join(out, f"{args.shape}.pt2")
    export_generator(G.cpu(), (torch.randn(4, 2),), path)
    saved_s, saved_cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    save_loss_plot(os.path.join(out, "losses.png"), {"G": G_losses, "D": D_losses}, xlabel="epochs")

    # ... and use it without the class: load, draw new samples, plot them over the real ones
    new_G = load_generator(path)
    with torch.no_grad():
        new_data = new_G(torch.randn((args.eval_samples, 2)))
    plot_points(plt, os.path.join(out, "generated.png"), new_data.numpy(), train_data, s,
                f"{s['title'].split(' ', 1)[1].capitalize()} generated by GANs")
    mse, ks = performance(new_data, args.shape), ks_uniform(new_data[:, 0], s["low"], s["high"])
    print(f"trained {iteration} steps in {train_s:.1f} s; generator saved after {saved_s:.1f} s "
          f"({saved_cpu:.1f} s of CPU time)")
    print(f"files in {out}/: {os.path.basename(path)}, metrics.csv, losses.png, train_data.png, "
          f"p*.png, generated.png")
    print(f"final quality of {path} on {args.eval_samples} new samples: MSE {mse:.4f}, KS {ks:.4f}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(run(main))
