"""exponential_gan.py: training, the book's steps and figures, --generate, --tutorial, signals and
bad input. The script runs as a subprocess with real flags where it trains (main() sets torch's
thread count); its functions are unit-tested on inputs whose answers are known."""
import os
import signal
import time

import pytest
import torch
import torch.nn as nn

import common
import exponential_gan as E
from helpers import in_process, rows, script, start


def load_module(path):
    """What the docstring promises other projects: the .pt2 loads without the script."""
    return torch.export.load(str(path)).module()


# -- end to end --------------------------------------------------------------------------------
def test_trains_keeps_the_best_generator_and_generates(tmp_path, capsys):
    out = tmp_path / "run"
    p = script("exponential_gan.py", "--epochs", 12, "--plot-every", 6, "--out", out)
    assert p.stdout.startswith("arguments: python exponential_gan.py --shape exponential")
    assert {"p1.png", "p6.png", "p12.png", "train_data.png", "losses.png", "new_samples.png",
            "generator.pt2"} <= set(os.listdir(out))
    history = rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in history] == list(range(1, 13))
    assert int(history[-1]["iteration"]) == 12 * 8  # 2048 pairs / batch 256
    # learning happened: after 12 epochs x covers [0, 50] far better than the untrained G
    assert float(history[-1]["ks"]) < 0.5 * float(history[0]["ks"])
    assert "keeping the best generator" in p.stdout and "steps/s, ETA" in p.stdout
    # the saved generator returns raw units: x inside the data's range (Tanh + Scale)
    xy = load_module(out / "generator.pt2")(torch.randn(2000, 2))
    assert xy[:, 0].min() >= 0 and xy[:, 0].max() <= 50 and torch.isfinite(xy).all()

    # --generate: the shape comes from the file, not from --shape
    gen = tmp_path / "gen"
    p = script("exponential_gan.py", "--generate", out / "generator.pt2", "--num-samples", 300,
               "--shape", "sine", "--out", gen)
    samples = rows(gen / "samples.csv")
    assert len(samples) == 300 and set(samples[0]) == {"x", "y"}
    assert all(0 <= float(s["x"]) <= 50 for s in samples)
    assert (gen / "generated.png").stat().st_size > 0 and "--shape exponential" in p.stdout
    # ... and never replaces earlier samples unless asked to (in-process: no training here)
    before = (gen / "samples.csv").read_bytes()
    argv = ["--generate", str(out / "generator.pt2"), "--num-samples", "5", "--out", str(gen)]
    assert common.run(E.main, argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (gen / "samples.csv").read_bytes() == before
    assert common.run(E.main, argv + ["--overwrite"]) == 0
    assert len(rows(gen / "samples.csv")) == 5


def test_sine_shape_keeps_its_range_and_is_never_overwritten(tmp_path, capsys):
    p = script("exponential_gan.py", "--shape", "sine", "--dry-run", "--out", tmp_path)
    xy = load_module(tmp_path / "generator.pt2")(torch.randn(500, 2))
    assert xy[:, 0].abs().max() <= 5 and xy[:, 1].abs().max() <= 1  # the sine data's ranges
    assert "--shape sine" in p.stdout.splitlines()[0]
    pictures = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path) if f.endswith("png")}
    # an exponential run into the same folder is refused (before any training): the sine
    # pictures stay
    assert common.run(E.main, ["--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out") and "--overwrite" in err[0]
    assert pictures == {f: (tmp_path / f).read_bytes() for f in pictures}


def test_sigterm_saves_the_generator_and_exits_130(tmp_path):
    p = start("exponential_gan.py", "--epochs", 100000, "--patience", 100000, "--out", tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:  # wait for a few epochs of training
        path = tmp_path / "metrics.csv"
        if path.exists() and len(path.read_text().splitlines()) > 2:
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGTERM)  # what `timeout`, docker and Slurm send
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "SIGTERM" in err and "interrupted" in err and "Traceback" not in err
    G = load_module(tmp_path / "generator.pt2")  # the best generator so far, saved
    assert G(torch.randn(3, 2)).shape == (3, 2)
    assert (tmp_path / "losses.png").exists()


# -- the book's settings and steps -------------------------------------------------------------
def test_tutorial_gives_the_books_settings_and_given_flags_win():
    _, args = E.parse_args(["--tutorial"])
    assert (args.epochs, args.batch_size, args.lr, args.beta1, args.anneal, args.scale,
            args.keep, args.patience, args.stop_on, args.seed, args.observations) == \
        (10000, 128, 0.0005, 0.9, False, False, "last", 1000, "batch-mse", 0, 2048)
    _, args = E.parse_args(["--tutorial", "--epochs", "7"])
    assert args.epochs == 7 and args.batch_size == 128
    parser, args = E.parse_args([])
    assert (args.epochs, args.batch_size, args.lr, args.out) == \
        (200, 256, 0.002, "outputs/exponential_gan")
    assert "--batch-size 128" in " ".join(parser.format_help().split())


def test_book_steps_train_only_their_network():
    torch.manual_seed(0)
    low, high = torch.tensor([0.0, 1.0]), torch.tensor([50.0, 47.0])
    D, G = E.make_D(low, high, True), E.make_G(low, high, True)
    loss_fn = nn.BCEWithLogitsLoss()
    optimD, optimG = (torch.optim.Adam(m.parameters(), lr=0.01) for m in (D, G))
    weights = lambda m: [p.detach().clone() for p in m.parameters()]
    changed = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a, b))
    real = E.make_train_data("exponential", 64)
    d0, g0 = weights(D), weights(G)
    loss_D, d_x = E.train_D_on_real(real, D, loss_fn, optimD, "cpu")
    assert changed(d0, weights(D)) and not changed(g0, weights(G)) and 0 < d_x < 1
    d1 = weights(D)
    loss_D, d_gz = E.train_D_on_fake(48, D, G, loss_fn, optimD, "cpu")  # any batch size
    assert changed(d1, weights(D)) and not changed(g0, weights(G))
    d2 = weights(D)
    loss_G, fake_samples = E.train_G(48, D, G, loss_fn, optimG, "cpu")
    assert changed(g0, weights(G)) and not changed(d2, weights(D))
    assert fake_samples.shape == (48, 2) and not fake_samples.requires_grad
    assert all(p.requires_grad for p in D.parameters())  # D trainable again after G's step


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
    assert torch.equal(data, E.make_train_data("exponential", 2048))  # seeded: reproducible
    low, high = data.min(0).values, data.max(0).values
    D, G = E.make_D(low, high, True), E.make_G(low, high, True)
    linear = lambda m: [(l.in_features, l.out_features) for l in m if isinstance(l, nn.Linear)]
    assert linear(D) == [(2, 256), (256, 128), (128, 64), (64, 1)]
    assert linear(G) == [(2, 16), (16, 32), (32, 2)]
    assert sum(isinstance(l, nn.Dropout) and l.p == 0.3 for l in D) == 3
    # D's scaling maps the data's range to [-1, 1]
    assert torch.allclose(D[0](torch.stack([low, high])), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    # the book's raw-unit networks are there with --no-scale
    assert isinstance(E.make_G(low, high, False)[-1], nn.Linear)


def test_early_stop_counts_epochs_without_improvement():
    stopper = E.EarlyStop(patience=2)
    assert not stopper.stop(3.0) and stopper.improved
    assert not stopper.stop(3.0) and not stopper.improved  # equal is no improvement
    assert not stopper.stop(1.0) and stopper.improved
    assert not stopper.stop(2.0)
    assert stopper.stop(5.0) and stopper.min_gdif == 1.0


# -- bad input: one `error:` line, exit status 2, nothing written -------------------------------
@pytest.fixture
def junk(tmp_path):
    """A file that is not a generator, and generators of another script and of another shape."""
    text = tmp_path / "notes.pt2"
    text.write_text("not a model")
    other = common.export_generator(nn.Linear(2, 2), (torch.randn(2, 2),),
                                    str(tmp_path / "other.pt2"), "sequence_gan", {})
    wrong = common.export_generator(nn.Linear(3, 3), (torch.randn(2, 3),),
                                    str(tmp_path / "wrong.pt2"), "exponential_gan",
                                    {"shape": "circle", "scale": True})
    return dict(text=text, other=other, wrong=wrong)


BAD = [["--epochs", 0], ["--epochs", 1e7], ["--batch-size", 0], ["--lr", 0], ["--lr", "3.5e38"],
       ["--lr", "abc"], ["--beta1", 1], ["--shape", "circle"], ["--observations", 1],
       ["--observations", 1e10], ["--eval-samples", 1e12], ["--num-samples", 1e9],
       ["--seed", 2**64], ["--seed", -1], ["--device", "tpu"], ["--generate", "missing.pt2"],
       ["--generate", "{text}"], ["--generate", "{other}"], ["--generate", "{wrong}"],
       ["--out", "{text}"]]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(map(str, a)) for a in BAD])
def test_bad_input_is_one_error_line(argv, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(a).format(**junk) for a in argv]
    rc = in_process(E.main, *argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert not os.path.exists(tmp_path / "outputs")  # nothing trained, nothing written
