"""dcgan_celeba.py: Ctrl-C, SIGTERM to the whole process group and kill -9 leave a checkpoint,
and `--resume OUT/checkpoint.pt` alone continues that run exactly where it stopped."""
import os
import signal

import torch

import dcgan_celeba
import helpers
from helpers import assert_user_error, ckpt, make_image_folder, start

SMALL = ["--image-size", 32, "--ngf", 8, "--ndf", 8]


def in_process(*args):
    return helpers.in_process(dcgan_celeba.main, *args)


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def wait_for(p, prefix):
    for line in p.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(p.stderr.read()[-3000:])


def test_ctrl_c_saves_exits_130_and_the_printed_hint_resumes_to_an_uninterrupted_run(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=24, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0, "--log-every", 1]
    out = tmp_path / "stopped"
    p = start("dcgan_celeba.py", *flags, "--out", out, "--epochs", 500,
              env={"PYTHONUNBUFFERED": "1"})
    try:
        wait_for(p, "[1/500][2/")  # training under way in its second epoch
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    hint = err.split("Continue with: ")[1].split()
    assert hint[2:] == ["--resume", str(out / "checkpoint.pt")]
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] >= 9 and c["batch"] > 0  # mid-epoch
    done = c["epoch"] + 1  # finish the epoch it stopped in: the hint, plus --epochs
    assert in_process(*hint[2:], "--epochs", done) == 0
    ref = tmp_path / "ref"
    assert in_process(*flags, "--out", ref, "--epochs", done) == 0
    a, b = ckpt(out / "checkpoint.pt"), ckpt(ref / "checkpoint.pt")
    assert_same_weights(a["netG"], b["netG"])
    assert_same_weights(a["netD"], b["netD"])
    assert a["G_losses"] == b["G_losses"] and a["iters"] == b["iters"] == 6 * done


def test_sigterm_to_the_process_group_with_dataloader_workers_saves_and_exits_130(tmp_path):
    """What docker stop, systemd and Slurm do: SIGTERM to every process, workers included."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    out = tmp_path / "out"
    p = start("dcgan_celeba.py", "--dataroot", data, *SMALL, "--batch-size", 4, "--no-cache",
              "--workers", 2, "--log-every", 1, "--epochs", 500, "--out", out,
              env={"PYTHONUNBUFFERED": "1"})
    try:
        wait_for(p, "[1/500][1/")
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "killed by signal" not in err and "SIGTERM" in err
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] >= 5


def test_sigterm_while_the_cache_is_built_exits_130_with_a_message(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=600, size=64)
    out = tmp_path / "out"
    p = start("dcgan_celeba.py", "--dataroot", data, "--cache", "--workers", 2, "--out", out,
              env={"PYTHONUNBUFFERED": "1"})
    try:
        wait_for(p, "cache: building")
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "building the cache" in err
    assert not [f for f in os.listdir(tmp_path / "celeba") if f.endswith(".pt")]


def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    p = start("dcgan_celeba.py", "--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0,
              "--log-every", 1, "--checkpoint-every", 1, "--epochs", 500, "--out", out,
              env={"PYTHONUNBUFFERED": "1"})
    try:
        wait_for(p, "[3/500]")  # checkpoints are being written every iteration by now
        p.kill()  # SIGKILL: no handler runs, possibly in the middle of a checkpoint write
        p.wait(timeout=60)
    finally:
        p.kill()
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] >= 5
    assert in_process("--resume", out / "checkpoint.pt", "--epochs", c["epoch"] + 1) == 0
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]  # stale temp files gone


def test_checkpoint_every_and_epoch_boundary_resume_is_exact(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0, "--no-cache"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert in_process(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert in_process(*flags, "--out", b, "--epochs", 1) == 0
    assert in_process("--resume", b / "checkpoint.pt", "--epochs", 2) == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    assert_same_weights(ca["netG"], cb["netG"])
    assert ca["D_losses"] == cb["D_losses"] and len(ca["D_losses"]) == 4
    with open(b / "metrics.csv") as f:  # appended, one header
        assert f.read().count("loss_d") == 1


def test_resume_takes_the_runs_settings_and_refuses_changes_that_would_break_it(
        tmp_path, capsys, monkeypatch):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "a"
    assert in_process("--dataroot", data, *SMALL, "--batch-size", 4, "--workers", 0,
                      "--dry-run", "--out", out, "--seed", 2**63 - 1) == 0
    c = out / "checkpoint.pt"
    capsys.readouterr()
    for flags, words in [(["--image-size", 64], ["--image-size 64", "(32)"]),
                         (["--ngf", 16], ["--ngf 16", "(8)"]),
                         (["--batch-size", 2], ["--batch-size 2", "(4)"]),
                         (["--out", tmp_path / "elsewhere"], ["--out", "differs"])]:
        assert in_process("--resume", c, *flags) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words), (flags, err)
    # a second run into the same --out is refused, not overwritten
    assert in_process("--dataroot", data, "--out", out, "--workers", 0) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume alone, from another folder: the data, sizes and --out come from the checkpoint
    monkeypatch.chdir(tmp_path / "celeba")
    assert in_process("--resume", c, "--epochs", 2, "--workers", 0, "--log-every", 1) == 0
    printed = capsys.readouterr().out
    assert "--image-size 32" in printed and "--seed 9223372036854775807" in printed
    assert ckpt(c)["epoch"] == 2


def test_resume_of_another_scripts_checkpoint_is_refused(tmp_path, capsys):
    foreign = tmp_path / "checkpoint.pt"
    torch.save({"script": "dcgan_mnist", "args": {}}, foreign)
    assert in_process("--resume", foreign) == 2
    assert "dcgan_mnist" in capsys.readouterr().err


def test_resume_from_a_subprocess_prints_one_error_line_for_garbage(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    from helpers import script
    r = script("dcgan_celeba.py", "--resume", tmp_path / "garbage.pt", check=False)
    assert_user_error(r, "cannot load checkpoint")
