"""exponential_gan.py: training, the book's steps and figures, --generate, --tutorial, signals and
bad input. The script trains as a subprocess with real flags (main() sets torch's thread count;
the in-process runs put it back); its functions are unit-tested on inputs whose answers are
known."""
import os
import re
import signal
import time

import matplotlib.figure
import pytest
import torch
import torch.nn as nn

import common
import exponential_gan as E
from helpers import in_process, rows, script, start


def load_module(path):
    """What the docstring promises other projects: the .pt2 loads without the script."""
    return torch.export.load(str(path)).module()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real run of 12 epochs (p1, p6, p12), shared by the tests that read its files."""
    out = tmp_path_factory.mktemp("trained") / "run"
    p = script("exponential_gan.py", "--epochs", 12, "--plot-every", 6, "--out", out)
    return out, p.stdout


@pytest.fixture
def figures(monkeypatch):
    """Every figure main() saves (file name -> Figure), and torch's thread count put back."""
    saved, savefig = {}, matplotlib.figure.Figure.savefig

    def record(fig, fname, *args, **kwargs):
        saved[os.path.basename(str(fname))] = fig
        return savefig(fig, fname, *args, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    threads = torch.get_num_threads()
    yield saved
    torch.set_num_threads(threads)


def assert_readable(fig):
    """Both axes labelled, and a legend (if any) outside the plotting area."""
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        if ax.get_legend():
            assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())


# -- end to end --------------------------------------------------------------------------------
def test_trains_keeps_the_best_generator_and_generates(trained, tmp_path, capsys):
    out, stdout = trained
    assert stdout.startswith("arguments: python exponential_gan.py --shape exponential")
    assert {"p1.png", "p6.png", "p12.png", "train_data.png", "losses.png", "new_samples.png",
            "generator.pt2", "generator_weights.pt"} <= set(os.listdir(out))
    history = rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in history] == list(range(1, 13))
    assert int(history[-1]["iteration"]) == 12 * 8  # 2048 pairs / batch 256
    # learning happened: after 12 epochs x covers [0, 50] far better than the untrained G
    assert float(history[-1]["ks"]) < 0.5 * float(history[0]["ks"])
    assert "keeping the best generator" in stdout and "steps/s, ETA 0:00:" in stdout
    # the defaults' additions around the book's networks: D scales its input, G its output
    assert "D: Sequential(\n  (0): Scale()\n  (1): Linear(in_features=2, out_features=256" \
        in stdout and "(5): Tanh()\n  (6): Scale()\n)" in stdout
    # the saved generator returns raw units: x inside the data's range (Tanh + Scale)
    xy = load_module(out / "generator.pt2")(torch.randn(2000, 2))
    assert xy[:, 0].min() >= 0 and xy[:, 0].max() <= 50 and torch.isfinite(xy).all()

    # --generate reads generator_weights.pt: the shape comes from the file, not from --shape,
    # and the `arguments:` line names only the flags that act
    gen = tmp_path / "gen"
    p = script("exponential_gan.py", "--generate", out / "generator_weights.pt",
               "--num-samples", 300, "--shape", "sine", "--epochs", 5, "--out", gen)
    first = p.stdout.splitlines()[0]
    assert "--generate" in first and "--num-samples 300" in first
    assert "--shape" not in first and "--epochs" not in first and "--device" not in first
    samples = rows(gen / "samples.csv")
    assert len(samples) == 300 and set(samples[0]) == {"x", "y"}
    assert all(0 <= float(s["x"]) <= 50 for s in samples)
    assert (gen / "generated.png").stat().st_size > 0
    assert "quality against --shape exponential" in p.stdout
    # ... the same points as the generator.pt2 that other projects load, for the same noise
    torch.manual_seed(0)
    expected = load_module(out / "generator.pt2")(torch.randn(300, 2))
    got = torch.tensor([[float(s["x"]), float(s["y"])] for s in samples])
    assert torch.allclose(got, expected, atol=1e-5)
    # ... and never replaces earlier samples unless asked to (in-process: no training here)
    before = (gen / "samples.csv").read_bytes()
    argv = ["--generate", str(out / "generator_weights.pt"), "--num-samples", "5",
            "--out", str(gen)]
    assert common.run(E.main, argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (gen / "samples.csv").read_bytes() == before
    assert common.run(E.main, argv + ["--overwrite"]) == 0
    assert len(rows(gen / "samples.csv")) == 5


def test_the_books_networks_and_readable_figures(tmp_path, figures, capsys):
    """--no-scale gives the book's D and G exactly (bar the Sigmoid, in the loss); every figure
    has labelled axes and a legend beside the data."""
    assert in_process(E.main, "--dry-run", "--no-scale", "--out", tmp_path / "run") == 0
    printed = capsys.readouterr().out
    assert "Scale" not in printed and "Tanh" not in printed and "Sigmoid" not in printed
    assert "(0): Linear(in_features=2, out_features=256, bias=True)" in printed
    assert "(9): Linear(in_features=64, out_features=1, bias=True)\n)" in printed
    assert "(4): Linear(in_features=32, out_features=2, bias=True)\n)" in printed
    weights = torch.load(tmp_path / "run" / "generator_weights.pt", weights_only=True)
    assert {k: tuple(v.shape) for k, v in weights["state_dict"].items()} == {
        "0.weight": (16, 2), "0.bias": (16,), "2.weight": (32, 16), "2.bias": (32,),
        "4.weight": (2, 32), "4.bias": (2,)}
    assert weights["settings"] == {"shape": "exponential", "scale": False}
    assert in_process(E.main, "--generate", tmp_path / "run" / "generator_weights.pt",
                      "--out", tmp_path / "gen") == 0
    assert set(figures) == {"train_data.png", "p1.png", "losses.png", "new_samples.png",
                            "generated.png"}
    for fig in figures.values():
        assert_readable(fig)


def test_sine_shape_keeps_its_range_and_is_never_overwritten(tmp_path, capsys):
    p = script("exponential_gan.py", "--shape", "sine", "--dry-run", "--out", tmp_path)
    xy = load_module(tmp_path / "generator.pt2")(torch.randn(500, 2))
    assert xy[:, 0].abs().max() <= 5 and xy[:, 1].abs().max() <= 1  # the sine data's ranges
    first = p.stdout.splitlines()[0]
    assert "--shape sine" in first and "--epochs" not in first  # a dry run has one epoch
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
    assert (tmp_path / "losses.png").exists() and (tmp_path / "generator_weights.pt").exists()
    assert len(rows(tmp_path / "metrics.csv")) >= 2


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
    text = parser.format_help()
    assert "--batch-size 128" in " ".join(text.split())
    # --help: the first group is the tutorial's inputs, and --tutorial comes first in it
    assert re.findall(r"^(\S.*):$", text, re.M)[:2] == ["options", "the tutorial's inputs"]
    assert text.split("the tutorial's inputs:\n")[1].startswith("  --tutorial ")


def book_networks():
    """The book's D and G (listings 3.3, 3.4), with logits instead of the Sigmoid."""
    D = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 128),
                      nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3),
                      nn.Linear(64, 1))
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    return D, G


