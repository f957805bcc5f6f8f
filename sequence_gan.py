"""A GAN that generates integers that are multiples of 5 (book chapter 3, section 3.5).

Follows ../shared/seeds/001_266aebb6ef892b0e.txt with its names (onehot_encoder,
int_to_onehot, onehot_to_int, gen_sequence, gen_batch, data_to_num, D, G, loss_fn, optimD,
optimG, train_D_G, EarlyStop(800), distance) and exercise 3.4 as --multiple (3, 7, ...).

    python sequence_gan.py                      # ~2 s of training on a 2-core CPU
    python sequence_gan.py --multiple 3
    python sequence_gan.py --generate files/num_gen.pt2 --num-samples 10000

Writes to --out (default `files`, as the book): num_gen.pt2 (the best generator, torch.export:
noise (N, 100) standard normal -> (N, 100) scores; the argmax of a row is the integer 0-99),
metrics.csv, losses.png, histogram.png (how often each integer comes out of 10,000 samples).
--generate writes samples.csv (one integer a line) and histogram.png.

Quality, printed and recorded as training goes, over 10,000 samples: validity (share of
multiples), coverage (how many of the valid values appear) and balance (most / least frequent
valid value; 1.0 is perfect, but 10,000 draws from a perfectly uniform sampler give about
1.25 for 20 values, because each count varies by about +-sqrt(500)).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import (ArgumentParser, MetricsCSV, export_generator, fail, format_eta,
                    format_flags, load_generator, make_out_dir, pick_device, positive_float,
                    positive_int, run, save_loss_plot, set_seed, use_agg_unless)


# -- 1. Arguments: the book's settings are all reachable (see the README) ------------------
def multiple_type(text):
    """argparse type: an integer in 1..99."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 99:
        raise argparse.ArgumentTypeError(f"must be in 1..99, got {value}")
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def parse_args(argv=None):
    p = ArgumentParser(description="GAN that generates integers 0-99 that are multiples of "
                       "--multiple (book chapter 3, section 3.5; seed 001).")
    p.add_argument("--multiple", type=multiple_type, default=5,
                   help="generate multiples of this number (book: 5; exercise 3.4: 3)")
    p.add_argument("--epochs", type=positive_int, default=1000,
                   help="training iterations, one batch each (book: 10000, stopped early)")
    # A batch of 10 tells D little about how often each value comes up; 256 does, and the
    # feature-matching term below needs a batch whose histogram means something (book: 10).
    p.add_argument("--batch-size", type=positive_int, default=256, help="numbers per batch (book: 10)")
    p.add_argument("--lr", type=positive_float, default=0.005,
                   help="Adam learning rate (book: 0.0005, fine for its 10,000 iterations)")
    p.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=True,
                   help="decay the learning rate linearly to 0 over --epochs (book: constant)")
    p.add_argument("--output", choices=["softmax", "relu"], default="softmax",
                   help="G's output layer: softmax (scores that sum to 1, like a one-hot) or "
                   "the book's ReLU")
    p.add_argument("--feature-matching", type=non_negative_float, default=100.0,
                   help="weight of the feature-matching term in G's loss: (batch histogram of "
                   "fakes - of reals)^2, against mode collapse (book: 0, none)")
    p.add_argument("--patience", type=positive_int, default=800,
                   help="stop when quality has not improved for this many iterations (book: 800)")
    # With the annealed learning rate the last generator is the most balanced; "best" ranks
    # late generators by differences that are within the sampling noise of --eval-samples.
    p.add_argument("--keep", choices=["best", "last"], default="last",
                   help="save the last generator (the book), or the best the early stopper saw")
    p.add_argument("--eval-every", type=positive_int, default=25,
                   help="measure validity, coverage and balance every N iterations")
    p.add_argument("--eval-samples", type=positive_int, default=10000,
                   help="generated numbers behind the quality figures")
    p.add_argument("--seed", type=int, default=0, help="random seed (the book sets none here)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu",
                   help="accepted for uniformity, but training stays on the CPU: a 100x100 "
                   "layer is faster there than a GPU's kernel launches")
    p.add_argument("--out", default="files", help="folder for everything written (book: files)")
    p.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then write every output file")
    p.add_argument("--show", action="store_true", help="also show the figures in windows")
    p.add_argument("--generate", metavar="PATH",
                   help="no training: load a saved num_gen.pt2 and write samples.csv/histogram.png")
    p.add_argument("--num-samples", type=positive_int, default=10000, help="numbers for --generate")
    return p.parse_args(argv)


