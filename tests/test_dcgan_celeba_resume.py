"""dcgan_celeba.py: Ctrl-C, SIGTERM to the whole process group (also while the images are being
decoded) and kill -9 leave a checkpoint or nothing, and `--resume OUT/checkpoint.pt` alone
continues that run exactly where it stopped: at an epoch's end, and mid-epoch."""
import hashlib
import os
import shutil
import signal

import torch

import dcgan_celeba
from helpers import CELEBA_SMALL as SMALL, celeba, ckpt, make_image_folder, rows, signal_at

LINES = {"PYTHONUNBUFFERED": "1"}  # each line as it is printed; the threads of this process:
# a run compared bit for bit with one in this process must sum in the same order
QUIET = {**LINES, "OMP_NUM_THREADS": "1"}  # tiny networks: one thread, the cores are shared



def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_same_run(a, b, grids=True):
    """Two checkpoints of the same training: every part equal, bit for bit (and the img_list
    grids, unless a stop or an earlier --epochs added one: the tutorial's last-epoch grid)."""
    for part in ("netG", "netD", "G_ema"):  # G_ema: G's moving average, absent under --ema 0
        assert (part in a) == (part in b), part
        assert_same_weights(a.get(part, {}), b.get(part, {}))
    for part in ("optimizerG", "optimizerD"):
        for k, state in a[part]["state"].items():
            assert_same_weights(state, b[part]["state"][k])
    assert a["D_losses"] == b["D_losses"] and a["G_losses"] == b["G_losses"]
    assert a["iters"] == b["iters"] and (a["epoch"], a["batch"]) == (b["epoch"], b["batch"])
    if grids:
        assert len(a["img_list"]) == len(b["img_list"])
        for x, y in zip(a["img_list"], b["img_list"]):
            assert torch.equal(x, y)


def snapshot(root):
    """Every folder (mtime) and file (size, mtime, content hash) under root."""
    seen = {}
    for folder, _, files in os.walk(root):
        seen[folder] = os.stat(folder).st_mtime_ns
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                seen[path] = (os.stat(path).st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
    return seen


def test_ctrl_c_saves_exits_130_and_the_printed_hint_resumes_to_an_uninterrupted_run(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0, "--log-every", 1]
    out = tmp_path / "stopped"
    p = signal_at("dcgan_celeba.py", *flags, "--out", out, "--epochs", 500, env=LINES,
                  at="[1/500][1/")  # training under way in its second epoch
    err = p.stderr
    assert p.returncode == 130, err
    assert "Traceback" not in err and "SIGINT" in err
    hint = err.split("continue with: ")[1].split()
    assert hint[0] == "python" and hint[2:] == ["--resume", str(out / "checkpoint.pt")]
    for name in ("losses.png", "real_vs_fake.png", "generator_weights.pt"):  # the run so far
        assert os.path.getsize(out / name) > 0, name
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] >= 6 and c["batch"] > 0  # mid-epoch
    assert len(c["D_losses"]) == c["iters"] == 4 * c["epoch"] + c["batch"]
    done = c["epoch"] + 1  # finish the epoch it stopped in: the hint, plus --epochs
    assert celeba(*hint[2:], "--epochs", done) == 0
    ref = tmp_path / "ref"
    assert celeba(*flags, "--out", ref, "--epochs", done) == 0
    a, b = ckpt(out / "checkpoint.pt"), ckpt(ref / "checkpoint.pt")
    assert_same_run(a, b, grids=False)  # the stop drew one more
    assert a["iters"] == 4 * done


