"""A GAN that generates integers 0-99 that are multiples of 5.

Follows M. Liu, *Learn Generative AI with PyTorch* (Manning), chapter 3, section 3.5 (code:
https://github.com/markhliu/DGAI), with the book's names and order: onehot_encoder,
int_to_onehot, onehot_to_int, gen_sequence, gen_batch, data_to_num, D, G, loss_fn, optimD,
optimG, train_D_G, EarlyStop(800), distance. Exercise 3.4 (multiples of 3) is --multiple 3.

    python sequence_gan.py                       # ~2.5 s of training on a 2-core CPU
    python sequence_gan.py --tutorial            # the book's settings
    python sequence_gan.py --multiple 3 --out outputs/multiples_of_3
    python sequence_gan.py --generate outputs/sequence_gan/generator_weights.pt --num-samples 10000

Writes to --out (default outputs/sequence_gan; an earlier run there is refused unless
--overwrite, which replaces all of its files): generator.pt2 (torch.export, for other projects:
noise (N, 100) standard normal -> (N, 100) scores; the argmax of a row is the integer),
generator_weights.pt (its settings and weights: what --generate reads), metrics.csv, losses.png,
histogram.png (how often each integer comes out of --eval-samples draws). --generate PATH reads
a generator_weights.pt (torch.load with weights_only: no code runs) and writes samples.csv (one
integer a line) and generated.png (their histogram) into a new folder beside it (generated,
generated-2, ...), or into --out (refusing to replace them there unless --overwrite). Another
project loads generator.pt2 with torch.export.load(path).module() -- load only files you trust.

Quality, printed and recorded as training goes: validity (share of multiples), coverage (how
many of the valid values appear) and balance (most / least frequent valid value; 1.0 is perfect,
but 10,000 draws from a perfectly uniform sampler give about 1.25 for 20 values).

What differs from the book, and why:
- G ends in Softmax (the book: ReLU, whose unbounded outputs let G pile every sample on the one
  value D likes most), and a feature-matching term (batch histogram of fakes vs reals, weight
  100) joins G's loss against mode collapse: all 20 values, balanced, instead of a few.
- batch 256 (the book: 10), lr 0.005 annealed to 0 over 1,000 iterations (the book: 0.0005,
  constant, up to 10,000): 100% valid in ~2.5 s. --tutorial gives the book's settings.
- EarlyStop watches validity, coverage and balance of --eval-samples numbers every --eval-every
  iterations (the book: distance() of the last 10 numbers, 0 for any valid G, collapsed or not).
- D outputs logits with BCEWithLogitsLoss (the book: Sigmoid + BCELoss, same maths, stable);
  gen_batch one-hot-encodes with F.one_hot (the book: number by number through NumPy).
- torch.export (.pt2) replaces the deprecated torch.jit.script; files go under --out.
- loss curves, histogram, metrics.csv, progress with steps/s and ETA, --time-budget for the
  whole run; Ctrl-C/SIGTERM save the generator and exit 130; a diverging loss stops with an
  error.

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
import torch.nn.functional as F

from common import (ArgumentParser, as_flags, command_line, fail, generate_out, int_range,
                    load_checkpoint, parse, pick_device, positive_float, prepare_out, run,
                    save_generator, seed_int, stop_if_diverged, stop_on_ctrl_c)

SCRIPT = "sequence_gan"
# The book's own settings (section 3.5), what --tutorial switches to.
TUTORIAL_SETTINGS = dict(iterations=10000, batch_size=10, lr=0.0005, anneal=False,
                         output="relu", feature_matching=0.0, stop_on="distance", keep="last",
                         patience=800, device="auto")
DEFAULT_LR = 0.005
MAX = 10**6  # cap of the counts: no accepted value can exhaust memory


# -- 1. Arguments ------------------------------------------------------------------------------
def weight(text):
    """argparse type: a number from 0 to 1e6."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1e6:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1e6, got {text}")
    return value


