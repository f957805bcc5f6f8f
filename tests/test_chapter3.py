"""Smoke tests of the two chapter-3 scripts, exponential_gan.py and sequence_gan.py.

The scripts run as subprocesses with real flags (as a user runs them); their quality figures and
data helpers are unit-tested on inputs whose answers are known. CPU only, no network, everything
written under tmp_path. Nothing here trains in-process (main() sets torch's thread count)."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn

import common
import exponential_gan as E
import sequence_gan as S

HERE = os.path.dirname(os.path.abspath(__file__))


def script(name, *args, check=True):
    """Run a script as a user does; returns the CompletedProcess."""
    p = subprocess.run([sys.executable, os.path.join(HERE, name), *map(str, args)],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if check:
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return p


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_module(path):
    """What the docs promise: the .pt2 loads without the scripts."""
    return torch.export.load(str(path)).module()


# -- exponential_gan.py: end to end --------------------------------------------------------------
def test_exponential_dry_run_writes_every_file(tmp_path):
    out = tmp_path / "files"
    p = script("exponential_gan.py", "--dry-run", "--out", out)
    for name in ["exponential.pt2", "metrics.csv", "losses.png", "train_data.png", "p1.png",
                 "generated.png"]:
        assert (out / name).stat().st_size > 0, name
    assert "seed: 0" in p.stdout and "device: cpu" in p.stdout
    assert "final quality" in p.stdout.splitlines()[-1]
    (row,) = rows(out / "metrics.csv")
    for key in ["epoch", "iteration", "loss_D", "loss_G", "D_x", "D_G_z", "steps_per_sec", "mse", "ks"]:
        assert row[key] != "", key
    G = load_module(out / "exponential.pt2")
    for n in (1, 7):  # dynamic batch
        assert G(torch.randn(n, 2)).shape == (n, 2)


def test_exponential_trains_and_generates(tmp_path):
    out = tmp_path / "run"
    p = script("exponential_gan.py", "--epochs", 40, "--plot-every", 20, "--out", out)
    assert {"p1.png", "p20.png", "p40.png"} <= set(os.listdir(out))
    history = rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in history] == list(range(1, 41))
    assert int(history[-1]["iteration"]) == 40 * 8  # 2048 pairs / batch 256
    # learning happened: after 40 epochs x covers [0, 50] far better than the untrained G
    assert float(history[-1]["ks"]) < 0.5 * float(history[0]["ks"])
    # the saved generator returns raw units: x inside the data's range (Tanh + Scale)
    G = load_module(out / "exponential.pt2")
    xy = G(torch.randn(2000, 2))
    assert xy[:, 0].min() >= 0 and xy[:, 0].max() <= 50 and torch.isfinite(xy).all()
    assert "keeping the best generator" in p.stdout

    gen = tmp_path / "gen"
    p = script("exponential_gan.py", "--generate", out / "exponential.pt2", "--num-samples", 300,
               "--out", gen)
    samples = rows(gen / "samples.csv")
    assert len(samples) == 300 and set(samples[0]) == {"x", "y"}
    assert (gen / "samples.png").stat().st_size > 0
    assert "MSE" in p.stdout and "KS" in p.stdout


def test_exponential_sine_shape(tmp_path):
    p = script("exponential_gan.py", "--shape", "sine", "--dry-run", "--out", tmp_path)
    G = load_module(tmp_path / "sine.pt2")
    xy = G(torch.randn(500, 2))
    assert xy[:, 0].abs().max() <= 5 and xy[:, 1].abs().max() <= 1  # the sine data's ranges
    assert "--shape sine" in p.stdout


def test_exponential_ctrl_c_saves_the_generator_and_exits_130(tmp_path):
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "exponential_gan.py"), "--epochs",
                          "100000", "--patience", "100000", "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:  # wait for a few epochs of training
        path = tmp_path / "metrics.csv"
        if path.exists() and len(path.read_text().splitlines()) > 3:
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    G = load_module(tmp_path / "exponential.pt2")  # the best generator so far, still saved
    assert G(torch.randn(3, 2)).shape == (3, 2)


# -- exponential_gan.py: quality figures on known inputs ---------------------------------------
def test_performance_is_mse_against_the_curve():
    x = torch.linspace(0, 50, 101)
    assert E.performance(torch.stack([x, 1.08 ** x], 1)) == pytest.approx(0, abs=1e-9)
    assert E.performance(torch.stack([x, 1.08 ** x + 2], 1)) == pytest.approx(4, rel=1e-4)
    s = torch.linspace(-5, 5, 11)
    assert E.performance(torch.stack([s, torch.sin(s) - 0.5], 1), "sine") == pytest.approx(0.25)
    assert E.performance(torch.stack([s, s ** 2], 1), "quadratic") == pytest.approx(0, abs=1e-9)


def test_ks_uniform_on_known_samples():
    n = 1000
    even = (torch.arange(n) + 0.5) / n * 50  # the most uniform sample there is
    assert E.ks_uniform(even, 0, 50) == pytest.approx(0.5 / n, abs=1e-6)
    assert E.ks_uniform(torch.zeros(n), 0, 50) == pytest.approx(1.0)  # all at x = 0
    assert E.ks_uniform(even / 2, 0, 50) == pytest.approx(0.5, abs=1e-3)  # only [0, 25]
    assert E.ks_uniform(even - 25, -25, 25) == pytest.approx(0.5 / n, abs=1e-6)  # any range


def test_train_data_and_networks_follow_the_book():
    data = E.make_train_data("exponential", 2048)
    assert data.shape == (2048, 2) and data[:, 0].min() >= 0 and data[:, 0].max() <= 50
    assert torch.allclose(data[:, 1], 1.08 ** data[:, 0])
    assert torch.equal(data, E.make_train_data("exponential", 2048))  # seed 0: reproducible
    low, high = data.min(0).values, data.max(0).values
    D, G = E.make_D(low, high, True), E.make_G(low, high, True)
    linear = lambda m: [(l.in_features, l.out_features) for l in m if isinstance(l, nn.Linear)]
    assert linear(D) == [(2, 256), (256, 128), (128, 64), (64, 1)]
    assert linear(G) == [(2, 16), (16, 32), (32, 2)]
    assert sum(isinstance(l, nn.Dropout) and l.p == 0.3 for l in D) == 3
    # D's scaling maps the data's range to [-1, 1]
    assert torch.allclose(D[0](torch.stack([low, high])), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    # the book's raw-unit networks are still there with --no-scale
    assert isinstance(E.make_G(low, high, False)[-1], nn.Linear)


def test_early_stop_counts_epochs_without_improvement():
    stopper = E.EarlyStop(patience=2)
    assert not stopper.stop(3.0) and stopper.improved
    assert not stopper.stop(3.0) and not stopper.improved  # equal is no improvement
    assert not stopper.stop(1.0) and stopper.improved
    assert not stopper.stop(2.0)
    assert stopper.stop(5.0) and stopper.min_gdif == 1.0


# -- sequence_gan.py: end to end ----------------------------------------------------------------
def test_sequence_dry_run_writes_every_file(tmp_path):
    p = script("sequence_gan.py", "--dry-run", "--out", tmp_path)
    for name in ["num_gen.pt2", "metrics.csv", "losses.png", "histogram.png"]:
        assert (tmp_path / name).stat().st_size > 0, name
    (row,) = rows(tmp_path / "metrics.csv")
    for key in ["epoch", "iteration", "loss_D", "loss_G", "D_x", "D_G_z", "steps_per_sec",
                "validity", "coverage", "balance", "distance"]:
        assert row[key] != "", key
    G = load_module(tmp_path / "num_gen.pt2")
    for n in (1, 10):
        scores = G(torch.randn(n, 100))
        assert scores.shape == (n, 100)
    assert "final quality" in p.stdout.splitlines()[-1]


def test_sequence_trains_multiples_of_3_and_generates(tmp_path):
    out = tmp_path / "run"
    p = script("sequence_gan.py", "--multiple", 3, "--epochs", 300, "--out", out)
    history = rows(out / "metrics.csv")
    assert int(history[-1]["iteration"]) == 300
    assert float(history[-1]["validity"]) > float(history[0]["validity"])
    assert "coverage" in p.stdout

    gen = tmp_path / "gen"
    p = script("sequence_gan.py", "--generate", out / "num_gen.pt2", "--multiple", 3,
               "--num-samples", 3000, "--out", gen)
    nums = [int(r["number"]) for r in rows(gen / "samples.csv")]
    assert len(nums) == 3000 and all(0 <= n <= 99 for n in nums)
    # 300 iterations are enough for (nearly) only multiples of 3 and every one of the 34
    assert sum(n % 3 == 0 for n in nums) / len(nums) > 0.98
    assert len({n for n in nums if n % 3 == 0}) == 34
    assert (gen / "histogram.png").stat().st_size > 0


# -- sequence_gan.py: the book's helpers and the quality figures on known inputs --------------
def test_onehot_helpers_and_batches():
    assert S.onehot_encoder(1, 5).tolist() == [0, 1, 0, 0, 0]
    assert S.onehot_to_int(S.int_to_onehot(75)) == 75
    for multiple in (5, 3, 7, 99):
        seq = S.gen_sequence(1000, multiple)
        assert seq.shape == (1000,) and (seq % multiple == 0).all() and seq.max() <= 99
    assert set(S.gen_sequence(2000, 5).tolist()) == set(range(0, 100, 5))  # all 20 values come up
    batch = S.gen_batch(10, 5)
    assert batch.shape == (10, 100) and torch.equal(batch.sum(1), torch.ones(10))
    assert (S.data_to_num(batch) % 5 == 0).all()


def test_distance_and_quality_on_known_numbers():
    onehots = lambda nums: nn.functional.one_hot(torch.tensor(nums), 100).float()
    assert S.distance(onehots([0, 5, 95]), 5) == 0
    assert S.distance(onehots([1, 7, 10]), 5) == pytest.approx((1 + 4 + 0) / 3)

    balanced = torch.arange(0, 100, 5).repeat(50)  # every multiple of 5 exactly 50 times
    q = S.quality(balanced, 5)
    assert q == dict(validity=1.0, coverage=20, values=20, balance=1.0)
    skewed = torch.cat([balanced, torch.full((50,), 25), torch.tensor([1, 2, 3, 4])])
    q = S.quality(skewed, 5)
    assert q["validity"] == pytest.approx(1050 / 1054)
    assert q["balance"] == pytest.approx(2.0)
    missing = balanced[balanced != 40]
    q = S.quality(missing, 5)
    assert q["coverage"] == 19 and q["balance"] == float("inf")
    assert S.quality(torch.arange(0, 99, 7), 7)["values"] == 15


def test_networks_follow_the_book():
    D, G = S.make_D(), S.make_G("relu")
    assert [(l.in_features, l.out_features) for l in D if isinstance(l, nn.Linear)] == [(100, 1)]
    assert isinstance(G[0], nn.Linear) and isinstance(G[1], nn.ReLU)  # the book's G, by flag
    probs = S.make_G()(torch.randn(4, 100))  # the default G: each row sums to 1
    assert torch.allclose(probs.sum(1), torch.ones(4))


# -- bad input: one `error:` line, exit status 2, never a traceback ---------------------------
def call(module, argv, capsys):
    try:
        rc = common.run(module.main, [str(a) for a in argv])
    except SystemExit as e:  # argparse errors
        rc = e.code
    return rc, capsys.readouterr().err


@pytest.fixture
def junk(tmp_path):
    """A file that is not a generator, and an exported generator of the wrong shape."""
    text = tmp_path / "notes.pt2"
    text.write_text("not a model")
    wrong = tmp_path / "wrong.pt2"
    common.export_generator(nn.Linear(3, 3), (torch.randn(2, 3),), str(wrong))
    return text, wrong


BAD_SHARED = [["--epochs", 0], ["--epochs", -3], ["--batch-size", 0], ["--lr", 0], ["--lr", -1],
              ["--lr", "abc"], ["--generate", "missing.pt2"], ["--generate", "{text}"],
              ["--generate", "{wrong}"], ["--out", "{text}"]]


BAD = ([(E, argv) for argv in BAD_SHARED + [["--shape", "circle"], ["--observations", 1],
                                            ["--beta1", 1]]] +
       [(S, argv) for argv in BAD_SHARED + [["--multiple", 0], ["--multiple", 100],
                                            ["--multiple", 2.5], ["--feature-matching", -1]]])


@pytest.mark.parametrize("module,argv", BAD, ids=[f"{m.__name__}{' '.join(map(str, a))}" for m, a in BAD])
def test_bad_input_is_one_error_line(module, argv, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, wrong = junk
    argv = [str(a).format(text=text, wrong=wrong) for a in argv]
    rc, err = call(module, argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert not os.path.exists(tmp_path / "files")  # nothing trained, nothing written


def test_bad_input_from_the_command_line(tmp_path):
    for name, args in (("sequence_gan.py", ["--multiple", 100]),
                       ("exponential_gan.py", ["--generate", tmp_path / "none.pt2"])):
        p = script(name, *args, "--out", tmp_path / "o", check=False)
        assert p.returncode == 2 and p.stderr.startswith("error:") and "Traceback" not in p.stderr