# -- 2. Data: one-hot variables and batches of multiples (3.5.1, 3.5.2) ---------------------
def onehot_encoder(position, depth):
    onehot = torch.zeros((depth,))
    onehot[position] = 1
    return onehot


def int_to_onehot(number):
    return onehot_encoder(number, 100)


def onehot_to_int(onehot):
    return torch.argmax(onehot).item()


def gen_sequence(n=10, multiple=5):
    """n integers in 0-99 that are multiples of `multiple` (book: 10 multiples of 5)."""
    indices = torch.randint(0, (99 // multiple) + 1, (n,))
    return indices * multiple


def gen_batch(n=10, multiple=5):
    # The book one-hot-encodes number by number through NumPy; F.one_hot does the whole batch.
    return F.one_hot(gen_sequence(n, multiple), 100).float()


def data_to_num(data):
    return torch.argmax(data, dim=-1)


# -- 3. Networks: the book's D (Linear 100-1) and G (Linear 100-100) ------------------------
def make_D():
    # Logits: the book's nn.Sigmoid() moves into BCEWithLogitsLoss (same maths, stable).
    return nn.Sequential(nn.Linear(100, 1))


def make_G(output="softmax"):
    # The book ends G with ReLU: its outputs can grow without bound, and D (linear) scores a 5
    # on a valid position higher than the real one-hot 1, so G piles every sample onto the
    # one value D likes most. Softmax keeps each output a distribution, like a one-hot.
    return nn.Sequential(nn.Linear(100, 100), nn.Softmax(dim=-1) if output == "softmax" else nn.ReLU())


class EarlyStop:
    """The book's listing 3.5, plus `improved`: whether the last value was a new best."""

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


# -- Quality figures ---------------------------------------------------------------------------
def distance(generated_data, multiple=5):
    """The book's distance(): mean squared remainder of the generated numbers (0 = all valid).
    (The book's version mixes an integer (10,) with a float (10, 1) tensor, which broadcasts to
    (10, 10) and fails on an integer input in current PyTorch.)"""
    remainders = (data_to_num(generated_data) % multiple).double()
    return torch.mean(remainders ** 2).item()


def quality(nums, multiple=5):
    """validity: share of multiples; coverage: how many of the valid values appear (and how many
    there are); balance: count of the most / least frequent valid value (inf if one is missing)."""
    nums = nums.flatten().cpu()
    valid_values = torch.arange(0, 100, multiple)
    ok = nums % multiple == 0
    counts = torch.bincount(nums[ok], minlength=100)[valid_values]
    covered = int((counts > 0).sum())
    balance = counts.max().item() / counts.min().item() if covered == len(valid_values) else float("inf")
    return dict(validity=ok.double().mean().item(), coverage=covered, values=len(valid_values),
                balance=balance)


def describe(q):
    return (f"valid {100 * q['validity']:.2f}%, coverage {q['coverage']}/{q['values']}, "
            f"balance {q['balance']:.2f}")


def save_histogram(plt, path, nums, multiple, title):
    counts = torch.bincount(nums.flatten().cpu(), minlength=100).numpy()
    fig = plt.figure(figsize=(10, 3.5), dpi=80)
    colors = ["tab:green" if v % multiple == 0 else "tab:red" for v in range(100)]
    plt.bar(np.arange(100), counts, color=colors, width=0.8)
    plt.axhline(len(nums) / len(range(0, 100, multiple)), color="k", lw=0.8, ls="--",
                label="uniform over the valid values")
    plt.xlabel(f"generated integer (green: multiple of {multiple})")
    plt.ylabel("count")
    plt.title(title)
    plt.legend()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# -- 4. Training: the book's train_D_G, plus feature matching ----------------------------------
def train_D_G(D, G, loss_fn, optimD, optimG, batch_size=10, multiple=5, feature_matching=0.0):
    """D on a real batch, D on a fake batch, G on fresh noise (the book's three steps).
    Returns the last fake batch, the losses and D's mean outputs on real and fake."""
    real_labels = torch.ones((batch_size, 1))
    fake_labels = torch.zeros((batch_size, 1))
    true_data = gen_batch(batch_size, multiple)
    preds = D(true_data)
    loss_D1 = loss_fn(preds, real_labels)
    optimD.zero_grad()
    loss_D1.backward()
    optimD.step()
    noise = torch.randn(batch_size, 100)
    generated_data = G(noise).detach()  # detached: D's step needs no gradient through G
    preds_fake = D(generated_data)
    loss_D2 = loss_fn(preds_fake, fake_labels)
    optimD.zero_grad()
    loss_D2.backward()
    optimD.step()
    noise = torch.randn(batch_size, 100)
    generated_data = G(noise)
    loss_G = loss_fn(D(generated_data), real_labels)
    if feature_matching:
        # Feature matching (Salimans et al. 2016; seed 003's cure for mode collapse): D is one
        # linear layer, so its features are its inputs, and matching their batch means makes
        # G's histogram of values match the real, uniform one. The real mean comes from 8
        # batches' worth of real numbers: one batch's histogram is too noisy (~+-35% a value).
        real_features = gen_batch(8 * batch_size, multiple).mean(0)
        loss_G = loss_G + feature_matching * ((generated_data.mean(0) - real_features) ** 2).sum()
    optimG.zero_grad()
    loss_G.backward()
    optimG.step()
    return (generated_data.detach(), (loss_D1 + loss_D2).item(), loss_G.item(),
            torch.sigmoid(preds).mean().item(), torch.sigmoid(preds_fake).mean().item())


# -- 6. Generate: numbers from a saved generator, no training ---------------------------------


def check_generator(path):
    new_G = load_generator(path)
    try:
        with torch.no_grad():
            out = new_G(torch.randn(2, 100))
    except Exception as e:
        fail(f"{path} does not take noise of shape (N, 100) ({type(e).__name__}); "
             f"pass a num_gen.pt2 written by this script")
    if not (isinstance(out, torch.Tensor) and out.shape == (2, 100)):
        fail(f"{path} does not return (N, 100) scores; pass a num_gen.pt2 written by this script")
    return new_G


def sample_numbers(new_G, n):
    """n integers from a generator: the argmax of its scores for n noise vectors."""
    with torch.no_grad():
        return data_to_num(new_G(torch.randn(n, 100)))


def generate(args, plt):
    new_G = check_generator(args.generate)
    out = make_out_dir(args.out)
    set_seed(args.seed)
    nums = sample_numbers(new_G, args.num_samples)
    csv_path = os.path.join(out, "samples.csv")
    np.savetxt(csv_path, nums.numpy(), fmt="%d", header="number", comments="")
    png_path = os.path.join(out, "histogram.png")
    save_histogram(plt, png_path, nums, args.multiple,
                   f"{args.num_samples} numbers from {os.path.basename(args.generate)}")
    print(f"first ten: {nums[:10].tolist()}")
    print(f"wrote {csv_path} and {png_path}")
    print(f"quality against --multiple {args.multiple}: {describe(quality(nums, args.multiple))}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    if args.generate:
        return generate(args, plt)
    device = pick_device(args.device)
    if device.type != "cpu":
        print(f"note: these networks are tiny; training runs on the CPU (asked: {device})")
    out = make_out_dir(args.out)
    print("arguments: " + format_flags(args))
    print(f"seed: {args.seed}\ndevice: cpu")
    set_seed(args.seed)
    torch.set_num_threads(1)  # tiny matrices: one thread beats the cost of waking others

    # 3.5.1-3.5.2 One-hot variables and the training data
    print(f"int_to_onehot(75) has its 1 at {onehot_to_int(int_to_onehot(75))}; "
          f"a real sequence: {gen_sequence(10, args.multiple).tolist()}")

    # D, G, loss, optimizers, early stopping
    D, G = make_D(), make_G(args.output)
    print(f"D: {D}\nG: {G}")
    loss_fn = nn.BCEWithLogitsLoss()
    optimD = torch.optim.Adam(D.parameters(), lr=args.lr)
    optimG = torch.optim.Adam(G.parameters(), lr=args.lr)
    # The book calls stop() every iteration with patience 800; quality is measured every
    # --eval-every iterations on --eval-samples numbers (the book's 10 are too few to see balance).
    stopper = EarlyStop(max(1, math.ceil(args.patience / args.eval_every)))
    fixed_noise = torch.randn((args.eval_samples, 100))

    # 3.5.3 Training (listing 3.11)
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"))
    G_losses, D_losses, best_state, best = [], [], None, None
    epochs = 1 if args.dry_run else args.epochs
    t_start, t_log, interrupted = time.perf_counter(), time.perf_counter(), False
    cpu_start = time.process_time()  # CPU time: the idle wall time on a busy machine
    try:
        for i in range(epochs):
            if args.anneal:
                for opt in (optimD, optimG):
                    for group in opt.param_groups:
                        group["lr"] = args.lr * (1 - i / epochs)
            generated_data, dloss, gloss, d_x, d_gz = train_D_G(
                D, G, loss_fn, optimD, optimG, args.batch_size, args.multiple, args.feature_matching)
            D_losses.append(dloss)
            G_losses.append(gloss)
            last = i == epochs - 1
            if i % args.eval_every and not last:
                continue
            with torch.no_grad():
                q = quality(data_to_num(G(fixed_noise)), args.multiple)
            dis = distance(generated_data, args.multiple)
            # gdif: the book's distance() is 0 for any valid G, collapsed or not; this ranks
            # validity first, then coverage, then balance.
            gdif = 10 * (1 - q["validity"]) + (1 - q["coverage"] / q["values"]) + \
                math.log(min(q["balance"], 1e6))
            stop = stopper.stop(gdif)
            if stopper.improved or best_state is None:
                best_state = {k: v.clone() for k, v in G.state_dict().items()}
                best = dict(iteration=i + 1, **q)
            now = time.perf_counter()
            steps_per_sec = (args.eval_every if i else 1) / max(now - t_log, 1e-9)
            t_log = now
            metrics.write(epoch=i + 1, iteration=i + 1, loss_D=dloss, loss_G=gloss, D_x=d_x,
                          D_G_z=d_gz, steps_per_sec=steps_per_sec, distance=dis, **q)
            if i % 50 == 0 or last:  # the book prints the generated sequence every 50 iterations
                eta = (now - t_start) / (i + 1) * (epochs - i - 1)
                print(f"{data_to_num(generated_data[:10]).tolist()}  iteration {i + 1}: "
                      f"{describe(q)} | {steps_per_sec:.0f} steps/s, ETA {format_eta(eta)}")
            if stop:
                print(f"early stop at iteration {i + 1}: no better generator for {args.patience} iterations")
                break
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: saving the generator trained so far", file=sys.stderr)
    train_s = time.perf_counter() - t_start

    # 3.5.4 Save the generator (torch.export replaces the deprecated torch.jit.script)
    if args.keep == "best" and best_state is not None:
        G.load_state_dict(best_state)
        print(f"keeping the best generator: iteration {best['iteration']} ({describe(best)})")
    path = os.path.join(out, "num_gen.pt2")
    export_generator(G, (torch.randn(4, 100),), path)
    saved_s, saved_cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    save_loss_plot(os.path.join(out, "losses.png"), {"G": G_losses, "D": D_losses})

    # ... and use it without the class: load it, print a new sequence, measure 10,000 numbers
    new_G = load_generator(path)
    with torch.no_grad():
        print(f"a new sequence from {path}: {data_to_num(new_G(torch.randn((10, 100)))).tolist()}")
    nums = sample_numbers(new_G, args.eval_samples)
    save_histogram(plt, os.path.join(out, "histogram.png"), nums, args.multiple,
                   f"{args.eval_samples} numbers from num_gen.pt2 (multiples of {args.multiple})")
    print(f"trained {len(G_losses)} iterations in {train_s:.1f} s; generator saved after "
          f"{saved_s:.1f} s ({saved_cpu:.1f} s of CPU time)")
    print(f"files in {out}/: num_gen.pt2, metrics.csv, losses.png, histogram.png")
    print(f"final quality of {path} on {args.eval_samples} new numbers: "
          f"{describe(quality(nums, args.multiple))}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(run(main))
