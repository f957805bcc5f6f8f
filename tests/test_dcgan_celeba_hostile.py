"""dcgan_celeba.py against hostile folders, files and settings: each ends in a result, one
`error:` line and exit 2, or 130 with a checkpoint; nothing hangs and nothing is written into
--dataroot."""
import math
import os
import struct
import zlib

import pytest
import torch

from helpers import CELEBA_SMALL, assert_one_error, celeba, ckpt, make_image_folder, rows, script

SMALL = [*CELEBA_SMALL, "--batch-size", 4]



def one_error(capsys, *words):
    assert_one_error(2, capsys.readouterr().err, *words)


def test_an_out_inside_the_dataroot_or_holding_it_is_refused(tmp_path, capsys):
    data = make_image_folder(tmp_path / "faces", n=8, size=40)
    for out in (tmp_path / "faces", tmp_path / "faces" / "runs", tmp_path):
        assert celeba("--dataroot", data, "--out", out, *SMALL, "--dry-run") == 2
        one_error(capsys, "--dataroot", "overlap")
    assert sorted(os.listdir(tmp_path / "faces")) == ["img_align_celeba"]  # nothing written
    assert len(os.listdir(tmp_path / "faces" / "img_align_celeba")) == 8


def test_d_updates_beyond_the_batches_of_an_epoch_still_train_g(tmp_path):
    """D steps per G step count over the whole run, not within each epoch."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)  # 4 batches an epoch
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--d-updates", 10,
                      "--epochs", 5) == 0
    losses = ckpt(out / "checkpoint.pt")["G_losses"]
    assert len(losses) == 20 and losses[:9] == [0.0] * 9  # G's first step: iteration 10
    assert losses[9] != 0 and losses[10:19] == [losses[9]] * 9 and losses[19] != losses[9]


def test_fifos_folder_links_and_duplicates_in_the_data_neither_hang_nor_multiply(tmp_path,
                                                                                 capsys):
    data = make_image_folder(tmp_path / "data", n=8, size=40, flat=True)
    os.mkfifo(tmp_path / "data" / "x.jpg")  # a reader of this blocks forever
    os.symlink(".", tmp_path / "data" / "self")  # a loop
    os.symlink("..", tmp_path / "data" / "up")  # the parent: everything again
    os.symlink("000001.jpg", tmp_path / "data" / "again.jpg")  # the same file twice
    p = script("dcgan_celeba.py", "--dataroot", data, "--out", tmp_path / "o", *SMALL,
                       "--epochs", 1, timeout=180)
    assert "dataset: 8 images" in p.stdout, p.stdout[-2000:]
    for flag in ("--no-decode-once",):
        assert celeba("--dataroot", data, "--out", tmp_path / flag, *SMALL, flag,
                          "--dry-run") == 0
    assert "dataset: 8 images" in capsys.readouterr().out


def test_a_relative_dataroot_resumes_from_anywhere_and_by_its_absolute_path(tmp_path,
                                                                            monkeypatch):
    make_image_folder(tmp_path / "celeba", n=8, size=40)
    monkeypatch.chdir(tmp_path)
    assert celeba("--dataroot", "celeba", "--out", "run", *SMALL, "--epochs", 1) == 0
    assert ckpt(tmp_path / "run" / "checkpoint.pt")["args"]["dataroot"] == \
        str(tmp_path / "celeba")
    os.makedirs(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "elsewhere")
    resume = tmp_path / "run" / "checkpoint.pt"
    assert celeba("--resume", resume, "--epochs", 2) == 0
    assert celeba("--resume", resume, "--epochs", 3, "--dataroot", tmp_path / "celeba") == 0
    monkeypatch.chdir(tmp_path)
    assert celeba("--resume", "run/checkpoint.pt", "--epochs", 4, "--dataroot",
                      "./celeba/") == 0
    assert ckpt(resume)["epoch"] == 4


def test_generate_casts_half_and_double_weights_and_refuses_meta_or_sparse_ones(tmp_path,
                                                                                 capsys):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--dry-run") == 0
    saved = torch.load(out / "generator_weights.pt", weights_only=True)
    assert celeba("--generate", out / "generator_weights.pt") == 0
    reference = torch.load(out / "generated" / "generated.pt", weights_only=True)
    for kind in ("half", "double", "meta", "sparse"):
        state = {k: {"half": v.half(), "double": v.double(), "meta": v.to("meta"),
                     "sparse": v.to_sparse()}[kind] if v.is_floating_point() else v
                 for k, v in saved["state_dict"].items()}
        folder = tmp_path / kind
        os.makedirs(folder)
        torch.save(dict(saved, state_dict=state), folder / "generator_weights.pt")
        status = celeba("--generate", folder / "generator_weights.pt")
        if kind in ("half", "double"):
            assert status == 0, capsys.readouterr().err
            x = torch.load(folder / "generated" / "generated.pt", weights_only=True)
            assert x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
            assert torch.allclose(x, reference, atol=1e-5 if kind == "double" else 0.05)
        else:
            assert status == 2
            one_error(capsys, "generator_weights.pt")
            assert not (folder / "generated").exists()


def test_fid_without_its_weights_offline_fails_before_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch_fidelity", reason="torch-fidelity is optional")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no downloaded copy
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # offline
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--fid", 8, "--epochs", 50) == 2
    one_error(capsys, "--fid-weights")
    assert not out.exists()  # nothing trained, nothing left


def test_a_diverging_run_stops_with_one_error_line_and_keeps_its_last_checkpoint(tmp_path,
                                                                                 capsys):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--epochs", 1) == 0
    broken = ckpt(out / "checkpoint.pt")  # D's weights gone bad, as a diverged run leaves them
    broken["netD"]["main.0.weight"].fill_(float("nan"))
    torch.save(broken, out / "checkpoint.pt")
    assert celeba("--resume", out / "checkpoint.pt", "--epochs", 3, "--log-every", 1) == 2
    one_error(capsys, "--lr", "diverged")
    last = rows(out / "metrics.csv")[-1]  # the row that showed it
    assert not all(math.isfinite(float(last[k])) for k in ("loss_d", "loss_g")), last
    assert ckpt(out / "checkpoint.pt")["epoch"] == 1  # not replaced by a diverged one


def test_resume_after_a_resume_reports_the_runs_own_rate(tmp_path, capsys):
    """The first progress line after --resume divides its own iterations by their own time,
    not by the time since start-up (decoding included)."""
    data = make_image_folder(tmp_path / "celeba", n=32, size=40)
    out = tmp_path / "o"
    rate = lambda line: float(line.split("\t")[-2].split()[0])  # noqa: E731 (img/s)
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--epochs", 1) == 0
    fresh = rate(next(line for line in capsys.readouterr().out.splitlines()
                      if line.startswith("[0/1][0/8]")))  # its first iteration's own
    assert celeba("--resume", out / "checkpoint.pt", "--epochs", 2, "--log-every", 4) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[1/2]")]
    assert len(lines) == 3 and rate(lines[0]) > 0.3 * fresh, (fresh, lines)


def test_odd_images_a_decompression_bomb_a_device_link_and_odd_names_are_handled(tmp_path,
                                                                                  capsys):
    """What held in the round-4 hostile pass, kept: every image mode trains, a decompression
    bomb and a link to /dev/zero are skipped as unreadable, names with spaces, quotes, newlines
    and non-ASCII are read."""
    from PIL import Image
    folder = tmp_path / "odd"
    os.makedirs(folder)
    rgb = Image.new("RGB", (48, 40), (200, 30, 30))
    for name, image in {"rgba.png": rgb.convert("RGBA"), "palette.png": rgb.convert("P"),
                        "grey.jpg": rgb.convert("L"), "cmyk.jpg": rgb.convert("CMYK"),
                        "sixteen.png": rgb.convert("I;16"), "one.png": Image.new("RGB", (1, 1)),
                        "wide 'quoted' \"name\".jpg": rgb, "new\nline.jpg": rgb,
                        "ünïcødé.jpg": rgb, "-starts-with-dash.jpg": rgb}.items():
        image.save(folder / name)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)  # a PNG of 10 Gpixels
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(  # noqa
        ">I", zlib.crc32(kind + data))
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                                      chunk(b"IDAT", zlib.compress(b"\0" * 1000)) +
                                      chunk(b"IEND", b""))
    os.symlink("/dev/zero", folder / "zero.jpg")
    out = tmp_path / "o"
    assert celeba("--dataroot", folder, "--out", out, *SMALL, "--epochs", 1,
                      "--nc", 1) == 0
    printed = capsys.readouterr()
    assert "dataset: 10 images" in printed.out, printed.out[-2000:]
    assert "skipped 1 unreadable" in printed.err and "Traceback" not in printed.err


def test_fid_weights_holding_code_are_refused_before_anything_runs(tmp_path, capsys):
    pytest.importorskip("torch_fidelity", reason="torch-fidelity is optional")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    torch.save({"weights": Payload()}, tmp_path / "inception.pth")
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    assert celeba("--dataroot", data, "--out", tmp_path / "o", *SMALL, "--fid", 4,
                      "--fid-weights", tmp_path / "inception.pth", "--dry-run") == 2
    one_error(capsys, "--fid-weights")
    assert not marker.exists() and not (tmp_path / "o").exists()
