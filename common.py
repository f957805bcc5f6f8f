"""Tiny helpers shared by the gan-examples scripts.

Only what two or more scripts use lives here; each helper is short and can be copied
into another project on its own. Nothing here knows about a particular GAN.
"""
import argparse
import csv
import logging
import os
import random
import signal
import sys
import tempfile
import threading
import zipfile

import numpy as np
import torch


# -- Errors: one `error:` line and exit status 2 for anything a user can cause --------
class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, wrong file). Exit status 2."""


def fail(message):
    """Stop with a user error: `error: <message>` on stderr and exit status 2."""
    raise UserError(message)


def run(main, argv=None):
    """Call `main(argv)` and turn user errors into `error: ...` + exit 2, Ctrl-C into 130.

    Scripts end with `sys.exit(run(main))`. Real bugs still show their traceback.
    """
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with defaults shown in --help and a one-line `error:` on bad flags."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(**kwargs)

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def positive_int(text):
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text):
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def unit_interval(text):
    """argparse type: a number in [0, 1) (an Adam beta, a label-smoothing amount)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


adam_beta = unit_interval  # argparse type for Adam's betas


# -- Run set-up: device, seed, output folder -------------------------------------------
def pick_device(name="auto"):
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        fail("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        fail("--device mps was asked for but MPS is not available; use --device cpu")
    return torch.device(name)


def set_seed(seed):
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_out_dir(path):
    """Create the output folder (and parents); an existing *file* there is a user error."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--out {path} is an existing file; pass a folder name")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        fail(f"cannot create output folder {path}: {e.strerror}")
    return path


# -- Checkpoints: atomic writes, RNG state that survives weights_only loading ----------
def atomic_save(obj, path):
    """torch.save to a temp file in the same folder, then rename: a crash never leaves
    a half-written file at `path` (the previous version stays loadable)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path):
    """torch.load(weights_only=True) with a clear error for a missing or unreadable file."""
    if not os.path.isfile(path):
        fail(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or corrupt file
        fail(f"cannot load checkpoint {path} ({type(e).__name__}); pass a checkpoint.pt written by this script")


def rng_state():
    """All RNG states (Python, NumPy, torch CPU and CUDA) as weights_only-safe objects."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what rng_state() returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopOnCtrlC:
    """`with StopOnCtrlC() as ctrl_c:` -- the first Ctrl-C (or SIGTERM, as torchrun and batch
    schedulers send) only sets `ctrl_c.requested`, so the loop can finish its iteration, save a
    checkpoint and exit 130; a second one raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested, self.old = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self.handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: saving a checkpoint after this iteration (Ctrl-C again quits now)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in (self.old or {}).items():
            signal.signal(s, handler)


# -- Export: a generator that loads without the script ---------------------------------
def export_generator(model, example_inputs, path):
    """Save `model` with torch.export as a .pt2 file with a dynamic batch dimension.

    `example_inputs` is a tuple of tensors (batch first, batch size >= 2). Load it anywhere
    with `torch.export.load(path).module()`.
    """
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1)  # no upper bound: any batch size loads
    dynamic_shapes = tuple({0: batch} for _ in example_inputs)
    with torch.no_grad():
        program = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.path.basename(path)}")
    torch.export.save(program, tmp)  # torch.export wants a name ending in .pt2
    os.replace(tmp, path)
    model.train(was_training)
    return path


def load_generator(path):
    """Load a generator saved by export_generator(); a clear user error otherwise."""
    if not os.path.isfile(path):
        fail(f"generator file {path} does not exist; train first or pass the .pt2 a run wrote")
    if not zipfile.is_zipfile(path):
        fail(f"{path} is not an exported generator (not a .pt2 archive); pass the .pt2 file a training run wrote")
    logging.disable(logging.WARNING)  # torch.export.load logs a traceback for a foreign file
    try:
        return torch.export.load(path).module()
    except Exception as e:
        fail(f"{path} is not an exported generator ({type(e).__name__}); pass the .pt2 file a training run wrote")
    finally:
        logging.disable(logging.NOTSET)