def parse_args(argv=None):
    p = ArgumentParser(prog=os.path.basename(__file__),
                       description="GAN that generates integers 0-99 that are multiples "
                       "of --multiple (M. Liu, Learn Generative AI with PyTorch, chapter 3.5).")
    book = p.add_argument_group("the tutorial's inputs")
    book.add_argument("--tutorial", action="store_true",
                      help="the book's exact settings: " + as_flags(TUTORIAL_SETTINGS))
    book.add_argument("--multiple", type=int_range(1, 99), default=5,
                      help="generate multiples of this number (exercise 3.4: 3)")
    book.add_argument("--iterations", type=int_range(1, MAX), default=1000,
                      help="most training iterations, one batch each (early stopping may end "
                      "sooner)")
    book.add_argument("--batch-size", type=int_range(1, 10**4), default=256,
                      help="numbers per batch; 256 tell D how often each value comes up "
                      "(the book: 10)")
    book.add_argument("--lr", type=positive_float, default=DEFAULT_LR, help="Adam learning rate")
    book.add_argument("--patience", type=int_range(1, MAX), default=800,
                      help="EarlyStop: stop after this many iterations without improvement")
    speed = p.add_argument_group("data and speed")
    speed.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu",
                       help="auto: cuda, then mps, then cpu (the default is cpu: a 100x100 "
                       "layer runs fastest there)")
    better = p.add_argument_group("additions")
    better.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=True,
                        help="lower the learning rate in a straight line to 0 over --iterations "
                        "(the book: constant)")
    better.add_argument("--output", choices=["softmax", "relu"], default="softmax",
                        help="G's output layer: softmax (scores that sum to 1, like a one-hot) "
                        "or the book's ReLU")
    better.add_argument("--feature-matching", type=weight, default=100.0,
                        help="weight of (batch histogram of fakes - of reals)^2 in G's loss, "
                        "against G drawing only a few values (0: none, as the book)")
    better.add_argument("--stop-on", choices=["quality", "distance"], default="quality",
                        help="what EarlyStop watches: validity, coverage and balance every "
                        "--eval-every iterations, or the book's distance() of the last batch")
    better.add_argument("--keep", choices=["best", "last"], default="last",
                        help="save the last generator (with the lowered learning rate the most "
                        "balanced), or the best EarlyStop saw")
    evaluation = p.add_argument_group("evaluation")
    evaluation.add_argument("--eval-every", type=int_range(1, MAX), default=25,
                            help="measure validity, coverage and balance every N iterations")
    evaluation.add_argument("--eval-samples", type=int_range(1, 10**5), default=10000,
                            help="generated numbers behind the quality figures")
    evaluation.add_argument("--generate", metavar="PATH",
                            help="no training: read a run's generator_weights.pt and write "
                            "samples.csv and generated.png into a new folder beside it (or --out)")
    evaluation.add_argument("--num-samples", type=int_range(1, MAX), default=10000,
                            help="numbers for --generate")
    control = p.add_argument_group("run control")
    control.add_argument("--seed", type=seed_int, default=0,
                         help="random seed, printed at the start (the tutorial's: none)")
    control.add_argument("--out", help=f"folder for everything the run writes (default: "
                         f"outputs/{SCRIPT})")
    control.add_argument("--overwrite", action="store_true",
                         help="replace an earlier run in --out (all of its files)")
    control.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                         help="end the whole run, files included, within this many seconds")
    control.add_argument("--dry-run", action="store_true",
                         help="one training iteration, then write every output file")
    control.add_argument("--show", action="store_true", help="also show the figures in windows")
    args, _ = parse(p, argv, TUTORIAL_SETTINGS)
    if not args.generate:  # --generate's default is a new folder beside the weights
        args.out = args.out or f"outputs/{SCRIPT}"
    return p, args


def idle_flags(args):
    """The flags that do nothing in this run, left out of the `arguments:` line."""
    if args.generate:  # the multiple and everything else comes from the file
        return [dest for dest in vars(args)
                if dest not in ("generate", "num_samples", "seed", "out", "overwrite", "show")]
    return ["num_samples"] + (["iterations", "patience", "eval_every", "time_budget"]
                              if args.dry_run else [])


