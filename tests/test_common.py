"""Unit tests of common.py, the plumbing every script relies on: errors, flags, output folder,
atomic checkpoints, signals, safe generator loading, Fréchet distance."""
import argparse
import os
import pickle
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import common


def tiny_generator():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh())


# -- Errors and exit codes -------------------------------------------------------------------
def test_run_gives_one_error_line_and_the_right_exit_code(capsys):
    def full_disk(argv):
        raise OSError(28, "No space left on device", "out/checkpoint.pt")

    def no_memory(argv):
        torch.empty(2**62, dtype=torch.uint8)  # the CPU allocator's RuntimeError

    def interrupted(argv):
        raise KeyboardInterrupt

    assert common.run(lambda argv: common.fail("no data in data/celeba"), []) == 2
    assert capsys.readouterr().err.strip() == "error: no data in data/celeba"
    assert common.run(full_disk, []) == 2
    assert capsys.readouterr().err.strip().startswith(
        "error: cannot write out/checkpoint.pt: No space left on device (free some space")
    assert common.run(no_memory, []) == 2
    assert capsys.readouterr().err.startswith("error: out of memory")
    assert common.run(interrupted, []) == 130
    assert common.run(lambda argv: None, []) == 0
    with pytest.raises(ZeroDivisionError):  # a real bug keeps its traceback
        common.run(lambda argv: 1 / 0, [])


