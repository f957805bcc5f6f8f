"""Plumbing shared by the gan-examples scripts: one-line errors, flags, device, the --out folder,
atomic checkpoints, Ctrl-C/SIGTERM and the saved generator. No tutorial step is here (those stay
in the scripts, in plain sight). Copy this file together with any script you take."""
import argparse
import contextlib
import errno
import io
import math
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import weakref

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOT_SAVED = ("resume", "generate", "dry_run", "show", "overwrite", "out")  # never resumed


# -- Errors: one `error:` line and exit status 2 for anything a user can cause ----------------
class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, wrong file). Exit status 2."""


def fail(message):
    """Stop with `error: <message>` on stderr and exit status 2."""
    raise UserError(message)


def run(main, argv=None):
    """main(argv)'s exit status: 2 and one `error:` line for user faults, 130 for Ctrl-C."""
    if hasattr(sys.stdout, "reconfigure"):  # each line at once, also into a pipe or a log file
        sys.stdout.reconfigure(line_buffering=True)
    try:
        return main(argv) or 0
    except UserError as e:
        message = " ".join(str(e).split())  # one line, whatever text it quotes
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:  # the CPU allocator raises a plain RuntimeError
        if isinstance(e, RuntimeError) and not any(
                words in str(e) for words in ("allocate", "out of memory")):
            raise
        message = "out of memory; use smaller sizes (batch size, number of samples, widths)"
    except OSError as e:
        if e.errno == errno.EPIPE:  # `script | head` stopped reading: end quietly, as `cat` does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        name = e.filename or "a file"
        message = f"cannot write {name}: {e.strerror} (free some space, or fix the permissions " \
            f"of {os.path.dirname(os.path.abspath(name)) if e.filename else 'its folder'})"
    print(f"error: {message}", file=sys.stderr)
    return 2


# -- Flags: grouped --help with each real default shown once, a pasteable `arguments:` line ----
class ArgumentParser(argparse.ArgumentParser):
    """argparse: `(default: X)` only for real defaults, no abbreviations, one-line errors."""

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        def _get_help_string(self, action):
            if any(action.default is d for d in (None, False, argparse.SUPPRESS)) \
                    or "default" in action.help:  # `is`: a default of 0 is a real default
                return action.help
            return super()._get_help_string(action)

    def __init__(self, **kwargs):
        super().__init__(formatter_class=self.Formatter, allow_abbrev=False, **kwargs)

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def int_range(low, high):
    """argparse type: an integer in [low, high] (1e3 style is accepted when it is whole)."""
    def parse(text):
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            value = 0.5
        if isinstance(value, float) and not value.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return int(value)
    return parse


