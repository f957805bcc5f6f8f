"""sequence_gan.py: training, the book's helpers and train_D_G, --generate, --tutorial, Ctrl-C
and bad input. The script trains in subprocesses with real flags (main() sets torch's thread
count); its functions are unit-tested on inputs whose answers are known."""
import os
import signal
import time

import pytest
import torch
import torch.nn as nn

import common
import sequence_gan as S
from helpers import in_process, rows, script, start


# -- end to end --------------------------------------------------------------------------------
def test_trains_multiples_of_3_and_generates_from_the_files_settings(tmp_path, capsys):
    out = tmp_path / "run"
    p = script("sequence_gan.py", "--multiple", 3, "--iterations", 300, "--out", out)
    assert p.stdout.startswith("arguments: python sequence_gan.py --multiple 3 --iterations 300")
    assert "device: cpu" in p.stdout and "steps/s, ETA" in p.stdout
    history = rows(out / "metrics.csv")
    assert int(history[-1]["iteration"]) == 300 and "epoch" not in history[0]
    assert float(history[-1]["validity"]) > float(history[0]["validity"])
    assert {"generator.pt2", "losses.png", "histogram.png"} <= set(os.listdir(out))

    # --generate: the multiple comes from the file (--multiple 5 here is not what it learned)
    gen = tmp_path / "gen"
    p = script("sequence_gan.py", "--generate", out / "generator.pt2", "--multiple", 5,
               "--num-samples", 3000, "--out", gen)
    nums = [int(r["number"]) for r in rows(gen / "samples.csv")]
    assert len(nums) == 3000 and all(0 <= n <= 99 for n in nums)
    # 300 iterations are enough for (nearly) only multiples of 3 and every one of the 34
    assert sum(n % 3 == 0 for n in nums) / len(nums) > 0.98
    assert len({n for n in nums if n % 3 == 0}) == 34
    assert (gen / "generated.png").stat().st_size > 0 and "multiples of 3" in p.stdout
    # a second --generate into the same folder is refused (in-process: nothing trains here)
    assert common.run(S.main, ["--generate", str(out / "generator.pt2"), "--out", str(gen)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert len(rows(gen / "samples.csv")) == 3000


def test_ctrl_c_saves_the_generator_and_exits_130_also_with_the_books_settings(tmp_path):
    p = start("sequence_gan.py", "--tutorial", "--iterations", 10**6, "--patience", 10**6,
              "--eval-every", 20, "--device", "cpu", "--out", tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        path = tmp_path / "metrics.csv"
        if path.exists() and len(path.read_text().splitlines()) > 3:
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    # the book's G (ReLU), and its distance rule with patience 800 did not stop it
    assert "--tutorial" in out.splitlines()[0] and "ReLU()" in out and "Softmax" not in out
    iterations = [int(r["iteration"]) for r in rows(tmp_path / "metrics.csv")]
    assert iterations[:3] == [1, 21, 41]
    G = torch.export.load(str(tmp_path / "generator.pt2")).module()
    assert G(torch.randn(3, 100)).shape == (3, 100)


# -- the book's settings, helpers and train_D_G ------------------------------------------------
def test_tutorial_gives_the_books_settings_and_given_flags_win():
    _, args = S.parse_args(["--tutorial"])
    assert (args.iterations, args.batch_size, args.lr, args.anneal, args.output,
            args.feature_matching, args.keep, args.patience, args.stop_on) == \
        (10000, 10, 0.0005, False, "relu", 0.0, "last", 800, "distance")
    _, args = S.parse_args(["--tutorial", "--batch-size", "64"])
    assert args.batch_size == 64 and args.lr == 0.0005
    _, args = S.parse_args([])
    assert (args.iterations, args.batch_size, args.output, args.out) == \
        (1000, 256, "softmax", "outputs/sequence_gan")


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


def test_networks_and_train_D_G_follow_the_book():
    torch.manual_seed(0)
    D, G = S.make_D(), S.make_G("relu")
    assert [(l.in_features, l.out_features) for l in D if isinstance(l, nn.Linear)] == [(100, 1)]
    assert isinstance(G[0], nn.Linear) and isinstance(G[1], nn.ReLU)  # the book's G, by flag
    assert torch.allclose(S.make_G()(torch.randn(4, 100)).sum(1), torch.ones(4))  # softmax
    optimD, optimG = (torch.optim.Adam(m.parameters(), lr=0.01) for m in (D, G))
    d0, g0 = [p.clone() for p in D.parameters()], [p.clone() for p in G.parameters()]
    generated_data, dloss, gloss, d_x, d_gz = S.train_D_G(D, G, nn.BCEWithLogitsLoss(), optimD,
                                                          optimG, 10, 5, 100.0)
    assert generated_data.shape == (10, 100) and not generated_data.requires_grad
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert dloss > 0 and gloss > 0 and 0 < d_x < 1 and 0 < d_gz < 1


def test_sample_numbers_in_chunks_gives_every_number():
    G = S.make_G()
    nums = S.sample_numbers(G, 25001, chunk=10000)
    assert nums.shape == (25001,) and nums.dtype == torch.int64
    assert 0 <= nums.min() <= nums.max() < 100


# -- bad input: one `error:` line, exit status 2, nothing written -------------------------------
@pytest.fixture
def junk(tmp_path):
    text = tmp_path / "notes.pt2"
    text.write_text("not a model")
    other = common.export_generator(nn.Linear(2, 2), (torch.randn(2, 2),),
                                    str(tmp_path / "other.pt2"), "exponential_gan", {})
    wrong = common.export_generator(nn.Linear(3, 3), (torch.randn(2, 3),),
                                    str(tmp_path / "wrong.pt2"), "sequence_gan",
                                    {"multiple": 5, "output": "softmax"})
    return dict(text=text, other=other, wrong=wrong)


BAD = [["--iterations", 0], ["--iterations", 1e9], ["--epochs", 5], ["--batch-size", 0],
       ["--batch-size", 1e6], ["--lr", 0], ["--lr", "inf"], ["--multiple", 0],
       ["--multiple", 100], ["--multiple", 2.5], ["--feature-matching", -1],
       ["--feature-matching", "nan"], ["--eval-samples", 1e6], ["--num-samples", 1e9],
       ["--seed", 2**64], ["--device", "cuda"] if not torch.cuda.is_available() else ["--lr", -1],
       ["--generate", "missing.pt2"], ["--generate", "{text}"], ["--generate", "{other}"],
       ["--generate", "{wrong}"], ["--out", "{text}"]]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(map(str, a)) for a in BAD])
def test_bad_input_is_one_error_line(argv, junk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(a).format(**junk) for a in argv]
    rc = in_process(S.main, *argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert not os.path.exists(tmp_path / "outputs")  # nothing trained, nothing written
