"""dcgan_mnist.py resumes exactly: after Ctrl-C anywhere, and after a finished run resumed to
add epochs, the final generator (and its moving average) equals one uninterrupted run's."""
import os
import signal

import torch
from PIL import Image

from helpers import make_mnist, rows, script, start


def weights(out):
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu",
                      weights_only=True)
    return {f"{part}.{k}": v.float() for part in ("generator", "ema")
            for k, v in (ckpt[part] or {}).items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6, worst


def test_ctrl_c_anywhere_then_resume_alone_equals_one_run(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    flags = ["--dataroot", root, "--subset", 48, "--batch-size", 8, "--epochs", 3,
             "--eval", "--eval-samples", 100, "--conditional", "--log-every", 1]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    script("dcgan_mnist.py", *flags, "--out", tmp_path / "whole", env=env)
    p = start("dcgan_mnist.py", *flags, "--out", tmp_path / "cut", env=env)
    for line in p.stdout:  # Ctrl-C (to the whole process group) early in the first epoch
        if line.startswith("| 001 / 006"):
            os.killpg(p.pid, signal.SIGINT)
            break
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    cut = tmp_path / "cut"
    saved = torch.load(cut / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 0 and 0 < saved["batch"] < 6, saved["batch"]  # mid-epoch
    assert (cut / "losses.png").is_file() and (cut / "fake_samples.png").is_file()
    p = script("dcgan_mnist.py", "--resume", cut / "checkpoint.pt", env=env)  # alone
    assert "quality classifier: reused" in p.stdout  # trained once, by the first run
    assert_same(weights(tmp_path / "whole"), weights(cut))
    quality = [r for r in rows(cut / "metrics.csv") if r["frechet"]]
    assert [r["epoch"] for r in quality] == ["1", "2", "3"]
    assert all(r["g_loss"] == "" for r in quality)  # quality rows carry no stale losses


def test_finished_run_resumed_for_more_epochs_equals_one_run(tmp_path):
    root = tmp_path / "png"  # the PNG-folder tutorial's path: ImageFolder + DataLoader workers
    for i in range(30):
        os.makedirs(root / str(i % 3), exist_ok=True)
        Image.new("L", (28, 28), 40 * (i % 3) + i).save(root / str(i % 3) / f"{i}.png")
    flags = ["--dataset", "folder", "--dataroot", root, "--no-decode-once", "--workers", 2,
             "--arch", "dropout", "--batch-size", 8, "--no-eval"]
    script("dcgan_mnist.py", *flags, "--epochs", 2, "--out", tmp_path / "whole")
    script("dcgan_mnist.py", *flags, "--epochs", 1, "--out", tmp_path / "more")
    p = script("dcgan_mnist.py", "--resume", tmp_path / "more" / "checkpoint.pt",
               "--epochs", 2)
    assert "Epoch 2; Elapsed time" in p.stdout and "Epoch 1;" not in p.stdout
    assert_same(weights(tmp_path / "whole"), weights(tmp_path / "more"))