def number(ok, words):
    """argparse type: a float for which ok(value) holds (`words` say which)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not ok(value):  # nan fails every comparison
            raise argparse.ArgumentTypeError(f"must be {words}, got {text}")
        return value
    return parse


positive_int = int_range(1, 2**31 - 1)
seed_int = int_range(0, 2**63 - 1)  # what torch.manual_seed takes
positive_float = number(lambda v: 0 < v <= 1e9, "above 0 and at most 1e9")  # beyond: Adam overflows
unit_interval = number(lambda v: 0 <= v < 1, "in [0, 1)")  # Adam's betas, label smoothing


def parse(parser, argv=None, tutorial=None, script=None, may_change=(), paths=()):
    """(args, checkpoint): --tutorial makes `tutorial` the defaults; --resume PATH makes the
    settings saved there the defaults (its folder --out), and refuses changes not in may_change.
    The dests in `paths` (and --out) are compared as resolved paths, wherever the user stands."""
    args, checkpoint = parser.parse_args(argv), None
    if getattr(args, "tutorial", False):
        parser.set_defaults(**tutorial)
    if getattr(args, "resume", None) and not getattr(args, "generate", None):
        checkpoint = load_checkpoint(args.resume, script)
        saved = {k: v for k, v in checkpoint.get("args", {}).items() if k not in NOT_SAVED}
        parser.set_defaults(**saved, out=os.path.dirname(args.resume) or ".")
    args = parser.parse_args(argv)
    if checkpoint is not None:
        saved["out"] = os.path.abspath(parser.get_default("out"))
        for dest, value in saved.items():
            now = os.path.abspath(args.out) if dest == "out" else getattr(args, dest, value)
            if dest in (*paths, "out") and isinstance(now, str) and isinstance(value, str):
                now, value = os.path.realpath(now), os.path.realpath(value)
            if dest not in may_change and now != value:
                fail(f"--{dest.replace('_', '-')} {now} differs from the run being resumed "
                     f"({value}); leave it out, or start a new run with a new --out")
    return args, checkpoint


def command_line(parser, args, idle=()):
    """The command that gives `args` again (pasteable), naming only flags that act: none left
    at None or False, none of the `idle` dests (flags that do nothing in this run)."""
    words = ["python", parser.prog]
    for a in parser._actions:
        value = getattr(args, a.dest, None)
        if not a.option_strings or a.dest in ("help", *idle) or value is None:
            continue
        if isinstance(a, argparse.BooleanOptionalAction):
            words += [a.option_strings[0] if value else a.option_strings[1]]
        elif isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            words += [a.option_strings[0]] if value != a.default else []
        else:
            values = value if isinstance(value, (list, tuple)) else [value]
            words += [a.option_strings[0]] + [shlex.quote(str(v)) for v in values]
    return " ".join(words)


def as_flags(settings):
    """{"batch_size": 128, "amp": False} as `--batch-size 128 --no-amp` (for --tutorial's help)."""
    return " ".join(("--" if v else "--no-") + k.replace("_", "-") if isinstance(v, bool) else
                    f"--{k.replace('_', '-')} {v}" for k, v in settings.items())


# -- Run set-up: device, precision, output folder ----------------------------------------------
def pick_device(name="auto"):
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is a user error."""
    import torch  # imported where it is used: `import common` stays fast (--help)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not mps):
        fail(f"--device {name} was asked for but is not available here; use --device cpu")
    return torch.device(name)


def pick_precision(device, amp="auto"):
    """--amp's choice for `device`: "bf16", "fp16" or "off". auto: bf16 where it runs fast (CPUs
    with AVX512-BF16; CUDA GPUs of compute capability 8.0+: A100, RTX 30xx and newer), fp16 with
    a GradScaler on older CUDA GPUs (T4, V100, RTX 20xx: cuDNN runs bf16 convolutions only from
    8.0, is_bf16_supported() counts emulation), else off (MPS, other CPUs)."""
    import torch  # imported where it is used: `import common` stays fast (--help)
    if amp == "fp16" and device.type != "cuda":
        fail("--amp fp16 needs a CUDA GPU (its GradScaler); use --amp bf16 or off on this device")
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"
    return "bf16" if device.type == "cpu" and torch.cpu._is_avx512_bf16_supported() else "off"


def prepare_out(path, new_run=True, overwrite=False, hold=True, data=None):
    """Check --out (not a file, not inside --dataroot `data` nor holding it; for a new run, no
    earlier run in it unless overwrite); with hold, create it and return a lock that holds it
    while kept (dropped: a folder made empty goes; an overwritten run's files, moved aside,
    go once the new run has a metrics.csv, else come back)."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--out {path} is an existing file; pass a folder name")
    if data is not None:
        o, d = os.path.realpath(path), os.path.realpath(data)
        if os.path.commonpath([o, d]) in (o, d):
            fail(f"--out {path} and --dataroot {data} overlap (one holds the other): the run's "
                 f"files would become training data; pass an --out outside --dataroot")
    if new_run and not overwrite and os.path.exists(os.path.join(path, "metrics.csv")):
        resume = os.path.join(path, "checkpoint.pt")
        hint = f"continue it with --resume {resume}, " if os.path.exists(resume) else ""
        fail(f"--out {path} holds an earlier run; {hint}pass a new --out, or --overwrite it")
    if not hold:
        return None
    made = not os.path.isdir(path)
    try:
        os.makedirs(path, exist_ok=True)
        lock = open(os.path.join(path, ".lock"), "a")
    except OSError as e:
        fail(f"cannot write to --out {path} ({e.strerror}); fix its permissions or free some "
             f"space" + (", or pass a folder you can write to" if new_run else ""))
    with contextlib.suppress(ImportError):  # fcntl: not on Windows, where nothing is locked
        import fcntl
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder removes .lock before it lets go: one we locked after that is stale
            same = os.path.samestat(os.fstat(lock.fileno()), os.stat(lock.name))
        except OSError:
            same = False
        if not same:  # a refused run closes its file and leaves the holder's .lock alone
            lock.close()
            fail(f"another run is using --out {path}; wait for it or pass another --out")
    aside = os.path.join(path, f".replaced-{os.getpid()}")
    for name in os.listdir(path):  # the lock says nobody else writes here: a crash's leftovers
        if name.startswith(".tmp-"):
            os.remove(os.path.join(path, name))
        elif name.startswith(".replaced-"):  # a run killed before it could settle them
            settle(path, os.path.join(path, name))
            try:  # the earlier run it moved aside may be back: checked again
                prepare_out(path, new_run, overwrite, hold=False)
            except UserError:
                lock.close()
                raise
    if new_run and overwrite and os.path.exists(os.path.join(path, "metrics.csv")):
        # --overwrite replaces the whole earlier run: its files wait here until the new run has
        # written its metrics.csv (then they go), or come back if it writes none
        os.mkdir(aside)
        for name in os.listdir(path):  # what runs write; anything else (`--out .`) stays
            if re.fullmatch(r"[^.].*\.(png|gif|jpg|csv|pt|pt2)|best|visualization|generated"
                            r"(-\d+)?", name):
                os.rename(os.path.join(path, name), os.path.join(aside, name))
    return OutLock(lock, path, made, aside)


