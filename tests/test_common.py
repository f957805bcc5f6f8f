"""common.py, the plumbing every script uses: errors, flags, --out and its lock, saves, signals."""
import argparse
import os
import select
import signal
import subprocess
import sys

import pytest
import torch

import common
from helpers import ROOT


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
    assert common.run(full_disk, []) == 2  # words that fit a --resume too (its --out stays)
    assert "or fix the permissions of " in capsys.readouterr().err
    assert common.run(no_memory, []) == 2
    assert capsys.readouterr().err.startswith("error: out of memory")
    assert common.run(interrupted, []) == 130
    assert common.run(lambda argv: None, []) == 0
    with pytest.raises(ZeroDivisionError):  # a real bug keeps its traceback
        common.run(lambda argv: 1 / 0, [])


def test_run_sends_each_printed_line_into_a_pipe_at_once(tmp_path):
    """`python script.py | tee log` (or `> log`) shows progress as it is printed, not at exit."""
    prog = tmp_path / "prog.py"
    prog.write_text("import sys\nimport common\n\ndef main(argv):\n    print('first line')\n"
                    "    sys.stdin.readline()\n\nsys.exit(common.run(main))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.Popen([sys.executable, str(prog)], stdin=subprocess.PIPE, text=True,
                         stdout=subprocess.PIPE, env={**env, "PYTHONPATH": ROOT})
    try:  # block-buffered, the line would wait for the exit, and the exit for our input
        assert select.select([p.stdout], [], [], 60)[0], "no line in a minute: buffered"
        assert p.stdout.readline() == "first line\n"
    finally:
        p.communicate("go\n", timeout=60)
    assert p.returncode == 0


def test_a_reader_that_stops_reading_ends_the_run_quietly():
    """`python script.py | head -1`: no traceback when head has gone."""
    code = "import common, sys; sys.exit(common.run(lambda argv: [print(i) for i in range(10**7)]))"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline() == "0\n"
    p.stdout.close()  # as head does after its line
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141 and err == "", err


