"""dcgan_celeba.py: whatever a user passes gives one `error:` line and exit 2 (or just works),
never a traceback, and a run refused before training leaves no trace: bad flags and folders,
removed flags, huge numbers, foreign or tampered files (never unpickled), FID without its
package or weights, a last batch of one image."""
import io
import os
import shutil
import sys
import zipfile

import pytest
import torch

import common
import dcgan_celeba
from helpers import CELEBA_SMALL as SMALL, assert_user_error, celeba, make_image_folder, script




def test_missing_folder_is_one_error_line_without_traceback_or_trace(tmp_path):
    r = script("dcgan_celeba.py", "--dataroot", tmp_path / "nothing", "--out", tmp_path / "o",
               check=False)
    assert_user_error(r, "img_align_celeba/*.jpg")
    assert r.stdout.startswith("arguments:")
    assert not (tmp_path / "o").exists()  # a failed run leaves nothing


def bad_inputs(tmp):
    os.makedirs(tmp / "empty")
    os.makedirs(tmp / "zipped")
    (tmp / "zipped" / "img_align_celeba.zip").write_bytes(b"PK\x03\x04")
    os.makedirs(tmp / "nothing_useful" / "img_align_celeba")
    (tmp / "nothing_useful" / "img_align_celeba" / "list.txt").write_text("no images")
    (tmp / "garbage.pt").write_bytes(b"garbage")
    (tmp / "garbage.pt2").write_bytes(b"garbage")
    (tmp / "a_file").write_text("x")
    torch.save({"script": "dcgan_mnist", "args": {}}, tmp / "mnist.pt")
    data, one = tmp / "data", tmp / "one"
    make_image_folder(one, n=1, size=40)
    cases = [
        (["--dataroot", tmp / "empty"], "no images"),
        (["--dataroot", tmp / "nothing_useful"], "img_align_celeba/*.jpg"),
        (["--dataroot", tmp / "zipped"], "unzip"),
        (["--dataroot", tmp / "zipped" / "img_align_celeba.zip"], "unzip"),
        (["--dataroot", one, "--batch-size", 4], "fewer than one --batch-size"),
        (["--image-size", 48], "--image-size"),
        (["--image-size", 512], "--image-size"),
        (["--nc", 4], "--nc"),
        (["--nc", 2], "--nc"),
        (["--batch-size", 0], "--batch-size"),
        (["--batch-size", 1], "--batch-size"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "3.5e38"], "--lr"),
        (["--lr-d", "-1"], "--lr-d"),
        (["--seed", 2**64], "--seed"),
        (["--seed", -1], "--seed"),
        (["--ngf", "1e6"], "--ngf"),
        (["--ndf", 129], "--ndf"),
        (["--nz", "1e8"], "--nz"),
        (["--batch-size", "1e9"], "--batch-size"),
        (["--workers", "1e6"], "--workers"),
        (["--net-capacity", "1e6"], "--net-capacity"),
        (["--d-updates", "1e9"], "--d-updates"),
        (["--log-every", "1e20"], "--log-every"),
        (["--checkpoint-every", "1e20"], "--checkpoint-every"),
        (["--num-samples", "1e9"], "--num-samples"),
        (["--epochs", "1e9"], "--epochs"),
        (["--fid", "1e9"], "--fid"),
        (["--time-budget", 0], "--time-budget"),
        (["--time-budget", "1e300"], "--time-budget"),
        (["--beta2", 1], "[0, 1)"),
        (["--beta2", "-0.1"], "[0, 1)"),
        (["--beta1", 1], "[0, 1)"),
        (["--label-smoothing", 1], "[0, 1)"),
        (["--resume", tmp / "garbage.pt"], "cannot load"),
        (["--resume", tmp / "missing.pt"], "does not exist"),
        (["--resume", tmp / "mnist.pt"], "dcgan_mnist"),
        (["--generate", tmp / "missing.pt"], "does not exist"),
        (["--generate", tmp / "garbage.pt"], "cannot load"),
        (["--generate", tmp / "garbage.pt2"], "generator_weights.pt"),
        (["--generate", tmp / "mnist.pt"], "dcgan_mnist"),
        (["--amp", "fp16", "--dataroot", data], "--amp bf16"),
        (["--amp", "fp32"], "--amp"),
        (["--device", "cuda", "--dataroot", data], "--device cpu"),
        (["--out", tmp / "a_file", "--dataroot", data], "existing file"),
        (["--arch", "encoder-decoder", "--image-size", 32], "--image-size 64"),
        (["--arch", "stylegan"], "--arch"),
        (["--loss", "wgan-lp"], "--loss"),
        (["--clip-value", 0], "--clip-value"),
        (["--filter-size", 4], "--filter-size"),
        (["--label-smoothing", 0.1, "--loss", "hinge"], "--loss bce"),
        (["--ngpu", 2], "--ngpu"),
    ]
    if torch.cuda.is_available():  # --device cuda and --amp fp16 then work
        cases = [c for c in cases if c[1] not in ("--device cpu", "--amp bf16")]
    return cases


def test_bad_input_is_one_clear_error_line_and_leaves_no_trace(tmp_path, capsys):
    make_image_folder(tmp_path / "data", n=2, size=40)
    wrong = []  # every case is tried: the message names all that fail
    for args, message in bad_inputs(tmp_path):
        status = celeba("--out", tmp_path / "o", "--workers", 0, *args)
        err = capsys.readouterr().err.strip().splitlines()
        errors = [line for line in err if line.startswith("error:")]
        left = sorted(os.listdir(tmp_path / "o")) if (tmp_path / "o").exists() else None
        if status != 2 or len(errors) != 1 or message not in errors[0] or left is not None \
                or any("Traceback" in line for line in err):
            wrong.append((args, status, err[-3:], f"left in --out: {left}"))
        shutil.rmtree(tmp_path / "o", ignore_errors=True)
    assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.parametrize("flag", ["--decode-once", "--no-decode-once"])