class OutLock(contextlib.AbstractContextManager):
    """prepare_out's hold on --out: let go when dropped, closed or at the end of a `with`."""

    def __init__(self, file, path, made, aside):
        self.close = weakref.finalize(self, let_go, path, made, file, aside)

    def __exit__(self, *exc):
        self.close()


def settle(path, aside):
    """An --overwrite's earlier run moved `aside`: gone if the new run wrote its metrics.csv,
    else put back (over whatever the new run left)."""
    if os.path.exists(os.path.join(path, "metrics.csv")):
        shutil.rmtree(aside, ignore_errors=True)
        return
    for name in os.listdir(aside):
        new = os.path.join(path, name)
        if os.path.isdir(new) and not os.path.islink(new):
            shutil.rmtree(new, ignore_errors=True)
        os.replace(os.path.join(aside, name), new)
    os.rmdir(aside)


def generate_out(out, weights):
    """Where --generate writes: --out if given, else a new folder beside the weights file
    (generated, generated-2, ...), so that no earlier run's or sample's file is replaced."""
    if out is not None:
        return out
    base = os.path.join(os.path.dirname(os.path.abspath(weights)), "generated")
    return next(p for p in (base if k == 1 else f"{base}-{k}" for k in range(1, 10**6))
                if not os.path.exists(p))


def let_go(path, made, file=None, aside=None):
    """prepare_out's clean-up, by the lock's holder only: an --overwrite's earlier run settled,
    the lock file removed (before the lock is let go), the folder if it made it and it is empty."""
    with contextlib.suppress(OSError):
        if aside and os.path.isdir(aside):
            settle(path, aside)
    with contextlib.suppress(OSError):
        os.remove(os.path.join(path, ".lock"))
        if made:
            os.rmdir(path)
    if file is not None:
        file.close()