# -- Flags -------------------------------------------------------------------------------------
def test_number_types_accept_what_fits_and_refuse_the_rest():
    assert common.positive_int("5") == 5 and common.positive_int("1e3") == 1000
    assert common.seed_int(str(2**63 - 1)) == 2**63 - 1
    assert common.positive_float("1e9") == 1e9 and common.unit_interval("0") == 0.0
    for fn, text in ((common.positive_int, "0"), (common.positive_int, "1.5"),
                     (common.positive_int, "1e10"), (common.int_range(0, 9), "-1"),
                     (common.positive_int, "x"),
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


def test_arguments_line_pastes_back_as_the_same_arguments_and_names_only_acting_flags():
    import shlex
    p = demo_parser()
    args = p.parse_args(["--no-amp", "--tutorial", "--lr", "0.5"])
    line = common.command_line(p, args)
    assert line.startswith("python demo.py ")
    assert "'data/my folder'" in line and "--no-amp" in line and "True" not in line
    assert "--resume" not in line  # None: not given, not acting
    assert p.parse_args(shlex.split(line)[2:]) == args
    assert "--lr" not in common.command_line(p, args, idle=("lr",))


def test_tutorial_settings_replace_defaults_but_not_given_flags():
    tutorial = {"lr": 2e-4, "epochs": 5}
    assert common.parse(demo_parser(), [], tutorial)[0].lr == 1e-3
    args, checkpoint = common.parse(demo_parser(), ["--tutorial", "--epochs", "9"], tutorial)
    assert (args.lr, args.epochs, checkpoint) == (2e-4, 9, None)


def resumable_parser():
    p = demo_parser()
    p.add_argument("--out", default="outputs/demo", help="folder")
    return p


def test_resume_takes_the_saved_settings_and_refuses_other_changes(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint.pt"
    os.makedirs(ckpt.parent)
    saved = {"lr": 0.5, "dataroot": "data/fashion", "epochs": 2, "dry_run": True,
             "out": "somewhere/else"}
    common.atomic_save({"script": "demo", "args": saved}, str(ckpt))
    args, c = common.parse(resumable_parser(), ["--resume", str(ckpt), "--epochs", "4"],
                           script="demo", may_change={"epochs"})
    assert (args.lr, args.dataroot, args.epochs) == (0.5, "data/fashion", 4)
    assert args.out == str(ckpt.parent) and c["args"] == saved  # --out: the checkpoint's folder
    same_out = ["--resume", str(ckpt), "--out", str(ckpt.parent) + "/"]
    assert common.parse(resumable_parser(), same_out, script="demo")[0].lr == 0.5
    for flags, message in ((["--lr", "0.1"], r"--lr 0.1 differs from the run being resumed \(0.5\)"),
                           (["--out", str(tmp_path)], "--out .* differs")):
        with pytest.raises(common.UserError, match=message):
            common.parse(resumable_parser(), ["--resume", str(ckpt), *flags], script="demo",
                         may_change={"epochs"})
    with pytest.raises(common.UserError, match="written by demo, not other.py; pass it to demo"):
        common.parse(resumable_parser(), ["--resume", str(ckpt)], script="other")


# -- Output folder -------------------------------------------------------------------------------
def test_prepare_out_refuses_an_earlier_run_unless_resume_or_overwrite(tmp_path):
    out = str(tmp_path / "a" / "b")
    lock = common.prepare_out(out)
    assert os.path.isdir(out)
    (tmp_path / "a" / "b" / "metrics.csv").write_text("epoch\n")
    (tmp_path / "a" / "b" / "checkpoint.pt").write_bytes(b"x")
    del lock
    with pytest.raises(common.UserError, match="holds an earlier run.*--resume .*checkpoint.pt"):
        common.prepare_out(out)
    assert common.prepare_out(out, new_run=False)
    assert common.prepare_out(out, overwrite=True)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(common.UserError, match="existing file"):
        common.prepare_out(str(f))


def test_a_folder_made_for_a_run_that_wrote_nothing_goes_with_its_lock(tmp_path):
    out = tmp_path / "new"
    assert common.prepare_out(str(out), hold=False) is None and not out.exists()  # a check only
    lock = common.prepare_out(str(out))
    assert os.listdir(out) == [".lock"]
    del lock  # the run ends (or fails) before writing anything: no trace
    assert not out.exists()
    lock = common.prepare_out(str(out))
    (out / "metrics.csv").write_text("epoch\n")
    del lock  # a run that wrote something keeps its folder, without the lock file
    assert os.listdir(out) == ["metrics.csv"]
    os.makedirs(tmp_path / "mine")
    lock = common.prepare_out(str(tmp_path / "mine"), new_run=False)
    del lock  # a folder it did not make stays, empty or not
    assert (tmp_path / "mine").is_dir()


def hold_in_child(path):
    """A process that holds --out `path` (as a training run does) until killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import common, sys, time; "
                               f"lock = common.prepare_out({str(path)!r}, new_run=False); "
                               "print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(common.__file__))
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_refused_runs_leave_the_holders_lock_and_files_alone(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch\n1\n")  # run A's files
    holder = hold_in_child(tmp_path)
    try:
        before = sorted(os.listdir(tmp_path))
        with pytest.raises(common.UserError, match="another run is using"):  # run B
            common.prepare_out(str(tmp_path), overwrite=True)
        assert sorted(os.listdir(tmp_path)) == before  # .lock still there, nothing moved
        for _ in range(2):  # run C, and again: still refused while A runs
            with pytest.raises(common.UserError, match="another run is using"):
                common.prepare_out(str(tmp_path), new_run=False)
    finally:
        holder.kill()
        holder.wait()
    assert common.prepare_out(str(tmp_path), new_run=False)  # free again once it is gone


def test_overwrite_replaces_the_whole_earlier_run_only_once_the_new_one_has_written(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("metrics.csv", "p25.png", "checkpoint.pt"):
        (out / name).write_text(f"old {name}")
    (out / "notes.md").write_text("mine")  # not a run's file (say --out .): never touched
    (out / "data").mkdir()
    lock = common.prepare_out(str(out), overwrite=True)
    assert sorted(os.listdir(out))[0] == ".lock" and not (out / "p25.png").exists()
    (out / "p1.png").write_text("new")
    del lock  # the new run failed before its metrics.csv: the earlier run comes back whole
    assert {f: (out / f).read_text() for f in os.listdir(out) if f not in ("p1.png", "data")} \
        == {"metrics.csv": "old metrics.csv", "p25.png": "old p25.png",
            "checkpoint.pt": "old checkpoint.pt", "notes.md": "mine"}
    lock = common.prepare_out(str(out), overwrite=True)
    (out / "metrics.csv").write_text("new")
    del lock  # the new run wrote: the earlier run's files (p1.png too) are gone
    assert sorted(os.listdir(out)) == ["data", "metrics.csv", "notes.md"]
    assert (out / "metrics.csv").read_text() == "new" and (out / "notes.md").read_text() == "mine"


def test_prepare_out_unwritable_folder_is_a_user_error(tmp_path):
    # /sys refuses new files even to root (CI runs as root, so a chmod alone proves nothing)
    folders = ["/sys/gan-examples-out"] + ([str(tmp_path)] if os.geteuid() else [])
    os.chmod(tmp_path, 0o500)
    try:
        for folder in folders:
            with pytest.raises(common.UserError, match="cannot write to --out"):
                common.prepare_out(folder)
            with pytest.raises(common.UserError) as e:  # a --resume: its --out cannot change
                common.prepare_out(folder, new_run=False)
            assert "fix its permissions" in str(e.value) and "pass a folder" not in str(e.value)
    finally:
        os.chmod(tmp_path, 0o700)


def test_prepare_out_removes_temp_files_a_crash_left(tmp_path):
    (tmp_path / ".tmp-123-abcd-checkpoint.pt").write_bytes(b"half")  # kill -9 mid-save
    (tmp_path / "checkpoint.pt").write_bytes(b"whole")
    lock = common.prepare_out(str(tmp_path), new_run=False)
    assert sorted(os.listdir(tmp_path)) == [".lock", "checkpoint.pt"]
    del lock


# -- Checkpoints ---------------------------------------------------------------------------------
def test_atomic_save_writes_a_loadable_file_and_no_temp_files(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    common.atomic_save({"script": "demo", "w": torch.arange(3), "epoch": 2}, path)
    loaded = common.load_checkpoint(path, "demo")
    assert loaded["epoch"] == 2 and torch.equal(loaded["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
    umask = os.umask(0o22)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # readable like any other file


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


def test_signals_during_a_save_wait_until_the_file_is_complete(tmp_path):
    code = ("import os, signal, common, torch\n"
            "def main(argv):\n"
            "    with common.stop_on_ctrl_c() as stop:\n"
            "        big = {'script': 'demo', 'w': torch.zeros(2**22)}\n"
            "        def write(f):\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"  # first: asks to stop
            "            os.kill(os.getpid(), signal.SIGTERM)\n"  # second: quit now
            "            torch.save(big, f)\n"
            "            print('write done', flush=True)\n"
            "        common.atomic_write('ckpt.pt', write)\n"
            "        print('not reached')\n"
            "raise SystemExit(common.run(main))\n")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(common.__file__)}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 130 and "Traceback" not in p.stderr, p.stderr
    assert "write done" in p.stdout and "not reached" not in p.stdout
    assert common.load_checkpoint(str(tmp_path / "ckpt.pt"), "demo")["w"].numel() == 2**22
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_load_checkpoint_missing_corrupt_foreign_or_a_program_is_a_user_error(tmp_path):
    with pytest.raises(common.UserError, match="does not exist"):
        common.load_checkpoint(str(tmp_path / "nope.pt"), "demo")
    for not_a_file in (str(tmp_path), os.devnull):
        with pytest.raises(common.UserError, match="is not a file"):
            common.load_checkpoint(not_a_file, "demo")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(common.UserError, match="cannot load"):
        common.load_checkpoint(str(bad), "demo")
    common.atomic_save({"script": "other", "epoch": 1}, str(tmp_path / "other.pt"))
    with pytest.raises(common.UserError, match="written by other, not demo.py; pass it to other"):
        common.load_checkpoint(str(tmp_path / "other.pt"), "demo")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(common.UserError, match="written by another program"):
        common.load_checkpoint(str(tmp_path / "list.pt"), "demo")
    common.save_generator(tiny_generator(), (torch.randn(4, 3),), str(tmp_path), "demo", {})
    with pytest.raises(common.UserError, match="generator_weights.pt"):
        common.load_checkpoint(str(tmp_path / "generator.pt2"), "demo")


def test_stop_on_ctrl_c_first_signal_asks_second_interrupts_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with common.stop_on_ctrl_c() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# -- The saved generator ---------------------------------------------------------------------------
def test_saved_generator_loads_anywhere_and_its_weights_rebuild_it(tmp_path):
    model = tiny_generator().train()
    common.save_generator(model, (torch.randn(4, 3),), str(tmp_path), "demo", {"nz": 3})
    assert model.training, "saving must restore the training mode"
    assert sorted(os.listdir(tmp_path)) == ["generator.pt2", "generator_weights.pt"]
    anywhere = torch.export.load(str(tmp_path / "generator.pt2")).module()
    saved = common.load_checkpoint(str(tmp_path / "generator_weights.pt"), "demo")
    assert saved["settings"] == {"nz": 3}
    rebuilt = tiny_generator()
    rebuilt.load_state_dict(saved["state_dict"])
    rebuilt.eval()
    model.eval()
    for n in (1, 7, 300):
        z = torch.randn(n, 3)
        assert torch.allclose(anywhere(z), model(z), atol=1e-6)
        assert torch.equal(rebuilt(z), model(z))


def test_weights_files_never_run_code(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    torch.save({"script": "demo", "settings": Payload(), "state_dict": {}},
               tmp_path / "evil.pt")
    with pytest.raises(common.UserError, match="cannot load"):
        common.load_checkpoint(str(tmp_path / "evil.pt"), "demo")
    assert not marker.exists()


def test_an_overwrite_killed_midway_is_settled_by_the_next_run(tmp_path):
    """kill -9 leaves the earlier run in OUT/.replaced-PID: the next run on --out puts it back
    (the new run wrote no metrics.csv) and then refuses to replace it."""
    (tmp_path / "metrics.csv").write_text("old")
    (tmp_path / "p25.png").write_text("old")
    code = (f"import common, os; lock = common.prepare_out({str(tmp_path)!r}, overwrite=True); "
            "os._exit(9)")  # killed: no clean-up runs
    subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(common.__file__))
    assert not (tmp_path / "metrics.csv").exists()  # moved aside, hidden
    with pytest.raises(common.UserError, match="holds an earlier run"):
        common.prepare_out(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [".lock", "metrics.csv", "p25.png"]  # the stale lock