# -- Flags -------------------------------------------------------------------------------------
def test_number_types_accept_what_fits_and_refuse_the_rest():
    assert common.positive_int("5") == 5 and common.positive_int("1e3") == 1000
    assert common.seed_int(str(2**63 - 1)) == 2**63 - 1
    assert common.positive_float("1e9") == 1e9 and common.unit_interval("0") == 0.0
    for fn, text in ((common.positive_int, "0"), (common.positive_int, "1.5"),
                     (common.positive_int, "1e10"), (common.non_negative_int, "-1"),
                     (common.seed_int, str(2**64)), (common.seed_int, "-1"),
                     (common.positive_float, "0"), (common.positive_float, "nan"),
                     (common.positive_float, "1e38"), (common.positive_float, "inf"),
                     (common.unit_interval, "1"), (common.unit_interval, "x"),
                     (common.int_range(1, 8), "9")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(text)


def demo_parser():
    p = common.ArgumentParser(prog="demo.py")
    g = p.add_argument_group("the tutorial's inputs")
    g.add_argument("--lr", type=common.positive_float, default=1e-3, help="learning rate")
    g.add_argument("--dataroot", default="data/my folder", help="images")
    g.add_argument("--resume", help="a checkpoint.pt to continue")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16")
    g.add_argument("--tutorial", action="store_true", help="the tutorial's settings")
    g.add_argument("--epochs", type=common.positive_int, default=3, help="epochs")
    return p


def test_bad_flag_is_one_error_line_and_help_shows_each_real_default_once(capsys):
    p = demo_parser()
    for argv in (["--epochs", "0"], ["--lr", "nan"], ["--bogus"], ["--epo", "3"]):
        with pytest.raises(SystemExit) as e:
            p.parse_args(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
    text = p.format_help()
    assert "(default: 3)" in text and "(default: None)" not in text
    assert "(default: False)" not in text and "the tutorial's inputs" in text


def test_arguments_line_pastes_back_as_the_same_arguments():
    p = demo_parser()
    args = p.parse_args(["--no-amp", "--tutorial", "--lr", "0.5"])
    line = common.command_line(p, args)
    assert line.startswith("python demo.py ")
    assert "'data/my folder'" in line and "--no-amp" in line and "True" not in line
    import shlex
    assert p.parse_args(shlex.split(line)[2:]) == args


def test_tutorial_settings_replace_defaults_but_not_given_flags():
    tutorial = {"lr": 2e-4, "epochs": 5}
    assert common.parse_with_tutorial(demo_parser(), [], tutorial).lr == 1e-3
    args = common.parse_with_tutorial(demo_parser(), ["--tutorial", "--epochs", "9"], tutorial)
    assert (args.lr, args.epochs) == (2e-4, 9)


def test_resume_takes_the_saved_settings_and_refuses_other_changes():
    saved = {"lr": 0.5, "dataroot": "data/fashion", "epochs": 2}
    args = common.resume_args(demo_parser(), ["--resume", "c.pt", "--epochs", "4"], saved,
                              may_change={"epochs", "resume"})
    assert (args.lr, args.dataroot, args.epochs) == (0.5, "data/fashion", 4)
    with pytest.raises(common.UserError, match="--lr 0.1 differs from the run being resumed"):
        common.resume_args(demo_parser(), ["--resume", "c.pt", "--lr", "0.1"], saved, {"epochs"})


# -- Output folder -------------------------------------------------------------------------------
def prepare(path, **kwargs):
    """common.prepare_out, letting go of the folder again as run() does when main returns."""
    try:
        return common.prepare_out(path, **kwargs)
    finally:
        while common._locks:
            common._locks.pop().close()


def test_prepare_out_refuses_an_earlier_run_unless_resume_or_overwrite(tmp_path):
    out = str(tmp_path / "a" / "b")
    assert os.path.isdir(prepare(out))
    (tmp_path / "a" / "b" / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(common.UserError, match="holds an earlier run.*--resume .*checkpoint.pt"):
        prepare(out)
    assert prepare(out, new_run=False) == prepare(out, overwrite=True) == out
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(common.UserError, match="existing file"):
        prepare(str(f))


def test_prepare_out_refuses_a_folder_another_process_holds(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import common, sys, time; "
                               f"common.prepare_out({str(tmp_path)!r}); print('held', flush=True);"
                               " time.sleep(60)"], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(common.__file__))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(common.UserError, match="another run is using"):
            prepare(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    prepare(str(tmp_path))  # free again once it is gone


def test_prepare_out_unwritable_folder_is_a_user_error(tmp_path):
    # /sys refuses new files even to root (CI runs as root, so a chmod alone proves nothing)
    folders = ["/sys/gan-examples-out"] + ([str(tmp_path)] if os.geteuid() else [])
    os.chmod(tmp_path, 0o500)
    try:
        for folder in folders:
            with pytest.raises(common.UserError, match="cannot write to --out"):
                prepare(folder)
    finally:
        os.chmod(tmp_path, 0o700)


def test_prepare_out_removes_temp_files_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".tmp-{dead}-abc-checkpoint.pt").write_bytes(b"half")
    (tmp_path / f".tmp-{os.getpid()}-abc-checkpoint.pt").write_bytes(b"mine")
    prepare(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [".lock", f".tmp-{os.getpid()}-abc-checkpoint.pt"]


# -- Checkpoints ---------------------------------------------------------------------------------
def test_atomic_save_writes_a_loadable_file_and_no_temp_files(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    common.atomic_save({"script": "demo", "w": torch.arange(3), "epoch": 2}, path)
    loaded = common.load_checkpoint(path, "demo")
    assert loaded["epoch"] == 2 and torch.equal(loaded["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
    umask = os.umask(0o22)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.pt")
    common.atomic_save({"script": "demo", "epoch": 1}, path)
    with pytest.raises(Exception):
        common.atomic_save({"script": "demo", "bad": lambda: None}, path)  # cannot be pickled

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(common.UserError, match="No space left.*previous copy.*unchanged"):
        common.atomic_save({"script": "demo", "epoch": 2}, path)
    assert common.load_checkpoint(path, "demo")["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_second_ctrl_c_during_a_save_waits_until_the_file_is_complete(tmp_path):
    code = ("import os, signal, common, torch\n"
            "def main(argv):\n"
            "    with common.StopOnCtrlC():\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"  # first: asks to stop
            "        big = {'script': 'demo', 'w': torch.zeros(2**22)}\n"
            "        def write(f):\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"  # second: during the write
            "            torch.save(big, f)\n"
            "        common.atomic_write('ckpt.pt', write)\n"
            "        print('not reached')\n"
            "raise SystemExit(common.run(main))\n")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(common.__file__)}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 130 and "Traceback" not in p.stderr and "not reached" not in p.stdout
    assert common.load_checkpoint(str(tmp_path / "ckpt.pt"), "demo")["w"].numel() == 2**22
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_load_checkpoint_missing_corrupt_or_foreign_is_a_user_error(tmp_path):
    with pytest.raises(common.UserError, match="does not exist"):
        common.load_checkpoint(str(tmp_path / "nope.pt"), "demo")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(common.UserError, match="cannot load checkpoint"):
        common.load_checkpoint(str(bad), "demo")
    common.atomic_save({"script": "other", "epoch": 1}, str(tmp_path / "other.pt"))
    with pytest.raises(common.UserError, match="written by other, not demo.py"):
        common.load_checkpoint(str(tmp_path / "other.pt"), "demo")


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random
    common.set_seed(123)
    common.atomic_save({"script": "demo", "rng": common.rng_state()}, str(tmp_path / "c.pt"))
    first = (torch.rand(3), np.random.rand(3), random.random())
    common.set_seed(999)
    common.set_rng_state(common.load_checkpoint(str(tmp_path / "c.pt"), "demo")["rng"])
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_stop_on_ctrl_c_first_signal_asks_second_interrupts_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with common.StopOnCtrlC() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# -- Export and safe loading ---------------------------------------------------------------------
def test_exported_generator_loads_anywhere_and_safely_in_the_script(tmp_path):
    model = tiny_generator().train()
    path = common.export_generator(model, (torch.randn(4, 3),), str(tmp_path / "g.pt2"),
                                   "demo", {"nz": 3})
    assert model.training, "export must restore the training mode"
    anywhere = torch.export.load(path).module()
    state, settings = common.load_generator(path, "demo")
    assert settings == {"nz": 3}
    rebuilt = tiny_generator()
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    model.eval()
    for n in (1, 7, 300):
        z = torch.randn(n, 3)
        assert torch.allclose(anywhere(z), model(z), atol=1e-6)
        assert torch.equal(rebuilt(z), model(z))
    assert sorted(os.listdir(tmp_path)) == ["g.pt2"]


def test_load_generator_never_unpickles_a_tampered_archive(tmp_path):
    path = common.export_generator(tiny_generator(), (torch.randn(4, 3),), str(tmp_path / "g.pt2"),
                                   "demo", {"nz": 3})
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("sample_inputs/model.pt") or item.filename.endswith(".pkl"):
                data = pickle.dumps(Payload())
            dst.writestr(item, data)
    state, _ = common.load_generator(str(tampered), "demo")
    assert set(state) == set(tiny_generator().state_dict())
    assert not marker.exists()


def test_load_generator_refuses_missing_foreign_and_other_scripts_files(tmp_path):
    with pytest.raises(common.UserError, match="does not exist"):
        common.load_generator(str(tmp_path / "missing.pt2"), "demo")
    other = tmp_path / "checkpoint.pt"
    torch.save({"a": 1}, other)
    with pytest.raises(common.UserError, match="not a generator exported by demo.py"):
        common.load_generator(str(other), "demo")
    path = common.export_generator(tiny_generator(), (torch.randn(4, 3),),
                                   str(tmp_path / "g.pt2"), "other_gan", {})
    with pytest.raises(common.UserError, match="exported by other_gan.py.*other_gan.py --generate"):
        common.load_generator(path, "demo")


# -- Records --------------------------------------------------------------------------------------
def test_metrics_csv_header_once_blank_cells_and_append_on_resume(tmp_path):
    from helpers import rows
    path = str(tmp_path / "metrics.csv")
    log = common.MetricsCSV(path, ["epoch", "loss_D", "fid"])
    log.write(epoch=1, loss_D=0.5)
    common.MetricsCSV(path, ["epoch", "loss_D", "fid"], append=True).write(epoch=2, fid=3.5)
    assert rows(path) == [{"epoch": "1", "loss_D": "0.5", "fid": ""},
                          {"epoch": "2", "loss_D": "", "fid": "3.5"}]


def test_format_eta():
    assert [common.format_eta(s) for s in (5, 125, 3725, -3)] == ["0:05", "2:05", "1:02:05", "0:00"]


# -- Fréchet distance: closed forms --------------------------------------------------------------
def test_frechet_distance_diagonal_and_rotated_gaussians_closed_form():
    # For diagonal covariances FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2, and rotating
    # both Gaussians by one orthogonal matrix leaves it unchanged (the non-diagonal path).
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 0.5, 8.0])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert common.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    rotated = common.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_a_sample_with_itself_is_zero_and_grows_with_shift():
    feats = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    mu, sigma = common.gaussian_stats(feats)
    assert mu.shape == (8,) and sigma.shape == (8, 8)
    assert common.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    mu2, sigma2 = common.gaussian_stats(feats + 3.0)
    assert common.frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(8 * 9.0, rel=1e-6)
