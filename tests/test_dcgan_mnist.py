"""Tests of dcgan_mnist.py on small real inputs made here: IDX files in torchvision's MNIST/raw
layout and PNG folders. CPU only, no network; everything is written under tmp_path."""
import csv
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import common
import dcgan_mnist

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "dcgan_mnist.py")
OUTPUTS = ["generator.pt2", "checkpoint.pt", "metrics.csv", "losses.png", "fake_samples.png",
           "progress.gif", "real_vs_fake.png"]


# -- small real data ---------------------------------------------------------------------------
def fake_digits(n, seed):
    """n 28x28 uint8 images whose class (0-9) is the column of a bright bar, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for img, c in zip(images, labels):
        img[4:24, 3 + 2 * c:5 + 2 * c] = 255
    return images, labels.astype(np.uint8)


def write_idx(path, array):
    """IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian int32 sizes, the bytes."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(np.array(array.shape, dtype=">i4").tobytes())
        f.write(array.tobytes())


def make_mnist(root, n_train=96, n_test=40, name="MNIST"):
    raw = os.path.join(root, name, "raw")
    os.makedirs(raw, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = fake_digits(n, seed)
        write_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), images)
        write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), labels)
    return str(root)


def make_png_folder(root, per_class=6, classes=10, flat=False):
    images, labels = fake_digits(per_class * classes, 2)
    for i, (img, c) in enumerate(zip(images, labels)):
        folder = root if flat else os.path.join(root, str(c))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img).convert("RGB").save(os.path.join(folder, f"{i:04d}.png"))
    return str(root)


def script(*args, timeout=240):
    """Run the script as a user does; returns the CompletedProcess."""
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=HERE)


def in_process(*args):
    """common.run(main) in this process: the exit status a user would see (no import cost)."""
    return common.run(dcgan_mnist.main, [str(a) for a in args])


