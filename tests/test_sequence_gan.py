"""sequence_gan.py through its flags and files: training, --generate, signals, bad input."""
import os
import re
import signal
import time

import matplotlib.figure
import pytest
import torch
import torch.nn as nn

import common
import sequence_gan as S
import helpers
from helpers import in_process, rows, script, start


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
def test_trains_multiples_of_3_and_generates_from_the_files_settings(tmp_path, capsys):
    out = tmp_path / "run"
    p = script("sequence_gan.py", "--multiple", 3, "--iterations", 300, "--out", out)
    assert p.stdout.startswith("arguments: python sequence_gan.py --multiple 3 --iterations 300")
    assert "device: cpu" in p.stdout and "steps/s, ETA 0:00:" in p.stdout
    assert "D: Sequential(\n  (0): Linear(in_features=100, out_features=1, bias=True)\n)" \
        in p.stdout and "(1): Softmax(dim=-1)" in p.stdout
    history = rows(out / "metrics.csv")
    assert int(history[-1]["iteration"]) == 300 and "epoch" not in history[0]
    assert float(history[-1]["validity"]) > float(history[0]["validity"])
    assert {"generator.pt2", "generator_weights.pt", "losses.png", "histogram.png"} <= \
        set(os.listdir(out))

    # --generate reads generator_weights.pt: the multiple comes from the file (--multiple 5
    # here is not what it learned), and the `arguments:` line names only the flags that act
    gen = tmp_path / "gen"
    assert in_process(S.main, "--generate", out / "generator_weights.pt", "--multiple", 5,
                      "--num-samples", 3000, "--out", gen) == 0
    printed = capsys.readouterr().out
    first = printed.splitlines()[0]
    assert "--num-samples 3000" in first and "--multiple" not in first and "--lr" not in first
    nums = [int(r["number"]) for r in rows(gen / "samples.csv")]
    assert len(nums) == 3000 and all(0 <= n <= 99 for n in nums)
    # 300 iterations are enough for (nearly) only multiples of 3 and every one of the 34
    assert sum(n % 3 == 0 for n in nums) / len(nums) > 0.98
    assert len({n for n in nums if n % 3 == 0}) == 34
    assert (gen / "generated.png").stat().st_size > 0 and "multiples of 3" in printed
    # ... the numbers of the generator.pt2 that other projects load, for the same noise
    torch.manual_seed(0)
    G = torch.export.load(str(out / "generator.pt2")).module()
    assert nums == S.data_to_num(G(torch.randn(3000, 100))).tolist()
    # a second --generate into the same folder is refused (in-process: nothing trains here)
    argv = ["--generate", str(out / "generator_weights.pt"), "--out", str(gen)]
    assert common.run(S.main, argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert len(rows(gen / "samples.csv")) == 3000


def test_histogram_and_figures_are_readable(tmp_path, figures):
    """Labelled axes everywhere, and the histogram's legend above the bars (not on 85-95)."""
    assert in_process(S.main, "--dry-run", "--out", tmp_path / "run") == 0
    assert in_process(S.main, "--generate", tmp_path / "run" / "generator_weights.pt",
                      "--num-samples", 50, "--out", tmp_path / "gen") == 0
    assert set(figures) == {"losses.png", "histogram.png", "generated.png"}
    for fig in figures.values():
        assert_readable(fig)
    ax = figures["histogram.png"].axes[0]
    assert ax.get_legend().get_window_extent().y0 > ax.get_window_extent().y1  # above


@pytest.mark.parametrize("gap", [0.2, 0.5])
def test_ctrl_c_then_sigterm_still_save_the_generator_and_exit_130(tmp_path, gap):
    """Ctrl-C stops the book's run; a SIGTERM `gap` s later (an impatient `timeout`) waits for
    the files: both generator files load, no stale lock is left."""
    p = start("sequence_gan.py", "--tutorial", "--iterations", 10**6, "--patience", 10**6,
              "--eval-every", 20, "--device", "cpu", "--out", tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        path = tmp_path / "metrics.csv"
        if path.exists() and len(path.read_text().splitlines()) > 3:
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    time.sleep(gap)
    os.killpg(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err and "SIGTERM" in err and "Traceback" not in err
    # the book's G (ReLU), and its distance rule with patience 800 did not stop it
    assert "--tutorial" in out.splitlines()[0] and "ReLU()" in out and "Softmax" not in out
    iterations = [int(r["iteration"]) for r in rows(tmp_path / "metrics.csv")]
    assert iterations[:3] == [1, 21, 41]
    G = torch.export.load(str(tmp_path / "generator.pt2")).module()
    assert G(torch.randn(3, 100)).shape == (3, 100)
    assert S.load_G(str(tmp_path / "generator_weights.pt"))[1] == 5
    assert (tmp_path / "histogram.png").exists() and not (tmp_path / ".lock").exists()


def test_seed_repeats_a_run_and_another_seed_changes_it(tmp_path):
    def train(name, seed):
        assert in_process(S.main, "--iterations", 30, "--eval-every", 10, "--seed", seed,
                          "--out", tmp_path / name) == 0
        return tmp_path / name
    helpers.assert_seed_repeats_a_run(train)


def test_time_budget_ends_the_run_with_every_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(S.main, "--time-budget", 3, "--iterations", 10**6, "--patience", 10**6,
                      "--out", out) == 0
    assert "--time-budget 3 s spent: stopped after iteration" in capsys.readouterr().out
    assert {"generator.pt2", "generator_weights.pt", "losses.png", "histogram.png"} <= \
        set(os.listdir(out))


def test_generate_without_out_writes_a_new_folder_beside_the_weights(tmp_path, capsys):
    assert in_process(S.main, "--dry-run", "--out", tmp_path) == 0
    for folder in ("generated", "generated-2"):  # never over the earlier samples
        assert in_process(S.main, "--generate", tmp_path / "generator_weights.pt",
                          "--num-samples", 9) == 0
        assert len(rows(tmp_path / folder / "samples.csv")) == 9


# -- the book's settings, helpers and train_D_G ------------------------------------------------
def test_tutorial_gives_the_books_settings_and_given_flags_win():
    _, args = S.parse_args(["--tutorial"])
    assert (args.iterations, args.batch_size, args.lr, args.anneal, args.output,
            args.feature_matching, args.keep, args.patience, args.stop_on) == \
        (10000, 10, 0.0005, False, "relu", 0.0, "last", 800, "distance")
    _, args = S.parse_args(["--tutorial", "--batch-size", "64"])
    assert args.batch_size == 64 and args.lr == 0.0005
    parser, args = S.parse_args([])
    assert (args.iterations, args.batch_size, args.output, args.out) == \
        (1000, 256, "softmax", "outputs/sequence_gan")
    # --help: the first group is the tutorial's inputs, and --tutorial comes first in it
    text = parser.format_help()
    assert re.findall(r"^(\S.*):$", text, re.M) == ["options", "the tutorial's inputs",
                                                   "data and speed", "additions", "evaluation",
                                                   "run control"]  # the layout of every script
    assert text.split("the tutorial's inputs:\n")[1].startswith("  --tutorial ")
    control = " ".join(text.split("run control:\n")[1].split())
    assert "--seed SEED random seed, printed at the start (the tutorial's: " in control
    assert "--time-budget SECONDS" in control and "auto: cuda, then mps, then cpu" in text
    assert all(a.help for a in parser._actions)  # every flag says what it does


def test_onehot_helpers_and_batches():
    assert S.onehot_encoder(1, 5).tolist() == [0, 1, 0, 0, 0]
    assert S.onehot_to_int(S.int_to_onehot(75)) == 75
    for multiple in (5, 3, 7, 99):
        seq = S.gen_sequence(1000, multiple)
        assert seq.shape == (1000,) and (seq % multiple == 0).all() and seq.max() <= 99
    assert set(S.gen_sequence(2000, 5).tolist()) == set(range(0, 100, 5))  # all 20 come up
    batch = S.gen_batch(10, 5)
    assert batch.shape == (10, 100) and torch.equal(batch.sum(1), torch.ones(10))
    assert (S.data_to_num(batch) % 5 == 0).all()


def test_distance_and_quality_on_known_numbers():
    onehots = lambda nums: nn.functional.one_hot(torch.tensor(nums), 100).float()
    assert S.distance(onehots([0, 5, 95]), 5) == 0
    assert S.distance(onehots([1, 7, 10]), 5) == pytest.approx((1 + 4 + 0) / 3)
    balanced = torch.arange(0, 100, 5).repeat(50)  # every multiple of 5 exactly 50 times
    assert S.quality(balanced, 5) == dict(validity=1.0, coverage=20, values=20, balance=1.0)
    skewed = torch.cat([balanced, torch.full((50,), 25), torch.tensor([1, 2, 3, 4])])
    q = S.quality(skewed, 5)
    assert q["validity"] == pytest.approx(1050 / 1054) and q["balance"] == pytest.approx(2.0)
    q = S.quality(balanced[balanced != 40], 5)
    assert q["coverage"] == 19 and q["balance"] == float("inf")
    assert S.quality(torch.arange(0, 99, 7), 7)["values"] == 15


def test_train_D_G_trains_both_networks():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(100, 1))  # the book's D and G, with logits for D
    G = nn.Sequential(nn.Linear(100, 100), nn.ReLU())
    optimD, optimG = (torch.optim.Adam(m.parameters(), lr=0.01) for m in (D, G))
    d0, g0 = [p.clone() for p in D.parameters()], [p.clone() for p in G.parameters()]
    generated_data, dloss, gloss, d_x, d_gz = S.train_D_G(D, G, nn.BCEWithLogitsLoss(), optimD,
                                                          optimG, 10, 5, 100.0)
    assert generated_data.shape == (10, 100) and not generated_data.requires_grad
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert dloss > 0 and gloss > 0 and 0 < d_x < 1 and 0 < d_gz < 1


def test_sample_numbers_in_chunks_gives_every_number():
    """With G the identity, the argmax of standard normal noise is uniform over 0-99: 25,001
    numbers drawn in chunks of 10,000 hold every one, and no chunk repeats another's noise."""
    G = nn.Linear(100, 100)
    with torch.no_grad():
        G.weight.copy_(torch.eye(100))
        G.bias.zero_()
    torch.manual_seed(0)
    nums = S.sample_numbers(G, 25001, chunk=10000)
    assert nums.shape == (25001,) and nums.dtype == torch.int64
    assert set(nums.tolist()) == set(range(100))
    assert not torch.equal(nums[:10000], nums[10000:20000])
    assert torch.bincount(nums, minlength=100).max() < 2 * 25001 / 100  # none piled up


# -- bad input: one `error:` line, exit status 2, nothing written -------------------------------
def weights_file(path, script, settings, state_dict=None):
    """A generator_weights.pt as save_generator writes it, with the contents a test needs."""
    state_dict = nn.Linear(100, 100).state_dict() if state_dict is None else state_dict
    torch.save({"script": script, "settings": settings, "state_dict": state_dict}, path)
    return path


@pytest.fixture(scope="module")
def junk(tmp_path_factory):
    """Files --generate must refuse: not a generator, a .pt2 program (not the weights),
    another script's weights, and generator_weights.pt files with tampered contents."""
    tmp_path = tmp_path_factory.mktemp("junk")
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    ok = {"multiple": 5, "output": "softmax"}
    common.save_generator(nn.Sequential(nn.Linear(100, 100), nn.Softmax(dim=-1)),
                          (torch.randn(2, 100),), tmp_path, "sequence_gan", ok)
    return dict(
        text=text, pt2=tmp_path / "generator.pt2",
        other=weights_file(tmp_path / "other.pt", "exponential_gan", ok),
        huge=weights_file(tmp_path / "huge.pt", "sequence_gan", {**ok, "multiple": 10**12}),
        half=weights_file(tmp_path / "half.pt", "sequence_gan", {**ok, "multiple": 2.5}),
        output=weights_file(tmp_path / "output.pt", "sequence_gan", {**ok, "output": "gelu"}),
        misfit=weights_file(tmp_path / "misfit.pt", "sequence_gan", ok,
                            nn.Linear(3, 3).state_dict()),
        nostate=weights_file(tmp_path / "nostate.pt", "sequence_gan", ok, "weights"))


BAD = [["--iterations", 0], ["--iterations", 1e9], ["--epochs", 5], ["--batch-size", 0],
       ["--batch-size", 1e6], ["--lr", 0], ["--lr", "inf"], ["--multiple", 0],
       ["--multiple", 100], ["--multiple", 2.5], ["--feature-matching", -1],
       ["--feature-matching", "nan"], ["--eval-samples", 1e6], ["--num-samples", 1e9],
       ["--seed", 2**64], ["--device", "cuda"] if not torch.cuda.is_available() else ["--lr", -1],
       ["--out", "{text}"]]
GENERATE = {  # --generate FILE -> what its one error line says
    "missing.pt": "does not exist", ".": "is not a file", "{text}": "cannot load",
    "{pt2}": "generator_weights.pt",
    "{other}": "pass it to exponential_gan.py", "{huge}": "--multiple", "{half}": "--multiple",
    "{output}": "--output", "{misfit}": "do not fit", "{nostate}": "do not fit"}
CASES = [(argv, argv[0]) for argv in BAD] + [(["--generate", f], w) for f, w in GENERATE.items()]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(map(str, a)) for a, _ in CASES])
def test_bad_input_is_one_error_line(argv, words, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = in_process(S.main, *[str(a).format(**junk) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert words in lines[0], (words, lines[0])  # the flag or file it is about
    assert not os.path.exists(tmp_path / "outputs")  # nothing trained, no --out folder made