def test_all_images_corrupt_is_an_error_not_a_crash(tmp_path, capsys, flag):
    folder = tmp_path / "bad"
    os.makedirs(folder)
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"nope")
    out = tmp_path / "out"
    assert celeba("--dataroot", folder, "--out", out, *SMALL, "--dry-run", flag) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "read" in errors[0], errors  # says the files cannot be read
    assert not out.exists()


def test_a_last_batch_of_one_image_is_dropped_not_a_crash(tmp_path, capsys):
    """Batch norm cannot train on one image (the Keras model's BatchNorm1d refuses it)."""
    data = make_image_folder(tmp_path / "celeba", n=5, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, "--arch", "encoder-decoder",
                      "--net-capacity", 4, "--batch-size", 4, "--workers", 0, "--epochs", 1,
                      "--seed", "2e15") == 0
    assert "dataset: 5 images, 1 batches of 4" in capsys.readouterr().out


def weights_file(folder, script_name, settings, state=None):
    folder.mkdir(exist_ok=True)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4))
    common.save_generator(module, (torch.randn(2, 4),), str(folder), script_name, settings)
    path = folder / "generator_weights.pt"
    if state is not None:
        saved = torch.load(path, weights_only=True)
        torch.save(dict(saved, state_dict=state), path)
    return path


def test_generate_refuses_another_scripts_file_and_tampered_settings(tmp_path, capsys):
    other = weights_file(tmp_path / "mnist", "dcgan_mnist", {"nz": 4})
    assert celeba("--generate", other, "--out", tmp_path / "g") == 2
    assert "dcgan_mnist" in capsys.readouterr().err
    settings = {"arch": "dcgan", "nz": 100, "ngf": 8, "nc": 3, "image_size": 32,
                "net_capacity": 16, "filter_size": 5}
    good = dcgan_celeba.Generator(1, 100, 8, 3, 32).state_dict()
    for name, bad in [("huge", dict(settings, ngf=10**6)), ("sizes", dict(settings, nz=-1)),
                      ("image", dict(settings, image_size=48)),
                      ("arch", dict(settings, arch="stylegan")),
                      ("type", dict(settings, ngf=[8])),
                      ("missing", {k: v for k, v in settings.items() if k != "nz"})]:
        path = weights_file(tmp_path / name, "dcgan_celeba", bad, good)
        assert celeba("--generate", path, "--out", tmp_path / "g") == 2, name
        assert "cannot build" in capsys.readouterr().err, name
    wrong = weights_file(tmp_path / "wrong", "dcgan_celeba", settings)  # weights do not fit
    assert celeba("--generate", wrong, "--out", tmp_path / "g") == 2
    assert "cannot build" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()  # refused: nothing written
    fine = weights_file(tmp_path / "fine", "dcgan_celeba", settings, good)
    assert celeba("--generate", fine, "--out", tmp_path / "g", "--num-samples", 4) == 0
    assert (tmp_path / "g" / "generated.png").is_file()


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_generate_never_unpickles_a_tampered_file(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--dry-run") == 0
    marker = tmp_path / "pwned"
    # a weights file and a checkpoint with an object inside that runs code when unpickled
    for name in ("generator_weights.pt", "checkpoint.pt"):
        saved = torch.load(out / name, weights_only=True)
        saved["settings" if "settings" in saved else "args"]["nz"] = Evil(marker)
        torch.save(saved, tmp_path / name)
        capsys.readouterr()
        assert celeba("--generate", tmp_path / name, "--out", tmp_path / "g") == 2
        assert "cannot load" in capsys.readouterr().err
        assert celeba("--resume", tmp_path / name) == 2
        assert "cannot load" in capsys.readouterr().err
    # the exported program's sample inputs swapped for such an object: never loaded at all
    payload = io.BytesIO()
    torch.save(Evil(marker), payload)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(out / "generator.pt2") as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            blob = src.read(item)
            if item.filename.endswith(".pt") or "sample_inputs" in item.filename:
                blob = payload.getvalue()
            dst.writestr(item, blob)
    assert celeba("--generate", tampered, "--out", tmp_path / "g") == 2
    assert "generator_weights.pt" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "g").exists()
    # the untouched files work
    assert celeba("--generate", out / "generator_weights.pt", "--out", tmp_path / "g",
                      "--num-samples", 4) == 0
    assert not marker.exists() and (tmp_path / "g" / "generated.png").is_file()


def test_fid_errors_missing_package_offline_and_bad_weights_are_one_line(tmp_path, monkeypatch,
                                                                          capsys):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    out = tmp_path / "o"
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--dry-run", "--fid", 4,
             "--out", out]
    with monkeypatch.context() as m:
        for name in [n for n in sys.modules if n.startswith("torch_fidelity")] + \
                ["torch_fidelity"]:  # as if not installed, even after another test used it
            m.setitem(sys.modules, name, None)
        assert celeba(*flags) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "pip install -r requirements-fid.txt" in error[0], error
        assert not out.exists()  # refused before training
    pytest.importorskip("torch_fidelity", reason="torch-fidelity is optional "
                        "(requirements-fid.txt)")
    for bad in (tmp_path / "missing.pth", tmp_path / "bad.pth"):
        (tmp_path / "bad.pth").write_bytes(b"not a state dict")
        assert celeba(*flags, "--fid-weights", bad) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("error:") and "--fid-weights" in error[0]
        assert not out.exists()  # refused before training
    # offline, with no weights cached: torch-fidelity cannot download them, one line says how
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    assert celeba(*flags) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--fid-weights" in errors[0] and "Traceback" not in err, err
