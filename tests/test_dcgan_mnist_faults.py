"""dcgan_mnist.py against hostile inputs and faults (issue 32): each ends in exit 0 with correct
files, one `error:` line and exit 2, or exit 130 with a resumable checkpoint; nothing written
into the data folder, no hang, no segfault, no stale lock."""
import os
import signal
import time

import torch
from PIL import Image

from helpers import assert_user_error, in_process, make_mnist, script, start

import dcgan_mnist


def png_folder(root, per_class, classes=2, size=28):
    """`classes` subfolders of `per_class` small PNGs each; returns root."""
    for c in range(classes):
        os.makedirs(root / str(c), exist_ok=True)
        for k in range(per_class):
            Image.new("L", (size, size), 20 * c + 3 * k).save(root / str(c) / f"{k}.png")
    return root


def listing(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                  for f in fs)


def test_out_overlapping_dataroot_is_refused(tmp_path, capsys):
    root = png_folder(tmp_path / "png", 4)
    before = listing(root)
    for out in (root / "run", root, tmp_path):  # inside, equal, holding it
        assert in_process(dcgan_mnist.main, "--dataset", "folder", "--dataroot", root,
                          "--dry-run", "--device", "cpu", "--out", out) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out") and "--dataroot" in err, err
    assert listing(root) == before


def test_one_image_is_refused_not_a_run_of_nothing(tmp_path):
    root = png_folder(tmp_path / "png", 1, classes=1)
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--epochs", 1,
               "--out", tmp_path / "o", check=False)
    assert_user_error(p, "1 image", "at least 2")
    assert not (tmp_path / "o").exists()


def test_tiny_held_out_halves_skip_the_quality_figures_without_a_crash(tmp_path):
    for name, per_class, flags in (("two", 1, []), ("three", 3, ["--arch", "dropout",
                                                                 "--no-batchnorm"])):
        root = png_folder(tmp_path / name, per_class, classes=2 if per_class == 1 else 1)
        if per_class == 3:  # three PNGs, in two classes
            os.makedirs(root / "1")
            os.rename(root / "0" / "2.png", root / "1" / "2.png")
        p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--eval",
                   "--epochs", 1, "--batch-size", 2, *flags, "--out", tmp_path / f"o{name}",
                   env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert "note: no quality figures" in p.stdout
        assert (tmp_path / f"o{name}" / "generator.pt2").is_file()


def test_fifo_and_directory_links_in_the_folder_neither_block_nor_multiply(tmp_path):
    root = png_folder(tmp_path / "png", 5)
    os.mkfifo(root / "0" / "x.png")  # open() of a FIFO blocks until a writer comes
    os.symlink("..", root / "1" / "up")  # a loop through the parent folder
    os.symlink(".", root / "0" / "self")
    os.symlink(root / "1" / "0.png", root / "0" / "same.png")  # one file, two names
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--dry-run",
               "--out", tmp_path / "o", timeout=300)
    assert "data: 10 images of 2 class(es)" in p.stdout, p.stdout
    assert "skipped 1 unreadable" in p.stderr and "x.png" in p.stderr


def test_flat_folder_trains_unconditionally_and_conditional_needs_classes(tmp_path, capsys):
    root = tmp_path / "flat"
    os.makedirs(root)
    for k in range(12):
        Image.new("L", (30, 30), 10 * k).save(root / f"{k}.png")
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--dry-run", "--eval",
               "--out", tmp_path / "o")
    assert "data: 12 images of 1 class(es)" in p.stdout
    assert "note: no quality figures: they need labels" in p.stdout
    assert (tmp_path / "o" / "generator.pt2").is_file()
    assert in_process(dcgan_mnist.main, "--dataset", "folder", "--dataroot", root, "--dry-run",
                      "--conditional", "--device", "cpu", "--out", tmp_path / "c") == 2
    assert "two or more class subfolders" in capsys.readouterr().err


