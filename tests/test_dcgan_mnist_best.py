"""dcgan_mnist.py keeps the generator of its best epoch by its Frechet figure (OUT/best/, kept
across --resume, readable by --generate), shows whether it copies (nearest.png, the copying
ratio against images it never trained on), and --generate --interpolate draws noise paths."""
import os
import re

import torch
from PIL import Image

import dcgan_mnist
from helpers import in_process, make_mnist, rows, script


def state(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_best_epoch_generator_is_kept_and_generate_reads_it(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    flags = ["--dataroot", root, "--batch-size", 16, "--eval", "--eval-samples", 100,
             "--conditional", "--log-every", 100]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    for epochs in (1, 2):  # the same run stopped after each epoch: its generator then
        script("dcgan_mnist.py", *flags, "--epochs", epochs, "--out", tmp_path / f"e{epochs}",
               env=env)
    out = tmp_path / "e2"
    figures = [float(r["frechet"]) for r in rows(out / "metrics.csv") if r["frechet"]]
    best = figures.index(min(figures)) + 1
    kept, that_epoch = state(out / "best" / "generator_weights.pt"), state(
        tmp_path / f"e{best}" / "generator_weights.pt")
    assert kept.keys() == that_epoch.keys()
    assert all(torch.allclose(kept[k], that_epoch[k], atol=1e-6) for k in kept), best
    assert torch.load(out / "checkpoint.pt", weights_only=True)["best"] == [best, min(figures)]
    assert (out / "best" / "generator.pt2").is_file()
    # resumed for a 3rd epoch: the best so far stays unless the new epoch beats it
    p = script("dcgan_mnist.py", "--resume", out / "checkpoint.pt", "--epochs", 3, env=env)
    figures = [float(r["frechet"]) for r in rows(out / "metrics.csv") if r["frechet"]]
    assert len(figures) == 3
    assert f"best: epoch {figures.index(min(figures)) + 1}, Frechet {min(figures):.2f}" in p.stdout
    assert in_process(dcgan_mnist.main, "--generate", out / "best" / "generator_weights.pt",
                      "--label", 3, "--num-samples", 8) == 0
    assert (out / "best" / "generated" / "generated.png").is_file()


def test_generate_interpolate_draws_rows_between_two_noise_points(tmp_path, capsys):
    root = make_mnist(tmp_path / "data", n=40)
    script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--out", tmp_path / "run")
    weights = tmp_path / "run" / "generator_weights.pt"
    for _ in range(2):
        assert in_process(dcgan_mnist.main, "--generate", weights, "--interpolate", 6,
                          "--num-samples", 24, "--out", tmp_path / "i") == 0
    first = torch.load(tmp_path / "i" / "interpolation.pt", weights_only=True)
    assert first.shape == (24, 1, 28, 28)  # 4 rows of 6
    assert (tmp_path / "i" / "interpolation.png").is_file()
    assert (tmp_path / "i" / "interpolation-2.pt").is_file()  # the second beside the first
    rows_ = first.view(4, 6, -1)
    steps = (rows_[:, 1:] - rows_[:, :-1]).abs().mean(2)  # neighbours along a row: small steps
    ends = (rows_[:, -1] - rows_[:, 0]).abs().mean(1)
    assert (steps.max(1).values <= ends + 1e-6).all()
    assert in_process(dcgan_mnist.main, "--interpolate", 4) == 2  # needs --generate
    assert "--interpolate" in capsys.readouterr().err


def test_nearest_images_and_copying_ratio_against_unseen_images(tmp_path):
    root = make_mnist(tmp_path / "data", n=100)
    p = script("dcgan_mnist.py", "--dataroot", root, "--subset", 60, "--epochs", 1, "--no-eval",
               "--out", tmp_path / "o")
    ratio = re.search(r"^copying ratio ([\d.]+) \(distance to the nearest of (\d+) training",
                      p.stdout, re.M)
    assert ratio and 0.5 < float(ratio.group(1)) < 2, p.stdout[-1000:]  # untrained: about 1
    assert int(ratio.group(2)) == 40  # the 40 images --subset left out, and 40 of the 60
    with Image.open(tmp_path / "o" / "nearest.png") as image:  # 8 rows: a sample, 3 nearest
        assert image.size == (4 * 30 + 2, 8 * 30 + 2)
    flat = tmp_path / "flat"  # a folder trained whole has no unseen images: a note, no figure
    os.makedirs(flat)
    for k in range(12):
        Image.new("L", (28, 28), 20 * k).save(flat / f"{k}.png")
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", flat, "--dry-run", "--out",
               tmp_path / "f")
    assert "note: no copying ratio" in p.stdout and not (tmp_path / "f" / "nearest.png").exists()