def test_sigterm_to_the_process_group_with_dataloader_workers_saves_and_exits_130(tmp_path):
    """What docker stop, systemd and Slurm do: SIGTERM to every process, workers included."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    out = tmp_path / "out"
    p = signal_at("dcgan_celeba.py", "--dataroot", data, *SMALL, "--batch-size", 4,
                  "--no-decode-once", "--workers", 2, "--log-every", 1, "--epochs", 500,
                  "--out", out, env=QUIET, at="[1/500][1/", sig=signal.SIGTERM)
    err = p.stderr
    assert p.returncode == 130, err
    assert "Traceback" not in err and "killed by signal" not in err and "SIGTERM" in err
    assert "continue with: python" in err
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] >= 5


def test_sigterm_while_the_images_are_decoded_exits_130_and_writes_nothing(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=768, size=64)
    before = snapshot(data)
    out = tmp_path / "out"
    p = signal_at("dcgan_celeba.py", "--dataroot", data, "--workers", 2, "--out", out,
                  "--device", "cpu", env=QUIET, at="Random Seed:", sig=signal.SIGTERM)
    err = p.stderr  # the decoding had started
    assert p.returncode == 130, err
    assert "Traceback" not in err and "decoding" in err, err
    assert snapshot(data) == before  # nothing written into --dataroot
    assert not out.exists()  # nothing trained, nothing left


def test_kill_9_at_any_moment_leaves_a_checkpoint_that_resumes_exactly(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0]
    out = tmp_path / "out"
    signal_at("dcgan_celeba.py", *flags, "--log-every", 1, "--checkpoint-every", 1,
              "--epochs", 500, "--out", out, env=LINES, at="[3/500]",  # checkpoints written
              sig=signal.SIGKILL)  # every iteration by now; no handler runs, maybe mid-write
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] >= 5
    done = c["epoch"] + 1
    assert celeba("--resume", out / "checkpoint.pt", "--epochs", done) == 0
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]  # stale temp files gone
    ref = tmp_path / "ref"
    assert celeba(*flags, "--out", ref, "--epochs", done) == 0
    assert_same_run(ckpt(out / "checkpoint.pt"), ckpt(ref / "checkpoint.pt"))


def test_checkpoint_every_and_epoch_boundary_resume_is_exact(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0, "--log-every", 1]
    a, b = tmp_path / "a", tmp_path / "b"
    assert celeba(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert celeba(*flags, "--out", b, "--epochs", 1) == 0
    assert celeba("--resume", b / "checkpoint.pt", "--epochs", 2) == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    assert_same_run(ca, cb, grids=False)  # --epochs 1 drew its last epoch's grid
    assert len(ca["D_losses"]) == 4
    with open(b / "metrics.csv") as f:  # appended, one header
        assert f.read().count("loss_d") == 1
    assert [r["loss_d"] for r in rows(a / "metrics.csv")] == \
        [r["loss_d"] for r in rows(b / "metrics.csv")]


def test_a_mid_epoch_checkpoint_resumes_exactly_and_generates_like_its_weights_file(
        tmp_path, monkeypatch):
    """The checkpoint --checkpoint-every wrote in the middle of an epoch (copied, with the
    whole --out, as it was then) continues to the uninterrupted run's end, bit for bit; its
    checkpoint and its weights file give --generate the same samples."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0, "--log-every", 1,
             "--epochs", 2, "--checkpoint-every", 3]
    a, mid = tmp_path / "a", tmp_path / "mid"
    save = dcgan_celeba.atomic_save

    def keep_iteration_6(obj, path):
        save(obj, path)
        if obj["iters"] == 6:  # epoch 1, batch 2 of 4
            shutil.copytree(a, mid)
    monkeypatch.setattr(dcgan_celeba, "atomic_save", keep_iteration_6)
    assert celeba(*flags, "--out", a) == 0
    monkeypatch.undo()
    c = ckpt(mid / "checkpoint.pt")
    assert (c["epoch"], c["batch"], c["iters"]) == (1, 2, 6)
    assert celeba("--resume", mid / "checkpoint.pt") == 0
    ca = ckpt(a / "checkpoint.pt")
    assert_same_run(ca, ckpt(mid / "checkpoint.pt"))
    drop = lambda table: [{k: v for k, v in r.items() if k != "images_per_sec"}  # noqa: E731
                          for r in table]
    assert drop(rows(a / "metrics.csv")) == drop(rows(mid / "metrics.csv"))
    # generator_weights.pt holds G's moving average (--ema), its batch-norm statistics
    # recomputed: not G's last weights
    saved = ckpt(a / "generator_weights.pt")["state_dict"]
    weights = [k for k in ca["netG"] if k.endswith("weight")]
    assert weights and all(torch.equal(saved[k], ca["G_ema"][k]) for k in weights)
    assert not any(torch.equal(saved[k], ca["netG"][k]) for k in weights)
    assert not torch.equal(saved["main.1.running_mean"], ca["netG"]["main.1.running_mean"])
    # --generate draws the same samples from the resumed run's weights as from the other's
    samples = []
    for run in (a, mid):
        assert celeba("--generate", run / "generator_weights.pt") == 0
        samples.append(torch.load(run / "generated" / "generated.pt", weights_only=True))
    assert torch.equal(*samples)