# -- Checkpoints: atomic writes that Ctrl-C, kill -9 and a full disk cannot corrupt ------------
def atomic_write(path, write):
    """Call write(file) on a unique temp file beside `path`, then rename it over `path`. On
    failure the old `path` stays; Ctrl-C/SIGTERM during the write act once it is done."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{name}")
    pending = []
    old = {s: signal.signal(s, lambda signum, _: pending.append(signum)) for s in SIGNALS} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        fail(f"cannot write {path} ({e.strerror}); the previous copy, if any, is unchanged")
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        for s, handler in old.items():
            signal.signal(s, handler)
        for signum in pending[:2]:
            signal.raise_signal(signum)
    return path


def atomic_save(obj, path):
    """torch.save(obj) to `path` atomically (in memory first: a full disk is a clean error)."""
    import torch  # imported where it is used: `import common` stays fast (--help)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path, script):
    """A file that `script` saved (checkpoint.pt, generator_weights.pt), read with
    torch.load(weights_only=True): tensors and plain values only, no code runs."""
    import torch  # imported where it is used: `import common` stays fast (--help)
    if not os.path.isfile(path):
        fail(f"{path} {'is not a file' if os.path.exists(path) else 'does not exist'}; pass a "
             f"checkpoint.pt or generator_weights.pt of {script}.py")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or corrupt file, or a .pt2 program
        if path.endswith(".pt2"):
            fail(f"{path} is the exported program for other projects; {script}.py reads the "
                 f"generator_weights.pt beside it (--generate) or checkpoint.pt (--resume)")
        fail(f"cannot load {path} ({type(e).__name__}); pass a checkpoint.pt or "
             f"generator_weights.pt written by {script}.py")
    found = ckpt.get("script") if isinstance(ckpt, dict) else None
    if found != script:
        fail(f"{path} was written by {found or 'another program'}, not {script}.py" +
             (f"; pass it to {found}.py" if isinstance(found, str) else ""))
    return ckpt


@contextlib.contextmanager
def stop_on_ctrl_c(patient=False):
    """`with stop_on_ctrl_c() as stop:` a first Ctrl-C or SIGTERM (timeout, docker, Slurm) sets
    stop.requested, so the loop can save and exit 130; a second raises KeyboardInterrupt (with
    patient, for runs whose save takes seconds, it is only noted: the files come first)."""
    stop = argparse.Namespace(requested=False)

    def handler(signum, frame):
        if stop.requested and not patient:
            raise KeyboardInterrupt
        name, again = signal.Signals(signum).name, stop.requested
        stop.requested = True
        print(f"\n{name}: " + ("saving first, then exit" if again else "saving after this step")
              + ("" if patient else " (again: quit now)"), file=sys.stderr, flush=True)
    old = {s: signal.signal(s, handler) for s in SIGNALS} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def ignore_signals(*_):
    """DataLoader worker_init_fn: a signal to the process group is the main process's."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def stop_if_diverged(loss_G, loss_D, when, lr, default_lr, metrics_file):
    """A loss that is no longer a number stops the run (exit 2), before a NaN generator is saved
    as a success; its metrics.csv goes, so the folder holds no finished run (and an
    --overwrite's earlier run comes back)."""
    for name, value in (("generator (G)", loss_G), ("discriminator (D)", loss_D)):
        if not math.isfinite(value):
            metrics_file.close()
            os.remove(metrics_file.name)
            fail(f"the {name} loss became {value} at {when}: training diverged, nothing saved; "
                 f"pass a lower --lr than {lr:g} (the default: {default_lr:g})")


# -- The trained generator: a portable program, and its weights for --generate -----------------
def save_generator(model, example_inputs, out, script, settings):
    """OUT/generator.pt2 (torch.export, dynamic batch: torch.export.load(path).module() in any
    project) and OUT/generator_weights.pt (`settings` and state_dict, what --generate reads)."""
    import torch  # imported where it is used: `import common` stays fast (--help)
    was_training = model.training
    dynamic_shapes = tuple({0: torch.export.Dim("batch", min=1)} for _ in example_inputs)
    with torch.no_grad():
        program = torch.export.export(model.eval(), tuple(example_inputs),
                                      dynamic_shapes=dynamic_shapes)
    model.train(was_training)
    buffer = io.BytesIO()  # in memory first: a full disk is then a clean error
    torch.export.save(program, buffer)
    atomic_write(os.path.join(out, "generator.pt2"), lambda f: f.write(buffer.getbuffer()))
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_save({"script": script, "settings": settings, "state_dict": state},
                os.path.join(out, "generator_weights.pt"))
