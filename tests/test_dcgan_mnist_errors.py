"""dcgan_mnist.py: what a user can get wrong is one `error:` line and exit 2 (no traceback),
and the offline advice works: MNIST's .gz files put where the error says are used."""
import gzip
import os

import pytest
import torch

import common
import dcgan_mnist
from helpers import assert_user_error, make_mnist, script


@pytest.mark.parametrize("flags, word", [
    (["--arch", "dropout", "--batch-size", "1"], "--batch-size"),  # batch norm on one image
    (["--z-dim", "1e9"], "--z-dim"),
    (["--epochs", "0"], "--epochs"),
    (["--real-label", "1.5"], "--real-label"),
    (["--g-updates", "100"], "--g-updates"),
    (["--label", "3"], "--label"),
])
def test_bad_flags_are_one_line_errors(flags, word, capsys):
    with pytest.raises(SystemExit) as e:
        dcgan_mnist.main(flags)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and word in err and len(err.strip().splitlines()) == 1


def test_foreign_and_broken_generators_are_refused(tmp_path, capsys):
    for other in ("dcgan_celeba", "exponential_gan"):  # another script's .pt2, chapter 3's too
        path = common.export_generator(torch.nn.Linear(2, 2), (torch.randn(2, 2),),
                                       str(tmp_path / f"{other}.pt2"), other, {})
        assert common.run(dcgan_mnist.main, ["--generate", path, "--out", str(tmp_path)]) == 2
        assert f"{other}.py" in capsys.readouterr().err
    (tmp_path / "junk.pt2").write_bytes(b"PK\x03\x04 not a zip")
    assert common.run(dcgan_mnist.main, ["--generate", str(tmp_path / "junk.pt2")]) == 2
    forged = common.export_generator(torch.nn.Linear(2, 2), (torch.randn(2, 2),),
                                     str(tmp_path / "forged.pt2"), "dcgan_mnist",
                                     {"arch": "cookbook", "z_dim": 10**9, "n_classes": 0})
    assert common.run(dcgan_mnist.main, ["--generate", forged, "--out", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_offline_mnist_error_and_its_advice(tmp_path):
    data = tmp_path / "data"
    p = script("dcgan_mnist.py", "--dataroot", data, "--dry-run", "--out", tmp_path / "a",
               check=False)
    raw = os.path.join(str(data), "MNIST", "raw")
    assert raw in assert_user_error(p, "MNIST", ".gz")
    make_mnist(tmp_path / "made", n=40)  # recompressed .gz copies (other checksums): accepted
    os.makedirs(raw, exist_ok=True)
    made = tmp_path / "made" / "MNIST" / "raw"
    for name in os.listdir(made):
        with open(made / name, "rb") as f, gzip.open(os.path.join(raw, name + ".gz"), "wb") as g:
            g.write(f.read())
    script("dcgan_mnist.py", "--dataroot", data, "--no-download", "--dry-run", "--out",
           tmp_path / "b")
    assert (tmp_path / "b" / "generator.pt2").is_file()


def test_resume_refuses_other_data(tmp_path):
    root = make_mnist(tmp_path / "data", n=40)
    script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--subset", 30, "--out",
           tmp_path / "run")
    p = script("dcgan_mnist.py", "--resume", tmp_path / "run" / "checkpoint.pt", "--subset",
               20, check=False)
    assert_user_error(p, "--subset", "differs")
