"""exponential_gan.py through its flags and files: training, --generate, signals, bad input."""
import os
import re
import signal
import subprocess
import sys
import time

import matplotlib.figure
import pytest
import torch
import torch.nn as nn

import common
import exponential_gan as E
import helpers
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


@pytest.fixture(autouse=True)
def keep_threads():
    """main() sets torch's thread count to 1 for its tiny networks: put it back after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


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
    assert in_process(E.main, "--shape", "sine", "--dry-run", "--out", tmp_path) == 0
    xy = load_module(tmp_path / "generator.pt2")(torch.randn(500, 2))
    assert xy[:, 0].abs().max() <= 5 and xy[:, 1].abs().max() <= 1  # the sine data's ranges
    first = capsys.readouterr().out.splitlines()[0]
    assert "--shape sine" in first and "--epochs" not in first  # a dry run has one epoch
    pictures = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path) if f.endswith("png")}
    # an exponential run into the same folder is refused (before any training): the sine
    # pictures stay
    assert common.run(E.main, ["--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out") and "--overwrite" in err[0]
    assert pictures == {f: (tmp_path / f).read_bytes() for f in pictures}


@pytest.mark.parametrize("gap", [0.2, 0.5])
def test_two_sigterms_still_save_the_generator_and_exit_130(tmp_path, gap):
    """A first SIGTERM stops training, a second one `gap` s later (an impatient `timeout`, docker
    stop) waits for the files: both generator files load, no stale lock is left."""
    p = start("exponential_gan.py", "--epochs", 100000, "--patience", 100000, "--out", tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:  # wait for a few epochs of training
        path = tmp_path / "metrics.csv"
        if path.exists() and len(path.read_text().splitlines()) > 2:
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGTERM)  # what `timeout`, docker and Slurm send
    time.sleep(gap)
    os.killpg(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "SIGTERM" in err and "interrupted" in err and "Traceback" not in err
    G = load_module(tmp_path / "generator.pt2")  # the best generator so far, saved
    assert G(torch.randn(3, 2)).shape == (3, 2)
    assert E.load_G(str(tmp_path / "generator_weights.pt"))[1] == "exponential"
    assert (tmp_path / "losses.png").exists() and not (tmp_path / ".lock").exists()
    assert len(rows(tmp_path / "metrics.csv")) >= 2


def test_a_diverging_run_is_one_error_line_and_saves_no_generator(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(E.main, "--lr", "1e9", "--epochs", 3, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the ") and "loss became nan" in err[0]
    assert "pass a lower --lr than 1e+09" in err[0]
    assert not (out / "generator_weights.pt").exists() and not (out / "generator.pt2").exists()
    assert not (out / "metrics.csv").exists()  # no finished run: a rerun may use the folder


def test_overwrite_replaces_the_whole_earlier_run_and_a_refused_or_failed_one_keeps_it(tmp_path,
                                                                                      capsys):
    out = tmp_path / "run"
    assert in_process(E.main, "--dry-run", "--out", out) == 0
    (out / "p25.png").write_bytes(b"an earlier run's figure")  # as a longer run leaves
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    holder = subprocess.Popen([sys.executable, "-c", "import common, time; "
                               f"lock = common.prepare_out({str(out)!r}, new_run=False); "
                               "print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(common.__file__))
    try:  # another run is writing there: refused, and its lock and files stay
        assert holder.stdout.readline().strip() == "held"
        assert in_process(E.main, "--dry-run", "--overwrite", "--out", out) == 2
        assert "another run is using --out" in capsys.readouterr().err
        assert (out / ".lock").exists()
    finally:
        holder.kill()
        holder.wait()
    assert in_process(E.main, "--lr", "1e9", "--overwrite", "--out", out) == 2  # fails
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before  # put back whole
    assert in_process(E.main, "--dry-run", "--shape", "sine", "--overwrite", "--out", out) == 0
    assert sorted(os.listdir(out)) == sorted(set(before) - {"p25.png"})  # no earlier file left
    assert load_module(out / "generator.pt2")(torch.randn(50, 2))[:, 0].abs().max() <= 5


def test_time_budget_ends_the_run_with_every_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(E.main, "--time-budget", 3, "--epochs", 10**6, "--patience", 10**6,
                      "--out", out) == 0
    printed = capsys.readouterr().out
    assert "--time-budget 3 s spent: stopped after epoch" in printed
    assert {"generator.pt2", "generator_weights.pt", "losses.png", "new_samples.png"} <= \
        set(os.listdir(out))
    assert 1 <= len(rows(out / "metrics.csv")) < 10**6


def test_seed_repeats_a_run_and_another_seed_changes_it(tmp_path):
    def train(name, seed):
        assert in_process(E.main, "--epochs", 2, "--seed", seed, "--out", tmp_path / name) == 0
        return tmp_path / name
    helpers.assert_seed_repeats_a_run(train)


def test_keep_best_saves_the_best_epochs_generator(tmp_path, capsys):
    """The saved generator of --keep best is the one the best row of metrics.csv measured: the
    same run stopped at that epoch with --keep last saves the same weights."""
    flags = ["--epochs", 12, "--no-anneal", "--seed", 3]
    assert in_process(E.main, *flags, "--keep", "best", "--out", tmp_path / "best") == 0
    history = rows(tmp_path / "best" / "metrics.csv")
    best = int(history[-1]["best_epoch"])
    gdif = [float(r["mse"]) ** 0.5 / E.make_train_data("exponential", 2048)[:, 1].std().item() +
            float(r["ks"]) for r in history]  # what --stop-on mse-ks ranks
    assert best == 1 + gdif.index(min(gdif)) and best < 12, history
    assert f"keeping the best generator: epoch {best} (MSE " in capsys.readouterr().out
    assert in_process(E.main, *flags[:1], best, *flags[2:], "--keep", "last",
                      "--out", tmp_path / "last") == 0
    kept, last = (torch.load(tmp_path / name / "generator_weights.pt", weights_only=True)
                  ["state_dict"] for name in ("best", "last"))
    assert all(torch.equal(kept[k], last[k]) for k in kept)


@pytest.mark.parametrize("stop_on", ["mse-ks", "batch-mse"])
def test_stop_on_ends_the_run_after_patience_epochs_without_a_better_generator(tmp_path,
                                                                              stop_on, capsys):
    out = tmp_path / "run"
    assert in_process(E.main, "--stop-on", stop_on, "--patience", 2, "--epochs", 200,
                      "--out", out) == 0
    history = rows(out / "metrics.csv")
    assert len(history) == int(history[-1]["best_epoch"]) + 2 < 200
    assert f"early stop at epoch {len(history)}" in capsys.readouterr().out


@pytest.mark.parametrize("anneal, factors", [(True, [1, 0.75, 0.5, 0.25]), (False, [1] * 4)])
def test_anneal_lowers_the_learning_rate_to_zero_over_the_epochs(tmp_path, monkeypatch, anneal,
                                                                  factors):
    used = []  # the learning rate of every Adam step
    step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (
        used.append(self.param_groups[0]["lr"]), step(self, *a, **k))[1])
    flag = "--anneal" if anneal else "--no-anneal"
    assert in_process(E.main, flag, "--epochs", 4, "--observations", 512, "--lr", 0.004,
                      "--out", tmp_path / "run") == 0
    per_epoch = [used[i] for i in range(0, len(used), len(used) // 4)]  # 2 x 2 steps an epoch
    assert per_epoch == pytest.approx([0.004 * f for f in factors])


@pytest.mark.parametrize("shape, y_range", [("cosine", (-1, 1)), ("quadratic", (0, 25))])
def test_other_shapes_train_export_and_generate_in_their_range(tmp_path, capsys, shape,
                                                               y_range):
    out = tmp_path / "run"
    assert in_process(E.main, "--shape", shape, "--epochs", 2, "--out", out) == 0
    xy = load_module(out / "generator.pt2")(torch.randn(500, 2))
    assert xy[:, 0].abs().max() <= 5 and y_range[0] <= xy[:, 1].min() <= xy[:, 1].max() <= \
        y_range[1]
    assert in_process(E.main, "--generate", out / "generator_weights.pt") == 0
    assert f"quality against --shape {shape}" in capsys.readouterr().out
    assert (out / "generated" / "samples.csv").exists()  # a new folder beside the weights


def test_generate_without_out_never_replaces_earlier_samples(trained, capsys):
    weights = trained[0] / "generator_weights.pt"
    for folder in ("generated", "generated-2"):
        assert in_process(E.main, "--generate", weights, "--num-samples", 7) == 0
        assert len(rows(trained[0] / folder / "samples.csv")) == 7
    assert sorted(f for f in os.listdir(trained[0]) if f.startswith("gen")) == \
        ["generated", "generated-2", "generator.pt2", "generator_weights.pt"]


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
    assert re.findall(r"^(\S.*):$", text, re.M) == ["options", "the tutorial's inputs",
                                                   "data and speed", "additions", "evaluation",
                                                   "run control"]  # the layout of every script
    assert text.split("the tutorial's inputs:\n")[1].startswith("  --tutorial ")
    control = " ".join(text.split("run control:\n")[1].split())
    assert "--seed SEED random seed, printed at the start (the tutorial's: " in control
    assert "--time-budget SECONDS" in control and "auto: cuda, then mps, then cpu" in text
    assert all(a.help for a in parser._actions)  # every flag says what it does


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
    "missing.pt": "does not exist", ".": "is not a file", "{text}": "cannot load",
    "{pt2}": "generator_weights.pt",
    "{other}": "pass it to sequence_gan.py", "{circle}": "--shape", "{scale}": "--scale",
    "{unscaled}": "do not fit", "{misfit}": "do not fit", "{nostate}": "do not fit",
    "{nosettings}": "--shape"}
CASES = [(argv, argv[0]) for argv in BAD] + [(["--generate", f], w) for f, w in GENERATE.items()]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(map(str, a)) for a, _ in CASES])
def test_bad_input_is_one_error_line(argv, words, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = in_process(E.main, *[str(a).format(**junk) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert words in lines[0], (words, lines[0])  # the flag or file it is about
    assert not os.path.exists(tmp_path / "outputs")  # nothing trained, no --out folder made
