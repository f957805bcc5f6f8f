"""dcgan_mnist.py: what a user can get wrong is one `error:` line and exit 2 (no traceback),
a failed run leaves no trace, and the offline advice works."""
import os
import shutil

import pytest
import torch

import common
import dcgan_mnist
from helpers import assert_user_error, in_process, make_mnist, script


@pytest.mark.parametrize("flags, word", [
    (["--arch", "dropout", "--batch-size", "1"], "--batch-size"),  # batch norm on one image
    (["--z-dim", "1e9"], "--z-dim"),
    (["--epochs", "0"], "--epochs"),
    (["--real-label", "1.5"], "--real-label"),
    (["--g-updates", "100"], "--g-updates"),
    (["--label", "3"], "--label"),
])
def test_bad_flags_are_one_line_errors(flags, word, capsys):
    assert in_process(dcgan_mnist.main, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and word in err and len(err.strip().splitlines()) == 1


def test_generate_says_which_file_to_pass(tmp_path, capsys):
    other = tmp_path / "celeba"
    os.makedirs(other)
    common.save_generator(torch.nn.Linear(2, 2), (torch.randn(2, 2),), str(other),
                          "dcgan_celeba", {})
    cases = [(other / "generator_weights.pt", "dcgan_celeba.py"),  # another script's file
             (other / "generator.pt2", "generator_weights.pt"),  # the exported program
             (tmp_path / "missing.pt", "does not exist")]
    # settings a tampered file could hold: no absurd sizes built; a missing key; wrong weights
    for k, settings in enumerate(({"arch": "cookbook", "z_dim": 10**9, "n_classes": 0,
                                   "batchnorm": True}, {"arch": "cookbook", "z_dim": 100},
                                  {"arch": "cookbook", "z_dim": 100, "n_classes": 0,
                                   "batchnorm": True})):
        common.save_generator(torch.nn.Linear(2, 2), (torch.randn(2, 2),), str(tmp_path),
                              "dcgan_mnist", settings)
        shutil.move(tmp_path / "generator_weights.pt", tmp_path / f"forged{k}.pt")
        cases.append((tmp_path / f"forged{k}.pt", "can rebuild"))
    # the PNG tutorial's G with its own weights, but settings that claim classes it cannot take
    common.save_generator(dcgan_mnist.Generator(16), (torch.randn(2, 16),), str(tmp_path),
                          "dcgan_mnist", {"arch": "dropout", "z_dim": 16, "n_classes": 10,
                                          "batchnorm": True})
    cases.append((tmp_path / "generator_weights.pt", "can rebuild"))
    for path, words in cases:
        assert in_process(dcgan_mnist.main, "--generate", path, "--out", tmp_path / "g") == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and words in err, err
    assert not (tmp_path / "g").exists()  # no trace


def test_offline_mnist_fails_without_a_trace_and_its_advice_works(tmp_path, capsys):
    data = tmp_path / "data"
    p = script("dcgan_mnist.py", "--dataroot", data, "--dry-run", "--out", tmp_path / "a",
               check=False, cwd=tmp_path)
    raw = os.path.join(str(data), "MNIST", "raw")
    assert raw in assert_user_error(p, "MNIST", "train-images-idx3-ubyte",
                                    "--dataset folder --dataroot")  # the other way to go on
    assert not data.exists() and not (tmp_path / "a").exists()  # no empty MNIST/raw, no --out
    make_mnist(data, n=40)  # the files put where the error says
    script("dcgan_mnist.py", "--dataroot", data, "--no-download", "--dry-run", "--subset", 30,
           "--out", tmp_path / "b")
    assert (tmp_path / "b" / "generator.pt2").is_file()
    # --resume continues the run it names, on its data: other data are refused
    assert in_process(dcgan_mnist.main, "--resume", tmp_path / "b" / "checkpoint.pt",
                      "--subset", 20) == 2
    assert "--subset 20 differs" in capsys.readouterr().err
    assert in_process(dcgan_mnist.main, "--dataset", "folder", "--dataroot", tmp_path / "no",
                      "--out", tmp_path / "x") == 2
    assert "class subfolders" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "no").exists()