def metric_rows(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def state(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt["generator"], ckpt["discriminator"], ckpt


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- the two tutorials, end to end ----------------------------------------------------------
def test_summaries_have_the_tutorials_parameter_totals():
    count = lambda m: sum(p.numel() for p in m.parameters())
    g, d = dcgan_mnist.build_models("cookbook", 100, 0)
    assert (count(g), count(d)) == (1_866_561, 95_105)  # seed 000's torchsummary totals
    g, d = dcgan_mnist.build_models("dropout", 16, 0)
    assert (count(g), count(d)) == (1_177_472, 212_865)  # the seed 002 layers


def test_dry_run_cookbook_on_mnist_idx_writes_every_output(tmp_path):
    data, out = make_mnist(tmp_path / "data"), tmp_path / "out"
    r = script("--dataroot", data, "--out", out, "--dry-run", "--no-download", "--batch-size", 32)
    assert r.returncode == 0, r.stderr
    assert "Total params: 1,866,561" in r.stdout and "Total params: 95,105" in r.stdout
    assert "seed: 999" in r.stdout and "device: cpu" in r.stdout
    assert re.search(r"\| 000 / 003 \| G Loss: [\d.]+ \| D Loss: [\d.]+ \| D\(x\): [\d.]+ \| "
                     r"D\(G\(z\)\): [\d.]+ \| \d+ img/s \| ETA [\d:]+ \|", r.stdout), r.stdout
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    netG = torch.export.load(str(out / "generator.pt2")).module()
    for n in (1, 5):  # dynamic batch
        x = netG(torch.randn(n, 100))
        assert x.shape == (n, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["iterations"] == 1 and ckpt["model"] == {"arch": "cookbook", "z_dim": 100, "n_classes": 0}
    # --ema is bias-corrected: after one step the average is G itself, not 0.5% of it
    assert_same_weights(ckpt["generator_ema"], ckpt["generator"])
    rows = metric_rows(out)
    assert rows[0]["iteration"] == "0" and float(rows[0]["images_per_sec"]) > 0


def test_dropout_arch_from_png_folder_two_epochs_with_quality_figures(tmp_path):
    data, out = make_png_folder(tmp_path / "training"), tmp_path / "out"
    r = script("--arch", "dropout", "--dataset", "folder", "--dataroot", data, "--out", out,
               "--epochs", 2, "--batch-size", 16, "--eval-samples", 100, "--log-every", 1,
               "--workers", 0)
    assert r.returncode == 0, r.stderr
    assert "data: 60 images of 10 class(es)" in r.stdout
    assert "| 003 / 004 | G Loss:" in r.stdout and "Epoch : | 002 / 002 |" in r.stdout
    netG = torch.export.load(str(out / "generator.pt2")).module()
    assert netG(torch.randn(3, 16)).shape == (3, 1, 28, 28)  # seed 002's 16-d noise
    epochs = [row for row in metric_rows(out) if row["frechet"]]
    assert [row["epoch"] for row in epochs] == ["1", "2"]  # quality every epoch
    for row in epochs:
        assert 1 <= int(row["classes_covered"]) <= 10 and 0 < float(row["confidence"]) <= 1
        assert float(row["frechet"]) >= 0
    assert "final quality: classes_covered" in r.stdout
    assert os.path.isfile(os.path.join(data, ".dcgan_mnist_classifier.pt"))  # cached classifier
    assert len(list(out.glob("fake_iter_*.png"))) == 2  # iteration 0 and the last one


def test_conditional_grid_has_one_row_per_class_and_generate_draws_a_label(tmp_path):
    data, out = make_mnist(tmp_path / "data"), tmp_path / "out"
    r = script("--dataroot", data, "--out", out, "--conditional", "--epochs", 1,
               "--batch-size", 32, "--no-eval", "--no-download")
    assert r.returncode == 0, r.stderr
    w, h = Image.open(out / "fake_samples.png").size
    assert (w, h) == (10 * 30 + 2, 10 * 30 + 2)  # 10 classes x 10 samples, 2 px padding
    netG = torch.export.load(str(out / "generator.pt2")).module()
    assert netG(torch.randn(4, 100), torch.tensor([7, 7, 0, 9])).shape == (4, 1, 28, 28)
    gen = tmp_path / "gen"
    r = script("--generate", out / "generator.pt2", "--label", 7, "--num-samples", 6,
               "--save-images", gen / "each", "--out", gen)
    assert r.returncode == 0, r.stderr
    assert (gen / "generated.png").is_file() and len(os.listdir(gen / "each")) == 6
    # label 7 always gives the same images for the same noise: compare with the module directly
    torch.manual_seed(999)
    expected = netG(torch.randn(6, 100), torch.full((6,), 7)).clamp(-1, 1)
    saved = torch.stack([torch.from_numpy(np.array(Image.open(gen / "each" / f))) for f in
                         sorted(os.listdir(gen / "each"))]).float()[..., 0] / 255
    assert torch.allclose(saved, (expected[:, 0] + 1) / 2, atol=1 / 255 + 1e-6)
    assert in_process("--generate", out / "generator.pt2", "--label", 10, "--out", gen) == 2


# -- resume and Ctrl-C ------------------------------------------------------------------------
def test_resume_continues_exactly(tmp_path, capsys):
    data = make_mnist(tmp_path / "data")
    common_flags = ["--dataroot", data, "--batch-size", 32, "--no-eval", "--no-download"]
    a, b = tmp_path / "a", tmp_path / "b"
    # in-process (the Ctrl-C test below runs the same path as subprocesses)
    assert in_process(*common_flags, "--out", a, "--epochs", 2) == 0
    assert in_process(*common_flags, "--out", b, "--epochs", 1) == 0
    assert in_process(*common_flags, "--out", b, "--epochs", 2, "--resume", b / "checkpoint.pt") == 0
    assert "resumed from" in capsys.readouterr().out
    ga, da, ca = state(a / "checkpoint.pt")
    gb, db, cb = state(b / "checkpoint.pt")
    assert_same_weights(ga, gb)
    assert_same_weights(da, db)
    assert_same_weights(ca["generator_ema"], cb["generator_ema"])  # --ema's average resumes too
    assert ca["g_losses"] == cb["g_losses"] and ca["iterations"] == cb["iterations"] == 6
    # generator.pt2 is the weight average (default --ema), not G's last step
    g = torch.export.load(str(a / "generator.pt2")).module()
    z = torch.randn(3, 100)
    live = dcgan_mnist.Generator_model(100)
    live.load_state_dict(ga)
    avg = dcgan_mnist.Generator_model(100)
    avg.load_state_dict(ca["generator_ema"])
    with torch.no_grad():
        assert torch.allclose(g(z), avg.eval()(z), atol=1e-5)
        assert not torch.allclose(g(z), live.eval()(z), atol=1e-3)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_matches_an_uninterrupted_run(tmp_path):
    data = make_mnist(tmp_path / "data")
    flags = ["--dataroot", data, "--batch-size", 32, "--no-eval", "--no-download", "--log-every", 1]
    out = tmp_path / "stopped"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, SCRIPT, *map(str, flags), "--out", str(out), "--epochs", "500"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE, env=env)
    try:
        for line in p.stdout:  # wait until training is under way in its second epoch
            if line.startswith("Epoch : | 002"):
                break
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    _, _, ckpt = state(out / "checkpoint.pt")
    done = ckpt["epoch"] + 1  # finish the epoch it stopped in
    assert 1 <= ckpt["epoch"] and ckpt["iterations"] >= 3
    r = script(*flags, "--out", out, "--epochs", done, "--resume", out / "checkpoint.pt")
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref"
    assert in_process(*flags, "--out", ref, "--epochs", done) == 0
    assert_same_weights(state(out / "checkpoint.pt")[0], state(ref / "checkpoint.pt")[0])
    assert_same_weights(state(out / "checkpoint.pt")[1], state(ref / "checkpoint.pt")[1])


# -- bad input: one error line, exit 2 ----------------------------------------------------------
def test_missing_dataset_is_one_error_line_without_traceback(tmp_path):
    r = script("--dataroot", tmp_path / "nothing", "--no-download", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.startswith("error: MNIST not found in") and "Traceback" not in r.stderr
    assert os.path.join("nothing", "MNIST", "raw") in r.stderr  # says where to put the files


@pytest.mark.parametrize("args, message", [
    (["--dataset", "folder", "--dataroot", "{tmp}/missing"], "does not exist"),
    (["--dataset", "folder", "--dataroot", "{tmp}/empty"], "no images"),
    (["--arch", "resnet"], "invalid choice"),
    (["--dataset", "cifar"], "invalid choice"),
    (["--batch-size", "0"], "positive"),
    (["--real-label", "1.5"], "(0, 1]"),
    (["--label", "3"], "go with --generate"),
    (["--generate", "{tmp}/none.pt2"], "does not exist"),
    (["--resume", "{tmp}/garbage.pt", "--dataroot", "{tmp}/data", "--no-download"], "cannot load checkpoint"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    os.makedirs(tmp_path / "empty")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    make_mnist(tmp_path / "data", n_train=8, n_test=4)
    args = [a.format(tmp=tmp_path) for a in args] + ["--out", str(tmp_path / "o")]
    try:
        code = in_process(*args)
    except SystemExit as e:  # argparse errors exit from inside parse_args
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_resume_from_another_architecture_or_z_dim_is_refused(tmp_path, capsys):
    data = make_mnist(tmp_path / "data", n_train=8, n_test=4)
    flags = ["--dataroot", data, "--no-download", "--dry-run"]
    assert in_process(*flags, "--out", tmp_path / "o") == 0
    ckpt = tmp_path / "o" / "checkpoint.pt"
    capsys.readouterr()
    assert in_process(*flags, "--out", tmp_path / "o2", "--arch", "dropout", "--resume", ckpt) == 2
    assert "--arch" in capsys.readouterr().err
    assert in_process(*flags, "--out", tmp_path / "o3", "--z-dim", 64, "--resume", ckpt) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "'z_dim': 100" in err


def test_flat_folder_resized_and_corrupt_images_are_handled(tmp_path, capsys):
    data = make_png_folder(tmp_path / "flat", per_class=1, flat=True)  # 10 images, no subfolders
    Image.new("L", (40, 32), 200).save(os.path.join(data, "big.png"))  # another size
    Image.new("L", (56, 56), 100).save(os.path.join(data, "bigger.jpg"))
    with open(os.path.join(data, "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "flat" / "notes.txt").write_text("ignored: not an image")
    code = in_process("--dataset", "folder", "--dataroot", data, "--dry-run", "--workers", 0,
                      "--out", tmp_path / "o")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "no class subfolders" in out and "data: 12 images of 1 class(es)" in out
    assert out.count("resized (shorter side)") == 1 and "2 image(s) are not 28x28" in out  # said once
    assert "skipped 1 unreadable image file(s)" in err
    assert (tmp_path / "o" / "generator.pt2").is_file()


def test_conditional_needs_labels(tmp_path, capsys):
    data = make_png_folder(tmp_path / "flat", per_class=1, flat=True)
    code = in_process("--dataset", "folder", "--dataroot", data, "--conditional", "--dry-run",
                      "--workers", 0, "--out", tmp_path / "o")
    assert code == 2 and "--conditional needs labelled data" in capsys.readouterr().err