def test_book_steps_train_only_their_network():
    torch.manual_seed(0)
    D, G = book_networks()
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


def test_train_data_and_scaling_follow_the_book():
    data = E.make_train_data("exponential", 2048)
    assert data.shape == (2048, 2) and data[:, 0].min() >= 0 and data[:, 0].max() <= 50
    assert torch.allclose(data[:, 1], 1.08 ** data[:, 0])
    assert torch.equal(data, E.make_train_data("exponential", 2048))  # seeded: reproducible
    low, high = data.min(0).values, data.max(0).values
    # D's Scale maps the data's range to [-1, 1], G's maps it back
    to_unit, back = E.Scale(low, high, inverse=True), E.Scale(low, high)
    ends = torch.stack([low, high])
    assert torch.allclose(to_unit(ends), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert torch.allclose(back(to_unit(data)), data, rtol=1e-5, atol=1e-4)


def test_early_stop_counts_epochs_without_improvement():
    stopper = E.EarlyStop(patience=2)
    assert not stopper.stop(3.0) and stopper.improved
    assert not stopper.stop(3.0) and not stopper.improved  # equal is no improvement
    assert not stopper.stop(1.0) and stopper.improved
    assert not stopper.stop(2.0)
    assert stopper.stop(5.0) and stopper.min_gdif == 1.0


# -- bad input: one `error:` line, exit status 2, nothing written -------------------------------
def weights_file(path, script, settings, state_dict=None):
    """A generator_weights.pt as save_generator writes it, with the contents a test needs."""
    state_dict = nn.Linear(2, 16).state_dict() if state_dict is None else state_dict
    torch.save({"script": script, "settings": settings, "state_dict": state_dict}, path)
    return path


@pytest.fixture
def junk(tmp_path, trained):
    """Files --generate must refuse: not a generator, the .pt2 program (not the weights),
    another script's weights, and generator_weights.pt files with tampered contents."""
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    real = torch.load(trained[0] / "generator_weights.pt", weights_only=True)["state_dict"]
    return dict(
        text=text, pt2=trained[0] / "generator.pt2",
        other=weights_file(tmp_path / "other.pt", "sequence_gan", {"multiple": 5}),
        circle=weights_file(tmp_path / "circle.pt", "exponential_gan",
                            {"shape": "circle", "scale": True}, real),
        scale=weights_file(tmp_path / "scale.pt", "exponential_gan",
                           {"shape": "exponential", "scale": 10**12}, real),
        unscaled=weights_file(tmp_path / "unscaled.pt", "exponential_gan",
                              {"shape": "exponential", "scale": False}, real),
        misfit=weights_file(tmp_path / "misfit.pt", "exponential_gan",
                            {"shape": "exponential", "scale": True}),
        nostate=weights_file(tmp_path / "nostate.pt", "exponential_gan",
                             {"shape": "exponential", "scale": True}, [1, 2, 3]),
        nosettings=weights_file(tmp_path / "nosettings.pt", "exponential_gan", [10**9], real))


BAD = [["--epochs", 0], ["--epochs", 1e7], ["--batch-size", 0], ["--lr", 0], ["--lr", "3.5e38"],
       ["--lr", "abc"], ["--beta1", 1], ["--shape", "circle"], ["--observations", 1],
       ["--observations", 1e10], ["--eval-samples", 1e12], ["--num-samples", 1e9],
       ["--seed", 2**64], ["--seed", -1], ["--device", "tpu"], ["--out", "{text}"]]
GENERATE = {  # --generate FILE -> what its one error line says
    "missing.pt": "does not exist", "{text}": "cannot load", "{pt2}": "generator_weights.pt",
    "{other}": "pass it to sequence_gan.py", "{circle}": "--shape", "{scale}": "--scale",
    "{unscaled}": "do not fit", "{misfit}": "do not fit", "{nostate}": "do not fit",
    "{nosettings}": "--shape"}
CASES = [(argv, "") for argv in BAD] + [(["--generate", f], w) for f, w in GENERATE.items()]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(map(str, a)) for a, _ in CASES])
def test_bad_input_is_one_error_line(argv, words, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = in_process(E.main, *[str(a).format(**junk) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert words in lines[0]
    assert not os.path.exists(tmp_path / "outputs")  # nothing trained, no --out folder made
