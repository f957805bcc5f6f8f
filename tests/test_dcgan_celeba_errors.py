"""dcgan_celeba.py: whatever a user passes gives one `error:` line and exit 2 (or just works),
never a traceback: bad flags and folders, huge sizes, foreign or tampered files, FID without
its package or weights, a last batch of one image."""
import io
import os
import sys
import zipfile

import pytest
import torch

import common
import dcgan_celeba
import helpers
from helpers import assert_user_error, make_image_folder, script


def in_process(*args):
    return helpers.in_process(dcgan_celeba.main, *args)


def test_missing_folder_is_one_error_line_without_traceback(tmp_path):
    r = script("dcgan_celeba.py", "--dataroot", tmp_path / "nothing", "--out", tmp_path / "o",
               check=False)
    assert_user_error(r, "img_align_celeba/*.jpg")
    assert r.stdout.startswith("arguments:")


def bad_inputs(tmp):
    os.makedirs(tmp / "empty")
    os.makedirs(tmp / "zipped")
    (tmp / "zipped" / "img_align_celeba.zip").write_bytes(b"PK\x03\x04")
    os.makedirs(tmp / "nothing_useful" / "img_align_celeba")
    (tmp / "nothing_useful" / "img_align_celeba" / "list.txt").write_text("no images")
    (tmp / "garbage.pt").write_bytes(b"garbage")
    (tmp / "a_file").write_text("x")
    data = tmp / "data"
    return [
        (["--dataroot", tmp / "empty"], "no images"),
        (["--dataroot", tmp / "nothing_useful"], "img_align_celeba/*.jpg"),
        (["--dataroot", tmp / "zipped"], "unzip"),
        (["--dataroot", tmp / "zipped" / "img_align_celeba.zip"], "unzip"),
        (["--image-size", 48], "power of two"),
        (["--image-size", 512], "--image-size"),
        (["--ngpu", 2], "--ngpu"),
        (["--nc", 4], "--nc"),
        (["--nc", 2], "--nc"),
        (["--batch-size", 0], "--batch-size"),
        (["--batch-size", 1], "--batch-size"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "3.5e38"], "--lr"),
        (["--seed", 2**64], "--seed"),
        (["--seed", -1], "--seed"),
        (["--ngf", "1e6"], "--ngf"),
        (["--ndf", 129], "--ndf"),
        (["--nz", "1e8"], "--nz"),
        (["--num-samples", "1e9"], "--num-samples"),
        (["--interpolate", "1e8"], "--interpolate"),
        (["--epochs", "1e9"], "--epochs"),
        (["--fid", "1e9"], "--fid"),
        (["--resume", tmp / "garbage.pt"], "cannot load checkpoint"),
        (["--resume", tmp / "missing.pt"], "does not exist"),
        (["--generate", tmp / "missing.pt2"], "does not exist"),
        (["--generate", tmp / "garbage.pt"], "not a generator exported by dcgan_celeba"),
        (["--save-images", tmp / "x"], "--generate"),
        (["--amp", "fp16", "--dataroot", data], "--amp bf16"),
        (["--amp", "fp32"], "--amp"),
        (["--sync-bn", "--dataroot", data], "torchrun"),
        (["--out", tmp / "a_file", "--dataroot", data], "existing file"),
        (["--arch", "encoder-decoder", "--image-size", 32], "--image-size 64"),
        (["--arch", "stylegan"], "--arch"),
        (["--loss", "wgan-lp"], "--loss"),
        (["--clip-value", 0], "--clip-value"),
        (["--filter-size", 4], "odd"),
        (["--label-smoothing", 1], "[0, 1)"),
        (["--label-smoothing", 0.1, "--loss", "hinge"], "--loss bce"),
        (["--fid-every", 1], "--fid N"),
        (["--time-budget", 0], "--time-budget"),
        (["--fid", 4, "--fid-weights", tmp / "missing.pth", "--dataroot", data],
         "does not exist"),
    ]


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    make_image_folder(tmp_path / "data", n=2, size=40)
    for args, message in bad_inputs(tmp_path):
        assert in_process("--out", tmp_path / "o", "--workers", 0, *args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], (args, err)


