"""Plumbing shared by the gan-examples scripts: errors, flags, seeding, device, output folder,
checkpoints, Ctrl-C/SIGTERM, generator export and safe loading, metrics CSV.

Nothing here is a step of a tutorial (those stay in each script, where a reader sees them).
Copy this file together with any script you take into another project.
"""
import argparse
import csv
import errno
import io
import json
import os
import random
import shlex
import signal
import sys
import tempfile
import threading
import zipfile

import numpy as np
import torch

TMP_PREFIX = ".tmp-"  # temp files are .tmp-<pid>-<random>-<name>; stale ones are removed
RUN_FILES = ("checkpoint.pt", "metrics.csv")  # a folder holding one of these holds a run
_locks = []  # lock files of the --out folders this process holds until run() returns


# -- Errors: one `error:` line and exit status 2 for anything a user can cause ------------
class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, wrong file). Exit status 2."""


def fail(message):
    """Stop with `error: <message>` on stderr and exit status 2."""
    raise UserError(message)


def run(main, argv=None):
    """Call main(argv): user errors, full disks and failed allocations give one `error:` line
    and exit 2; Ctrl-C gives exit 130. Real bugs still show their traceback."""
    try:
        return main(argv) or 0
    except UserError as e:
        message = str(e)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemoryError, torch.OutOfMemoryError):
        message = "out of memory; use smaller sizes (batch size, number of samples, widths)"
    except RuntimeError as e:  # the CPU allocator raises a plain RuntimeError
        if "allocate" not in str(e) and "out of memory" not in str(e):
            raise
        message = "out of memory; use smaller sizes (batch size, number of samples, widths)"
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        message = f"cannot write {e.filename or 'a file'}: {e.strerror} (free some space, " \
            "or pass an --out you can write to)"
    finally:
        while _locks:  # let go of --out (tests call main() again in one process)
            _locks.pop().close()
    print(f"error: {message}", file=sys.stderr)
    return 2


# -- Flags: grouped --help with each real default shown once, pasteable argument line -----
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` only where there is a real default the help does not already say."""

    def _get_help_string(self, action):
        if any(action.default is d for d in (None, False, argparse.SUPPRESS)) \
                or "default" in action.help:  # `is`: a default of 0 is a real default
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with HelpFormatter, no abbreviations, and a one-line `error:` on bad flags."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def int_range(low, high):
    """argparse type: an integer in [low, high] (1e3 style is accepted when it is whole)."""
    def parse(text):
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if isinstance(value, float) and not value.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return int(value)
    return parse


positive_int = int_range(1, 2**31 - 1)
non_negative_int = int_range(0, 2**31 - 1)
seed_int = int_range(0, 2**63 - 1)  # what torch.manual_seed takes