def test_relative_dataroot_resumes_from_another_folder_and_by_its_absolute_path(tmp_path):
    make_mnist(tmp_path / "data", n=40)
    script("dcgan_mnist.py", "--dataroot", "data", "--epochs", 1, "--batch-size", 16, "--no-eval",
           "--out", "run", cwd=tmp_path)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert torch.load(ckpt, weights_only=True)["args"]["dataroot"] == str(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(elsewhere)
    p = script("dcgan_mnist.py", "--resume", ckpt, "--epochs", 2, cwd=elsewhere)
    assert "resumed: epoch 2" in p.stdout
    p = script("dcgan_mnist.py", "--resume", "run/checkpoint.pt", "--dataroot", "data",
               "--epochs", 3, cwd=tmp_path)  # the same folder, given relatively again
    assert "resumed: epoch 3" in p.stdout
    p = script("dcgan_mnist.py", "--resume", ckpt, "--dataroot", tmp_path / "data", "--epochs",
               4, cwd=elsewhere)  # and absolutely
    assert "resumed: epoch 4" in p.stdout


def test_generate_casts_or_refuses_odd_weight_files_in_one_line(tmp_path, capsys):
    root = make_mnist(tmp_path / "data", n=40)
    script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--out", tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "generator_weights.pt", weights_only=True)
    variants = {"half": lambda v: v.half(), "double": lambda v: v.double(),
                "meta": lambda v: v.to("meta"), "sparse": lambda v: v.to_sparse()}
    for name, change in variants.items():
        state = {k: change(v) if v.is_floating_point() else v
                 for k, v in saved["state_dict"].items()}
        torch.save({**saved, "state_dict": state}, tmp_path / f"{name}.pt")
        code = in_process(dcgan_mnist.main, "--generate", tmp_path / f"{name}.pt", "--out",
                          tmp_path / name, "--num-samples", 4)
        err = capsys.readouterr().err
        if name in ("half", "double"):  # cast to the network's float32
            assert code == 0 and (tmp_path / name / "generated.png").is_file(), err
        else:
            assert code == 2 and err.startswith("error:") and "can rebuild" in err, err
            assert len(err.strip().splitlines()) == 1 and not (tmp_path / name).exists()
    # the exported program is named as such, without suggesting checkpoint.pt
    assert in_process(dcgan_mnist.main, "--generate", tmp_path / "run" / "generator.pt2") == 2
    err = capsys.readouterr().err
    assert "generator_weights.pt" in err and "checkpoint.pt" not in err, err


def test_generate_writes_a_new_folder_or_file_never_over_an_earlier_one(tmp_path):
    root = make_mnist(tmp_path / "data", n=40)
    run = tmp_path / "run"
    script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--out", run)
    before = {n: (run / n).read_bytes() for n in os.listdir(run) if not n.startswith(".")}
    for _ in range(2):
        assert in_process(dcgan_mnist.main, "--generate", run / "generator_weights.pt") == 0
    assert (run / "generated" / "generated.png").is_file()  # a new folder beside the weights
    assert (run / "generated-2" / "generated.png").is_file()
    assert {n: (run / n).read_bytes() for n in before} == before  # the run untouched
    for seed in (1, 2):  # --out given twice: a second file beside the first
        assert in_process(dcgan_mnist.main, "--generate", run / "generator_weights.pt",
                          "--seed", seed, "--out", tmp_path / "mine") == 0
    a, b = (tmp_path / "mine" / n for n in ("generated.png", "generated-2.png"))
    assert a.is_file() and b.is_file() and a.read_bytes() != b.read_bytes()


def test_non_finite_loss_stops_with_one_error_line_and_keeps_the_last_checkpoint(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    out = tmp_path / "o"
    script("dcgan_mnist.py", "--dataroot", root, "--epochs", 1, "--batch-size", 16, "--no-eval",
           "--out", out)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    saved["generator"]["fc.weight"][0, 0] = float("inf")  # a diverged generator's weights
    torch.save(saved, out / "checkpoint.pt")
    before = (out / "checkpoint.pt").read_bytes()
    p = script("dcgan_mnist.py", "--resume", out / "checkpoint.pt", "--epochs", 2, check=False)
    assert_user_error(p, "loss became", "diverged", "lower --lr")
    assert (out / "checkpoint.pt").read_bytes() == before and not (out / ".lock").exists()


def wait_for(p, prefix):
    for line in p.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line {prefix!r}: " + p.stderr.read()[-2000:])


def test_sigterm_while_decoding_exits_130_and_leaves_nothing(tmp_path):
    root = png_folder(tmp_path / "png", 600)
    p = start("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--workers", 0,
              "--no-eval", "--out", tmp_path / "o")
    wait_for(p, "arguments:")  # the decoding starts now
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert not (tmp_path / "o" / ".lock").exists()


def test_sigterm_at_the_end_exits_130_and_resume_finishes_the_files(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    for gap in (None, 0.2):  # one signal; then two, 0.2 s apart
        out = tmp_path / f"o{gap}"
        p = start("dcgan_mnist.py", "--dataroot", root, "--epochs", 1, "--batch-size", 16,
                  "--log-every", 1, "--no-eval", "--out", out)
        wait_for(p, "| 003 / 004 |")  # the last step: then the checkpoint, figures, export
        os.killpg(p.pid, signal.SIGTERM)
        if gap:
            time.sleep(gap)
            os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
        assert ("--resume" in err or gap) and not (out / ".lock").exists()
        assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
        for name in ("generator_weights.pt", "checkpoint.pt"):  # whatever is there loads
            if (out / name).exists():
                torch.load(out / name, weights_only=True)
        if (out / "checkpoint.pt").exists():  # the second signal may quit before it
            script("dcgan_mnist.py", "--resume", out / "checkpoint.pt")
        else:
            assert gap and "Traceback" not in err
            script("dcgan_mnist.py", "--dataroot", root, "--epochs", 1, "--batch-size", 16,
                   "--no-eval", "--out", out, "--overwrite")
        assert (out / "generator.pt2").is_file() and (out / "losses.png").is_file()


class Payload:
    """A pickle that would create a file when unpickled (torch.load without weights_only)."""
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_code_in_generate_or_resume_files_never_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.save({"script": "dcgan_mnist", "settings": Payload(marker), "args": {}},
               tmp_path / "evil.pt")
    for flag in ("--generate", "--resume"):
        assert in_process(dcgan_mnist.main, flag, tmp_path / "evil.pt", "--out",
                          tmp_path / "o") == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "evil.pt" in err, err
    assert not marker.exists() and not (tmp_path / "o").exists()