# -- Records and pictures ---------------------------------------------------------------
class MetricsCSV:
    """Append rows to OUT/metrics.csv; the header comes from the first row's keys.

    `append=True` keeps an existing file (used by --resume)."""

    def __init__(self, path, append=False):
        self.path = path
        self.fields = None
        if append and os.path.isfile(path):
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None)
        else:
            open(path, "w").close()

    def write(self, **row):
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)


def format_eta(seconds):
    """Seconds as H:MM:SS (or M:SS) for progress lines."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_flags(settings, sep=" "):
    """Settings (a dict, or argparse's Namespace) as the command-line flags that give them:
    `--batch-size 128 --lr 0.0002 ...`, for logs and error messages."""
    items = settings.items() if isinstance(settings, dict) else vars(settings).items()
    return " ".join(f"--{k.replace('_', '-')}{sep}{v}" for k, v in items)


def use_agg_unless(show):
    """Use matplotlib's file-only Agg backend unless the user asked for windows (--show)."""
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_loss_plot(path, losses, title="Generator and Discriminator Loss During Training",
                   xlabel="iterations"):
    """Plot named loss curves, e.g. {"G": G_losses, "D": D_losses}, to a PNG."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(10, 5))
    plt.title(title)
    for name, values in losses.items():
        plt.plot(values, label=name)
    plt.xlabel(xlabel)
    plt.ylabel("Loss")
    plt.legend()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def image_grid(images, nrow=8):
    """A batch of images in [-1, 1] (N, C, H, W) as one grid tensor in [0, 1] (C, H', W')."""
    import torchvision.utils as vutils
    return vutils.make_grid(images.detach().float().cpu(), nrow=nrow, padding=2,
                            normalize=True, value_range=(-1, 1))


def save_image_grid(images, path, nrow=8):
    """Save a batch of images in [-1, 1] as one PNG grid."""
    import torchvision.utils as vutils
    vutils.save_image(image_grid(images, nrow), path)
    return path


def save_images(images, folder, prefix="sample"):
    """Save each image of a batch in [-1, 1] as its own PNG: folder/prefix_00000.png, ..."""
    import torchvision.utils as vutils
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images.detach().float().cpu()):
        vutils.save_image(img, os.path.join(folder, f"{prefix}_{i:05d}.png"),
                          normalize=True, value_range=(-1, 1))
    return folder


def save_progress_gif(grids, path, interval_ms=1000):
    """Animate a list of grid tensors (C, H, W in [0, 1]) as a GIF with matplotlib's Pillow
    writer, as the DCGAN tutorial's `ArtistAnimation` of `img_list`."""
    import matplotlib.animation as animation
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(8, 8))
    plt.axis("off")
    frames = [[plt.imshow(np.transpose(g.numpy(), (1, 2, 0)), animated=True)] for g in grids]
    ani = animation.ArtistAnimation(fig, frames, interval=interval_ms, repeat_delay=1000, blit=True)
    ani.save(path, writer=animation.PillowWriter(fps=max(1, 1000 // interval_ms)), dpi=60)
    plt.close(fig)
    return path


def save_real_vs_fake(real_images, fake_grid, path, nrow=8):
    """The tutorial's last figure: a grid of real images beside a grid of fakes."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(15, 8))
    plt.subplot(1, 2, 1)
    plt.axis("off")
    plt.title("Real Images")
    plt.imshow(np.transpose(image_grid(real_images[:nrow * nrow], nrow).numpy(), (1, 2, 0)))
    plt.subplot(1, 2, 2)
    plt.axis("off")
    plt.title("Fake Images")
    plt.imshow(np.transpose(fake_grid.numpy(), (1, 2, 0)))
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


# -- Quality: the Fréchet distance between two Gaussians (FID's formula) ---------------
def gaussian_stats(features):
    """Mean and covariance (float64 numpy) of an (N, D) array or tensor of features."""
    x = torch.as_tensor(features).detach().double().cpu().numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the formula behind FID.

    Tr((S1 S2)^(1/2)) is computed as Tr((A S2 A)^(1/2)) with A = S1^(1/2): both matrices are
    symmetric, so eigh is stable and needs no scipy."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(a @ s2 @ a), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
