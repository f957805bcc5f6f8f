"""Unit tests of the helpers in common.py that every script relies on."""
import argparse
import csv
import os

import numpy as np
import pytest
import torch

import common


# -- Fréchet distance: closed forms -------------------------------------------------------
def test_frechet_distance_diagonal_gaussians_closed_form():
    # For diagonal covariances FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert common.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_distance_rotated_gaussians_match_unrotated():
    # Rotating both Gaussians by the same orthogonal matrix leaves the distance unchanged,
    # which exercises the non-diagonal path of the matrix square root.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([2.0, 2.0, 0.5, 8.0])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    plain = common.frechet_distance(mu1, a, mu2, b)
    rotated = common.frechet_distance(q @ mu1, q @ a @ q.T, q @ mu2, q @ b @ q.T)
    assert rotated == pytest.approx(plain, rel=1e-9)
    assert plain == pytest.approx(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(np.diag(a)) - np.sqrt(np.diag(b))) ** 2))


def test_frechet_distance_of_a_sample_with_itself_is_zero_and_grows_with_shift():
    feats = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    mu, sigma = common.gaussian_stats(feats)
    assert mu.shape == (8,) and sigma.shape == (8, 8)
    assert common.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    mu2, sigma2 = common.gaussian_stats(feats + 3.0)
    assert common.frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(8 * 9.0, rel=1e-6)


