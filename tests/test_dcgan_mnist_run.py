"""dcgan_mnist.py's README promises on how a run is set and controlled: --tutorial's settings,
--dataset fashion-mnist, --time-budget for the whole run, SIGTERM to the process group with
DataLoader workers and its exact mid-epoch resume."""
import os
import re
import signal
import time

import torch

from helpers import make_mnist, rows, script, start
from test_dcgan_mnist_resume import assert_same, weights

TUTORIAL = {"batch_size": 128, "lr": 1e-3, "beta1": 0.9, "real_label": 1.0, "ema": 0.0,
            "decode_once": False, "amp": "off", "channels_last": False}


def test_tutorial_sets_each_of_the_cookbooks_settings_and_a_flag_still_wins(tmp_path):
    root = make_mnist(tmp_path / "data", n=40)
    p = script("dcgan_mnist.py", "--dataroot", root, "--tutorial", "--dry-run", "--out",
               tmp_path / "a")
    saved = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["args"]
    assert {k: saved[k] for k in TUTORIAL} == TUTORIAL
    first = p.stdout.splitlines()[0]
    for words in ("--batch-size 128", "--beta1 0.9", "--real-label 1.0", "--ema 0.0",
                  "--no-decode-once", "--amp off", "--no-channels-last"):
        assert words in first, (words, first)
    assert "device: cpu, float32" in p.stdout.splitlines()
    assert saved["ema"] == 0 and torch.load(tmp_path / "a" / "checkpoint.pt",
                                            weights_only=True)["ema"] is None  # G itself
    script("dcgan_mnist.py", "--dataroot", root, "--tutorial", "--batch-size", 16, "--dry-run",
           "--out", tmp_path / "b")
    saved = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["args"]
    assert saved["batch_size"] == 16 and saved["beta1"] == 0.9


def test_fashion_mnist_reads_its_own_files(tmp_path):
    root = tmp_path / "data"
    make_mnist(root, n=40)  # MNIST beside it, to be left alone
    make_mnist(root, n=50, name="FashionMNIST")
    p = script("dcgan_mnist.py", "--dataroot", root, "--dataset", "fashion-mnist", "--no-download",
               "--dry-run", "--out", tmp_path / "o")
    assert "data: 50 images of 10 class(es)" in p.stdout
    program = torch.export.load(str(tmp_path / "o" / "generator.pt2")).module()
    assert program(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_time_budget_ends_the_whole_run_within_it_and_says_how_to_continue(tmp_path):
    root = make_mnist(tmp_path / "data", n=1000)
    budget, out = 20, tmp_path / "o"
    began = time.monotonic()
    p = script("dcgan_mnist.py", "--dataroot", root, "--epochs", 200, "--batch-size", 16,
               "--log-every", 10, "--time-budget", budget, "--eval-samples", 100, "--out", out,
               env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    took = time.monotonic() - began
    assert took < budget * 1.1 + 15, took  # (+ the interpreter's start and torch's import)
    assert f"time budget spent: saved {out / 'checkpoint.pt'}; continue with: " in p.stdout
    assert f"--resume {out / 'checkpoint.pt'}" in p.stdout
    etas = [int(m.group(1)) * 60 + int(m.group(2))
            for m in re.finditer(r"ETA 0:(\d\d):(\d\d)", p.stdout)]
    assert etas and max(etas) <= budget, etas  # the ETA counts the budget, not 200 epochs
    assert "ETA" in p.stdout and all(x <= budget for x in etas)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 0 < saved["iterations"] < 200 * 63
    for name in ("generator.pt2", "generator_weights.pt", "losses.png", "fake_samples.png"):
        assert (out / name).is_file(), name
    assert int(rows(out / "metrics.csv")[-1]["iteration"]) == saved["iterations"] - 1


def test_sigterm_to_the_group_with_workers_stops_mid_epoch_and_resumes_exactly(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    flags = ["--dataroot", root, "--subset", 48, "--batch-size", 8, "--epochs", 2,
             "--no-decode-once", "--workers", 2, "--no-eval", "--log-every", 1]
    script("dcgan_mnist.py", *flags, "--out", tmp_path / "whole")
    p = start("dcgan_mnist.py", *flags, "--out", tmp_path / "cut")
    for line in p.stdout:
        if line.startswith("| 002 / 006"):
            os.killpg(p.pid, signal.SIGTERM)  # to the workers too, as docker and Slurm do
            break
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "continue with: python dcgan_mnist.py --resume" in err
    saved = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 0 and 2 < saved["batch"] < 6, saved["batch"]  # mid-epoch
    script("dcgan_mnist.py", "--resume", tmp_path / "cut" / "checkpoint.pt")
    assert_same(weights(tmp_path / "whole"), weights(tmp_path / "cut"))