def test_all_images_corrupt_is_an_error_not_a_crash(tmp_path, capsys):
    folder = tmp_path / "bad"
    os.makedirs(folder)
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"nope")
    for cache in ("--cache", "--no-cache"):
        assert in_process("--dataroot", folder, "--out", tmp_path / cache, "--workers", 0,
                          "--dry-run", cache) == 2
        assert "could be read" in capsys.readouterr().err


def test_a_last_batch_of_one_image_is_dropped_not_a_crash(tmp_path, capsys):
    """Batch norm cannot train on one image (the Keras model's BatchNorm1d refuses it)."""
    data = make_image_folder(tmp_path / "celeba", n=5, size=40)
    out = tmp_path / "o"
    assert in_process("--dataroot", data, "--out", out, "--arch", "encoder-decoder",
                      "--net-capacity", 4, "--batch-size", 4, "--workers", 0, "--epochs", 1,
                      "--no-cache", "--seed", "2e15") == 0
    assert "1 batches of 4" in capsys.readouterr().out


def exported(tmp_path, script_name, settings, module=None):
    path = tmp_path / f"{script_name}.pt2"
    module = module or torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4))
    common.export_generator(module, (torch.randn(2, 4),), path, script_name, settings)
    return path


def test_generate_refuses_another_scripts_generator_and_tampered_settings(tmp_path, capsys):
    other = exported(tmp_path, "dcgan_mnist", {"nz": 4})
    assert in_process("--generate", other, "--out", tmp_path / "g") == 2
    assert "dcgan_mnist" in capsys.readouterr().err
    settings = {"arch": "dcgan", "nz": 100, "ngf": 10**6, "nc": 3, "image_size": 64,
                "net_capacity": 16, "filter_size": 5, "noise": "normal"}
    huge = exported(tmp_path, "dcgan_celeba", settings)
    assert in_process("--generate", huge, "--out", tmp_path / "g") == 2
    assert "cannot build" in capsys.readouterr().err
    wrong = exported(tmp_path, "dcgan_celeba", dict(settings, ngf=8))  # weights do not fit
    assert in_process("--generate", wrong, "--out", tmp_path / "g") == 2
    assert "cannot build" in capsys.readouterr().err


def test_generate_never_unpickles_a_tampered_archive(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "o"
    assert in_process("--dataroot", data, "--out", out, "--image-size", 32, "--ngf", 8,
                      "--ndf", 8, "--batch-size", 4, "--workers", 0, "--dry-run") == 0
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    torch.save(type("Evil", (), {"__reduce__": lambda self: (os.system, (f"touch {marker}",))})(),
               payload)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(out / "generator.pt2") as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            blob = src.read(item)
            if item.filename.endswith("sample_inputs/model.pt"):
                blob = payload.getvalue()
            dst.writestr(item, blob)
    capsys.readouterr()
    assert in_process("--generate", tampered, "--out", tmp_path / "g", "--num-samples", 4) == 0
    assert not marker.exists() and (tmp_path / "g" / "generated.png").is_file()
    assert in_process("--generate", out / "generator.pt2", "--out", tmp_path / "g2",
                      "--save-images", out / "metrics.csv") == 2  # an existing file
    assert "existing file" in capsys.readouterr().err


def test_fid_errors_missing_package_offline_and_bad_weights_are_one_line(tmp_path, monkeypatch,
                                                                          capsys):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    flags = ["--dataroot", data, "--image-size", 32, "--workers", 0, "--dry-run", "--fid", 4,
             "--out", tmp_path / "o"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch_fidelity", None)  # as if not installed
        m.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
        assert in_process(*flags) == 2
        assert "pip install -r requirements-fid.txt" in capsys.readouterr().err
    pytest.importorskip("torch_fidelity", reason="torch-fidelity is optional "
                        "(requirements-fid.txt)")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no weights cached
    assert in_process(*flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fid-weights" in err[-1]
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    assert in_process(*flags, "--fid-weights", tmp_path / "bad.pth") == 2
    assert "not torch-fidelity's Inception weights" in capsys.readouterr().err