# -- Checkpoints ----------------------------------------------------------------------------
def test_atomic_save_writes_loadable_file_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "checkpoint.pt"
    common.atomic_save({"w": torch.arange(3), "epoch": 2}, str(path))
    loaded = common.load_checkpoint(str(path))
    assert loaded["epoch"] == 2 and torch.equal(loaded["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_atomic_save_that_fails_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    common.atomic_save({"epoch": 1}, str(path))
    with pytest.raises(Exception):
        common.atomic_save({"epoch": 2, "bad": lambda: None}, str(path))  # cannot be pickled
    assert common.load_checkpoint(str(path))["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_load_checkpoint_missing_or_corrupt_is_a_user_error(tmp_path):
    with pytest.raises(common.UserError, match="does not exist"):
        common.load_checkpoint(str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(common.UserError, match="cannot load checkpoint"):
        common.load_checkpoint(str(bad))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random
    common.set_seed(123)
    common.atomic_save({"rng": common.rng_state()}, str(tmp_path / "c.pt"))
    first = (torch.rand(3), np.random.rand(3), random.random())
    common.set_seed(999)  # disturb every generator
    common.set_rng_state(common.load_checkpoint(str(tmp_path / "c.pt"))["rng"])
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


# -- Export -----------------------------------------------------------------------------------
def test_export_generator_has_dynamic_batch_and_matches_the_model(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh())
    model.train()
    path = common.export_generator(model, (torch.randn(4, 3),), str(tmp_path / "g.pt2"))
    assert model.training, "export must restore the training mode"
    loaded = common.load_generator(path)
    for n in (1, 7, 300):
        z = torch.randn(n, 3)
        out = loaded(z)
        assert out.shape == (n, 8)
        assert torch.allclose(out, model.eval()(z), atol=1e-6)  # exported in eval mode
    assert [p.name for p in tmp_path.iterdir()] == ["g.pt2"]


def test_load_generator_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(common.UserError, match="does not exist"):
        common.load_generator(str(tmp_path / "missing.pt2"))
    other = tmp_path / "checkpoint.pt"
    torch.save({"a": 1}, other)
    with pytest.raises(common.UserError, match="not an exported generator"):
        common.load_generator(str(other))


# -- Command line and errors --------------------------------------------------------------------
def test_run_turns_user_errors_into_exit_2_and_ctrl_c_into_130(capsys):
    def bad(argv):
        common.fail("no data in data/celeba")

    def interrupted(argv):
        raise KeyboardInterrupt

    assert common.run(bad, []) == 2
    assert capsys.readouterr().err.strip() == "error: no data in data/celeba"
    assert common.run(interrupted, []) == 130
    assert common.run(lambda argv: None, []) == 0


def test_argument_parser_bad_value_is_one_error_line_and_exit_2(capsys):
    parser = common.ArgumentParser(prog="demo.py")
    parser.add_argument("--epochs", type=common.positive_int, default=3, help="epochs")
    parser.add_argument("--lr", type=common.positive_float, default=1e-3, help="learning rate")
    assert parser.parse_args([]).epochs == 3
    for argv in (["--epochs", "0"], ["--epochs", "x"], ["--lr", "-1"], ["--lr", "nan"], ["--bogus"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert "(default: 3)" in parser.format_help()


def test_number_types():
    assert common.positive_int("5") == 5 and common.positive_float("0.5") == 0.5
    assert common.non_negative_int("0") == 0 and common.adam_beta("0") == 0.0
    for fn, text in ((common.positive_int, "-2"), (common.positive_int, "1.5"), (common.positive_float, "0"),
                     (common.positive_float, "inf"), (common.non_negative_int, "-1"),
                     (common.adam_beta, "1"), (common.adam_beta, "-0.1"), (common.adam_beta, "x")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(text)


def test_stop_on_ctrl_c_first_signal_asks_second_interrupts_and_handlers_come_back():
    import signal
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with common.StopOnCtrlC() as ctrl_c:
        os.kill(os.getpid(), signal.SIGINT)
        assert ctrl_c.requested  # the loop finishes its iteration and saves
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_make_out_dir_creates_folders_and_rejects_a_file(tmp_path):
    assert os.path.isdir(common.make_out_dir(str(tmp_path / "a" / "b")))
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(common.UserError, match="existing file"):
        common.make_out_dir(str(f))


def test_pick_device():
    assert common.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert common.pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(common.UserError, match="no CUDA"):
            common.pick_device("cuda")


# -- Records and pictures -------------------------------------------------------------------------
def test_metrics_csv_writes_header_once_and_appends_on_resume(tmp_path):
    path = str(tmp_path / "metrics.csv")
    log = common.MetricsCSV(path)
    log.write(epoch=1, iteration=10, loss_D=0.5)
    log.write(epoch=2, iteration=20, loss_D=0.25)
    resumed = common.MetricsCSV(path, append=True)
    resumed.write(epoch=3, iteration=30, loss_D=0.125)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["loss_D"] == "0.125"
    common.MetricsCSV(path)  # a fresh run starts a fresh file
    assert open(path).read() == ""


def test_format_eta():
    assert common.format_eta(5) == "0:05"
    assert common.format_eta(125) == "2:05"
    assert common.format_eta(3725) == "1:02:05"
    assert common.format_eta(-3) == "0:00"


def test_picture_helpers_write_pngs_and_gif(tmp_path):
    from PIL import Image
    common.use_agg_unless(False)
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    grid = common.image_grid(images, nrow=4)
    assert grid.shape == (3, 4 * 10 + 2, 4 * 10 + 2) and 0 <= grid.min() and grid.max() <= 1
    common.save_image_grid(images, str(tmp_path / "grid.png"), nrow=4)
    common.save_images(images[:3], str(tmp_path / "each"))
    common.save_loss_plot(str(tmp_path / "losses.png"), {"G": [1, 2, 3], "D": [3, 2, 1]})
    common.save_progress_gif([grid, grid.flip(0)], str(tmp_path / "progress.gif"))
    common.save_real_vs_fake(images, grid, str(tmp_path / "real_vs_fake.png"), nrow=4)
    assert Image.open(tmp_path / "grid.png").size == (42, 42)
    assert sorted(os.listdir(tmp_path / "each")) == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
    gif = Image.open(tmp_path / "progress.gif")
    assert gif.n_frames == 2
    for name in ("losses.png", "real_vs_fake.png"):
        assert Image.open(tmp_path / name).size[0] > 100


def test_format_flags_gives_the_flags_that_reproduce_the_settings():
    import argparse
    args = argparse.Namespace(batch_size=128, lr=0.0002, dry_run=False)
    assert common.format_flags(args) == "--batch-size 128 --lr 0.0002 --dry-run False"
    assert common.format_flags({"image_size": 32}, sep="=") == "--image-size=32"