def positive_float(text):
    """argparse type: a number in (0, 1e9]. Rates, weights and seconds beyond it make no sense,
    and near float32's limit Adam's lr / (1 - beta1**t) overflows inside the step."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1e9:
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most 1e9, got {text}")
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


def parse_with_tutorial(parser, argv, tutorial):
    """Parse argv; with --tutorial the `tutorial` settings replace the defaults (flags given
    on the command line still win)."""
    args = parser.parse_args(argv)
    if args.tutorial:
        parser.set_defaults(**tutorial)
        args = parser.parse_args(argv)
    return args


def given_flags(parser, argv):
    """The dests of the flags written on the command line (argv), defaults left out."""
    argv = sys.argv[1:] if argv is None else argv
    return {a.dest for a in parser._actions for o in a.option_strings
            for tok in argv if tok == o or tok.startswith(o + "=")}


def resume_args(parser, argv, saved, may_change):
    """Arguments for --resume: the checkpoint's `saved` settings, with only the flags named in
    `may_change` taken from the command line; any other flag that differs is refused."""
    args = parser.parse_args(argv)
    for dest in given_flags(parser, argv) - set(may_change) - {"resume"}:
        if dest in saved and getattr(args, dest) != saved[dest]:
            fail(f"--{dest.replace('_', '-')} {getattr(args, dest)} differs from the run being "
                 f"resumed ({saved[dest]}); leave it out, or start a new run with a new --out")
    for dest, value in saved.items():
        if dest not in may_change and hasattr(args, dest):
            setattr(args, dest, value)
    return args


def command_line(parser, args):
    """The command that gives `args` again, for the `arguments:` line (pasteable)."""
    words = ["python", parser.prog]
    for a in parser._actions:
        if not a.option_strings or a.dest == "help":
            continue
        value, flag = getattr(args, a.dest, None), a.option_strings[0]
        if isinstance(a, argparse.BooleanOptionalAction):
            words += [] if value is None else [flag if value else "--no-" + flag[2:]]
        elif isinstance(a, argparse._StoreTrueAction):
            words += [flag] if value else []
        elif isinstance(a, argparse._StoreFalseAction):
            words += [] if value else [flag]
        elif value is not None:
            values = value if isinstance(value, (list, tuple)) else [value]
            words += [flag] + [shlex.quote(str(v)) for v in values]
    return " ".join(words)


# -- Run set-up: device, seed, output folder ------------------------------------------------
def pick_device(name="auto"):
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is a user error."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not mps):
        fail(f"--device {name} was asked for but is not available here; use --device cpu")
    return torch.device(name)


def set_seed(seed):
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_out(path, new_run=True, overwrite=False):
    """Create --out, check that it can be written, hold it for this process, remove stale temp
    files; with new_run, refuse a folder that holds another run unless overwrite."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--out {path} is an existing file; pass a folder name")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=TMP_PREFIX + f"{os.getpid()}-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        fail(f"cannot write to --out {path} ({e.strerror}); pass a folder you can write to")
    try:
        import fcntl  # not on Windows: there two runs at once are not detected
        lock = open(os.path.join(path, ".lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _locks.append(lock)
    except ImportError:
        pass
    except OSError:
        fail(f"another run is using --out {path}; wait for it or pass another --out")
    for name in os.listdir(path):  # temp files of processes that died (kill -9, power loss)
        pid = name[len(TMP_PREFIX):].split("-")[0]
        if name.startswith(TMP_PREFIX) and pid.isdigit() and not _alive(int(pid)):
            os.remove(os.path.join(path, name))
    held = [f for f in RUN_FILES if os.path.exists(os.path.join(path, f))]
    if new_run and held and not overwrite:
        hint = f"continue it with --resume {os.path.join(path, 'checkpoint.pt')}, " \
            if "checkpoint.pt" in held else ""
        fail(f"--out {path} holds an earlier run ({held[0]}); {hint}pass a new --out, "
             f"or --overwrite to replace it")
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


# -- Checkpoints: atomic writes that Ctrl-C, kill -9 and a full disk cannot corrupt ---------
_saving = {"depth": 0, "interrupted": False}  # a second Ctrl-C during a save waits for it


def atomic_write(path, write):
    """Call write(file) on a unique temp file beside `path`, then rename it over `path`.
    A second Ctrl-C/SIGTERM waits until the rename is done; on failure the old `path` stays."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = None
    _saving["depth"] += 1
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{os.getpid()}-",
                                   suffix="-" + name)
        umask = os.umask(0o22)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved file reads like any other
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        fail(f"cannot write {path} ({e.strerror}); the previous copy, if any, is unchanged")
    finally:
        _saving["depth"] -= 1
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    if _saving["interrupted"] and not _saving["depth"]:
        _saving["interrupted"] = False
        raise KeyboardInterrupt
    return path


def atomic_save(obj, path):
    """torch.save(obj) to `path` atomically (serialised in memory first, so a full disk is an
    OSError, never a half-written file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path, script):
    """A checkpoint.pt written by `script`, loaded with weights_only=True (no code runs)."""
    if not os.path.isfile(path):
        fail(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or corrupt file
        fail(f"cannot load checkpoint {path} ({type(e).__name__}); pass a checkpoint.pt "
             f"written by {script}.py")
    if not isinstance(ckpt, dict) or ckpt.get("script") != script:
        found = ckpt.get("script", "another program") if isinstance(ckpt, dict) else "?"
        fail(f"{path} was written by {found}, not {script}.py; pass one of this script's runs")
    return ckpt


def rng_state():
    """All RNG states (Python, NumPy, torch CPU and CUDA) as weights_only-safe objects."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
             "torch": torch.get_rng_state()}
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
    """`with StopOnCtrlC() as stop:` -- the first Ctrl-C or SIGTERM (what `timeout`, docker,
    systemd and Slurm send) only sets `stop.requested`, so the loop can save and exit 130; a
    second one raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested, self.old = False, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self.handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def handler(self, signum, frame):
        if self.requested and _saving["depth"]:
            _saving["interrupted"] = True  # atomic_write raises it once the file is complete
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: saving after this step (again: quit now)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in self.old.items():
            signal.signal(s, handler)


def ignore_signals(*_):
    """DataLoader/Pool worker initialiser: Ctrl-C and SIGTERM sent to the whole process group
    are the main process's to handle (it saves, then stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# -- Export: a .pt2 any project can load, which our own --generate reads without pickle ------
def export_generator(model, example_inputs, path, script, settings):
    """Save `model` with torch.export (dynamic batch) as a .pt2; `script` and `settings` (what
    rebuilds the network) ride along in it. Anywhere: torch.export.load(path).module()."""
    was_training = model.training
    model.eval()
    dynamic_shapes = tuple({0: torch.export.Dim("batch", min=1)} for _ in example_inputs)
    with torch.no_grad():
        program = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    model.train(was_training)
    buffer = io.BytesIO()  # in memory first: a full disk is then a clean error, not an abort
    meta = json.dumps({"script": script, "settings": settings})
    torch.export.save(program, buffer, extra_files={"gan_examples.json": meta})
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


_DTYPES = {5: torch.int64, 6: torch.float16, 7: torch.float32, 8: torch.float64,
           13: torch.bfloat16}  # torch.export's ScalarType numbers


def load_generator(path, script):
    """(state_dict, settings) of a generator that `script` exported, read from the archive's
    JSON and raw tensor bytes only: unlike torch.export.load, nothing is unpickled or run."""
    if not os.path.isfile(path):
        fail(f"generator file {path} does not exist; pass the generator.pt2 a run wrote")
    wrong = f"{path} is not a generator exported by {script}.py; pass its generator.pt2"
    try:
        with zipfile.ZipFile(path) as z:
            names = {n.split("/", 1)[-1]: n for n in z.namelist()}
            meta = json.loads(z.read(names["extra/gan_examples.json"]))
            if meta.get("script") != script:
                fail(f"{path} was exported by {meta.get('script')}.py, not {script}.py; run "
                     f"python {meta.get('script')}.py --generate {path}")
            config = json.loads(z.read(names["data/weights/model_weights_config.json"]))
            state = {}
            for key, entry in config["config"].items():
                meta_t = entry["tensor_meta"]
                shape = [s["as_int"] for s in meta_t["sizes"]]
                raw = bytearray(z.read(names["data/weights/" + entry["path_name"]]))
                dtype = _DTYPES[meta_t["dtype"]]
                numel = int(np.prod(shape))
                state[key] = torch.frombuffer(raw, dtype=dtype)[:numel].reshape(shape).clone() \
                    if numel else torch.zeros(shape, dtype=dtype)
    except UserError:
        raise
    except Exception:  # not a zip, missing parts, a tampered or foreign archive
        fail(wrong)
    if not state:
        fail(wrong)
    return state, meta["settings"]


# -- Records ---------------------------------------------------------------------------------
class MetricsCSV:
    """Rows to OUT/metrics.csv; the header comes from `fields`. `append=True` (--resume) keeps
    the rows there; empty values are written as blanks, never as stale numbers."""

    def __init__(self, path, fields, append=False):
        self.path, self.fields = path, list(fields)
        if not (append and os.path.isfile(path)):
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)

    def write(self, **row):
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)


def format_eta(seconds):
    """Seconds as H:MM:SS (or M:SS) for progress lines."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def use_agg_unless(show):
    """matplotlib.pyplot with the file-only Agg backend, unless the user asked for windows."""
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def gaussian_stats(features):
    """Mean and covariance (float64 numpy) of an (N, D) array or tensor of features."""
    x = torch.as_tensor(features).detach().double().cpu().numpy()
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), FID's formula. Tr((S1 S2)^(1/2)) is
    computed as Tr((A S2 A)^(1/2)) with A = S1^(1/2): symmetric, so eigh is stable, no scipy."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(a @ s2 @ a), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