# -- 2. Data: one-hot variables and batches of multiples (3.5.1, 3.5.2) ------------------------
def onehot_encoder(position, depth):
    onehot = torch.zeros((depth,))
    onehot[position] = 1
    return onehot


def int_to_onehot(number):
    onehot = onehot_encoder(number, 100)
    return onehot


def onehot_to_int(onehot):
    num = torch.argmax(onehot)
    return num.item()


def gen_sequence(n=10, multiple=5):
    """n integers in 0-99 that are multiples of `multiple` (the book: 10 multiples of 5)."""
    indices = torch.randint(0, (99 // multiple) + 1, (n,))
    values = indices * multiple
    return values


def gen_batch(n=10, multiple=5):
    sequence = gen_sequence(n, multiple)
    # The book encodes number by number through NumPy; F.one_hot does the whole batch at once.
    batch = F.one_hot(sequence, 100).float()
    return batch


def data_to_num(data):
    num = torch.argmax(data, dim=-1)
    return num


# -- 3. EarlyStop (the book's listing 3.5, reused with patience 800) ---------------------------
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
    nums = data_to_num(generated_data)
    remainders = (nums % multiple).double()
    return torch.mean(remainders ** 2).item()


def quality(nums, multiple=5):
    """Addition. validity: share of multiples; coverage: how many of the valid values appear
    (of `values`); balance: count of the most / least frequent valid value (inf if one is
    missing)."""
    nums = nums.flatten().cpu()
    valid_values = torch.arange(0, 100, multiple)
    ok = nums % multiple == 0
    counts = torch.bincount(nums[ok], minlength=100)[valid_values]
    covered = int((counts > 0).sum())
    balance = counts.max().item() / counts.min().item() if covered == len(valid_values) \
        else float("inf")
    return dict(validity=ok.double().mean().item(), coverage=covered, values=len(valid_values),
                balance=balance)


def describe(q):
    return (f"valid {100 * q['validity']:.2f}%, coverage {q['coverage']}/{q['values']}, "
            f"balance {q['balance']:.2f}")


def save_histogram(path, nums, multiple, title):
    """Addition: how often each integer 0-99 comes out (green: the valid ones)."""
    counts = torch.bincount(nums.flatten().cpu(), minlength=100).numpy()
    fig = plt.figure(figsize=(10, 3.5), dpi=80)
    colors = ["tab:green" if v % multiple == 0 else "tab:red" for v in range(100)]
    plt.bar(np.arange(100), counts, color=colors, width=0.8)
    plt.axhline(len(nums) / len(range(0, 100, multiple)), color="k", lw=0.8, ls="--",
                label="uniform over the valid values")
    plt.xlabel(f"generated integer (green: multiple of {multiple})")
    plt.ylabel("count")
    plt.title(title, loc="left")
    plt.legend(loc="lower right", bbox_to_anchor=(1, 1), frameon=False)  # above the bars
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def save_loss_plot(path, G_losses, D_losses):
    """Addition: G's and D's loss per iteration."""
    fig = plt.figure(figsize=(10, 5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(G_losses, label="G")
    plt.plot(D_losses, label="D")
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend(loc="upper left", bbox_to_anchor=(1, 1))  # beside the curves, not on them
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# -- 4. Training: the book's train_D_G, plus feature matching ----------------------------------
def train_D_G(D, G, loss_fn, optimD, optimG, batch_size=10, multiple=5, feature_matching=0.0,
              device="cpu"):
    """D on a real batch, D on a fake batch, G on fresh noise (the book's three steps).
    Returns the last fake batch, plus (additions) the losses and D's mean outputs."""
    real_labels = torch.ones((batch_size, 1), device=device)
    fake_labels = torch.zeros((batch_size, 1), device=device)
    true_data = gen_batch(batch_size, multiple).to(device)
    preds = D(true_data)
    loss_D1 = loss_fn(preds, real_labels)
    optimD.zero_grad()
    loss_D1.backward()
    optimD.step()
    d_x = torch.sigmoid(preds).mean().item()  # Addition: D(x) for metrics.csv
    noise = torch.randn(batch_size, 100).to(device)
    generated_data = G(noise).detach()  # Addition: detached, D's step needs no gradient via G
    preds = D(generated_data)
    loss_D2 = loss_fn(preds, fake_labels)
    optimD.zero_grad()
    loss_D2.backward()
    optimD.step()
    d_gz = torch.sigmoid(preds).mean().item()  # Addition: D(G(z))
    noise = torch.randn(batch_size, 100).to(device)
    generated_data = G(noise)
    preds = D(generated_data)
    loss_G = loss_fn(preds, real_labels)
    if feature_matching:
        # Addition: feature matching (Salimans et al. 2016). D is one linear layer, so its
        # features are its inputs, and matching their batch means makes G's histogram of values
        # match the real, uniform one. The real mean comes from 8 batches' worth of numbers: one
        # batch's histogram is too noisy (~+-35% a value).
        real_features = gen_batch(8 * batch_size, multiple).to(device).mean(0)
        loss_G = loss_G + feature_matching * ((generated_data.mean(0) - real_features) ** 2).sum()
    optimG.zero_grad()
    loss_G.backward()
    optimG.step()
    return generated_data.detach(), (loss_D1 + loss_D2).item(), loss_G.item(), d_x, d_gz



# -- 6. Generate: numbers from a saved generator, no training ----------------------------------
def load_G(path):
    """The book's torch.jit.load, without running anything from the file: G is rebuilt as main()
    builds it, from the settings saved with its weights in generator_weights.pt.
    Returns (G, multiple)."""
    saved = load_checkpoint(path, SCRIPT)
    settings = saved.get("settings") if isinstance(saved.get("settings"), dict) else {}
    multiple, output = settings.get("multiple"), settings.get("output")
    if not (type(multiple) is int and 1 <= multiple <= 99 and output in ("softmax", "relu")):
        fail(f"{path} holds no --multiple and --output this script knows; pass a "
             f"generator_weights.pt that {SCRIPT}.py wrote")
    new_G = nn.Sequential(
        nn.Linear(100, 100),
        nn.ReLU() if output == "relu" else nn.Softmax(dim=-1))  # G as main() builds it
    try:
        new_G.load_state_dict(saved.get("state_dict"))
    except (RuntimeError, TypeError) as e:
        fail(f"{path}: its weights do not fit this script's generator ({type(e).__name__}); "
             f"pass a generator_weights.pt that {SCRIPT}.py wrote")
    return new_G.eval(), multiple


def sample_numbers(new_G, n, device="cpu", chunk=10000):
    """n integers from a generator: the argmax of its scores for n noise vectors (in chunks,
    so a million numbers need no million x 100 scores at once)."""
    with torch.no_grad():
        return torch.cat([data_to_num(new_G(torch.randn(min(chunk, n - i), 100).to(device)))
                          .cpu() for i in range(0, n, chunk)])


def generate(args):
    new_G, multiple = load_G(args.generate)
    args.out = generate_out(args.out, args.generate)  # never over an earlier file
    csv_path = os.path.join(args.out, "samples.csv")
    png_path = os.path.join(args.out, "generated.png")
    if not args.overwrite and (os.path.exists(csv_path) or os.path.exists(png_path)):
        fail(f"--out {args.out} holds an earlier generated.png/samples.csv; pass a new --out, "
             f"or --overwrite to replace them")
    with prepare_out(args.out, new_run=False):  # holds --out while it writes
        torch.manual_seed(args.seed)
        nums = sample_numbers(new_G, args.num_samples)
        np.savetxt(csv_path, nums.numpy(), fmt="%d", header="number", comments="")
        save_histogram(png_path, nums, multiple,
                       f"{args.num_samples} numbers from {os.path.basename(args.generate)}")
        print(f"first ten: {nums[:10].tolist()}")
        print(f"wrote {csv_path} and {png_path}")
        print(f"quality (multiples of {multiple}): {describe(quality(nums, multiple))}")
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
    """The book's section 3.5 with the additions; 0, or 130 after a signal."""
    device = pick_device(args.device)
    prepare_out(args.out, overwrite=args.overwrite, hold=False)  # refuse a bad --out now
    out = args.out
    print(f"seed: {args.seed}\ndevice: {device}, float32")
    torch.manual_seed(args.seed)  # Addition: the book seeds only its first project
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny matrices: one thread beats the cost of waking others

    # 3.5.1-3.5.2 One-hot variables and the training data
    print(f"onehot_encoder(1, 5): {onehot_encoder(1, 5).tolist()}; "
          f"onehot_to_int(int_to_onehot(75)): {onehot_to_int(int_to_onehot(75))}")
    sequence = gen_sequence(10, args.multiple)
    print(f"a real sequence: {sequence.tolist()}")

    # 3.5.2 The discriminator D and the generator G
    D = nn.Sequential(
        nn.Linear(100, 1)).to(device)  # Addition: logits, the book's nn.Sigmoid() is in loss_fn
    # Addition: G ends in Softmax, each output a distribution like a one-hot. The book's ReLU
    # (--output relu) is unbounded: D (one linear layer) scores a 5 on a valid position above a
    # real one-hot 1, so G piles every sample onto the one value D likes most.
    G = nn.Sequential(
        nn.Linear(100, 100),
        nn.ReLU() if args.output == "relu" else nn.Softmax(dim=-1)).to(device)
    print(f"D: {D}\nG: {G}")
    loss_fn = nn.BCEWithLogitsLoss()
    lr = args.lr
    optimD = torch.optim.Adam(D.parameters(), lr=lr)
    optimG = torch.optim.Adam(G.parameters(), lr=lr)

    # 3.5.3 Training (listing 3.11): EarlyStop, distance() and the loop
    stopper = EarlyStop(args.patience if args.stop_on == "distance"
                        else max(1, math.ceil(args.patience / args.eval_every)))
    # Additions, set up once: quality of --eval-samples numbers from a fixed noise batch, the
    # kept G, records, lr schedule, progress.
    fixed_noise = torch.randn((args.eval_samples, 100), device=device)
    best_state, best, G_losses, D_losses = None, None, [], []
    held.enter_context(prepare_out(out, overwrite=args.overwrite))  # --out, until main returns
    # Addition: --time-budget ends training early enough for the export (~1 s on a CPU) and the
    # two figures (~0.5 s each)
    deadline = started + (args.time_budget or math.inf) - 2.5
    metrics_file = open(os.path.join(out, "metrics.csv"), "w", newline="", buffering=1)
    metrics = csv.DictWriter(metrics_file, ["iteration", "loss_D", "loss_G", "D_x", "D_G_z",
                             "steps_per_sec", "distance", "validity", "coverage", "values",
                             "balance"])
    metrics.writeheader()
    iterations = 1 if args.dry_run else args.iterations
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / iterations)
                  for opt in (optimD, optimG)] if args.anneal else []
    t_start = t_log = time.perf_counter()
    status = ""
    cpu_start = time.process_time()  # CPU time: the idle wall time on a busy machine
    for i in range(iterations):
        generated_data, dloss, gloss, d_x, d_gz = train_D_G(
            D, G, loss_fn, optimD, optimG, args.batch_size, args.multiple,
            args.feature_matching, device)
        stop_if_diverged(gloss, dloss, f"iteration {i + 1}", args.lr, DEFAULT_LR,
                         metrics_file)  # Addition: a NaN/inf loss stops the run
        dis = distance(generated_data, args.multiple)
        stop = args.stop_on == "distance" and stopper.stop(dis)  # the book's rule
        # Additions: lr schedule, losses, quality every --eval-every iterations
        for scheduler in schedulers:
            scheduler.step()
        D_losses.append(dloss)
        G_losses.append(gloss)
        budget_spent = time.monotonic() > deadline
        last = i == iterations - 1 or stop or signal_stop.requested or budget_spent
        if i % args.eval_every == 0 or last:
            with torch.no_grad():
                q = quality(data_to_num(G(fixed_noise)), args.multiple)
            # gdif: distance() is 0 for any valid G, collapsed or not; this ranks validity
            # first, then coverage, then balance.
            gdif = 10 * (1 - q["validity"]) + (1 - q["coverage"] / q["values"]) + \
                math.log(min(q["balance"], 1e6))
            stop = stop or (args.stop_on == "quality" and stopper.stop(gdif))
            if best_state is None or (args.stop_on == "quality" and stopper.improved):
                best_state = {k: v.clone() for k, v in G.state_dict().items()}
                best = dict(iteration=i + 1, **q)
            now = time.perf_counter()
            steps_per_sec = (args.eval_every if i else 1) / max(now - t_log, 1e-9)
            t_log = now
            metrics.writerow(dict(iteration=i + 1, loss_D=dloss, loss_G=gloss, D_x=d_x,
                                  D_G_z=d_gz, steps_per_sec=steps_per_sec, distance=dis, **q))
            left = datetime.timedelta(seconds=round(max(0, min(
                (now - t_start) / (i + 1) * (iterations - i - 1), deadline - time.monotonic()))))
            status = f"{describe(q)} | {steps_per_sec:.0f} steps/s, ETA {left}"
        if i % 50 == 0 or last:  # the book prints a generated sequence every 50 iterations
            print(f"{data_to_num(generated_data[:10]).tolist()}  iteration {i + 1}: {status}",
                  flush=True)
        if stop:
            print(f"early stop at iteration {i + 1}: no improvement for {args.patience} "
                  f"iterations")
            break
        if signal_stop.requested or budget_spent:
            break
    metrics_file.close()
    train_s = time.perf_counter() - t_start

    # 3.5.4 Save the generator: torch.export replaces the deprecated torch.jit.script
    if args.keep == "best":
        G.load_state_dict(best_state)
        print(f"keeping the best generator: iteration {best['iteration']} ({describe(best)})")
    save_generator(G.cpu(), (torch.randn(4, 100),), out, SCRIPT,
                   {"multiple": args.multiple, "output": args.output})
    saved_s, saved_cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    save_loss_plot(os.path.join(out, "losses.png"), G_losses, D_losses)

    # ... and use it: load it, print a new sequence, measure --eval-samples numbers
    new_G, _ = load_G(os.path.join(out, "generator_weights.pt"))
    noise = torch.randn((10, 100))
    new_data = new_G(noise)
    print(f"a new sequence from the saved generator: {data_to_num(new_data).tolist()}")
    nums = sample_numbers(new_G, args.eval_samples)
    save_histogram(os.path.join(out, "histogram.png"), nums, args.multiple,
                   f"{args.eval_samples} numbers from the saved generator (multiples of "
                   f"{args.multiple})")
    print(f"trained {len(G_losses)} iterations in {train_s:.1f} s; generator saved after "
          f"{saved_s:.1f} s ({saved_cpu:.1f} s of CPU time)")
    print(f"files in {out}/: generator.pt2, generator_weights.pt, metrics.csv, losses.png, "
          f"histogram.png")
    if signal_stop.requested:
        print("interrupted: the generator trained so far is saved", file=sys.stderr)
        return 130
    if budget_spent and not stop:
        print(f"--time-budget {args.time_budget:g} s spent: stopped after iteration "
              f"{len(G_losses)} of {iterations} ({time.monotonic() - started:.1f} s in all)")
    print(f"final quality of the saved generator on {args.eval_samples} new numbers: "
          f"{describe(quality(nums, args.multiple))}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