def test_resume_takes_the_runs_settings_and_refuses_changes_that_would_break_it(
        tmp_path, capsys, monkeypatch):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "a"
    assert celeba("--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0,
                      "--dry-run", "--out", out, "--seed", 2**63 - 1) == 0
    c = out / "checkpoint.pt"
    capsys.readouterr()
    for flags, words in [(["--image-size", 64], ["--image-size 64", "(32)"]),
                         (["--ngf", 16], ["--ngf 16", "(8)"]),
                         (["--batch-size", 2], ["--batch-size 2", "(4)"]),
                         (["--loss", "wgan"], ["--loss wgan", "(bce)"]),
                         (["--beta2", 0.5], ["--beta2 0.5", "(0.999)"]),
                         (["--out", tmp_path / "elsewhere"], ["--out", "differs"])]:
        assert celeba("--resume", c, *flags) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words), (flags, err)
    assert not (tmp_path / "elsewhere").exists()
    # a second run into the same --out is refused, not overwritten
    assert celeba("--dataroot", data, "--out", out, "--workers", 0) == 2
    assert "--resume" in capsys.readouterr().err
    # a checkpoint whose weights do not fit the networks it names
    broken = ckpt(c)
    del broken["netG"]["main.0.weight"]
    os.makedirs(tmp_path / "broken")
    torch.save(broken, tmp_path / "broken" / "checkpoint.pt")
    assert celeba("--resume", tmp_path / "broken" / "checkpoint.pt") == 2
    assert "does not fit" in capsys.readouterr().err
    # --resume alone, from another folder: the data, sizes and --out come from the checkpoint
    monkeypatch.chdir(tmp_path / "celeba")
    assert celeba("--resume", c, "--epochs", 2, "--workers", 0, "--log-every", 1) == 0
    printed = capsys.readouterr().out
    assert "--image-size 32" in printed and "--seed 9223372036854775807" in printed
    assert ckpt(c)["epoch"] == 2


def test_resume_of_another_scripts_checkpoint_is_refused(tmp_path, capsys):
    foreign = tmp_path / "checkpoint.pt"
    torch.save({"script": "dcgan_mnist", "args": {}}, foreign)
    assert celeba("--resume", foreign) == 2
    assert "dcgan_mnist" in capsys.readouterr().err


def test_sigterm_while_the_last_files_are_written_finishes_them_and_exits_130(tmp_path):
    """Training done, the figures and the export under way: they are finished, and the exit
    status still says the run was stopped."""
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    p = signal_at("dcgan_celeba.py", "--dataroot", data, *SMALL, "--batch-size", 4,
                  "--epochs", 1, "--log-every", 1, "--out", out, env=LINES, at="[0/1][1/2]",
                  sig=signal.SIGTERM)  # the last progress line: what follows is the files
    assert p.returncode == 130, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    for name in ("losses.png", "real_vs_fake.png", "generator.pt2", "generator_weights.pt"):
        assert os.path.getsize(out / name) > 0, name
    assert ckpt(out / "checkpoint.pt")["epoch"] == 1
