"""dcgan_mnist.py trains as the tutorials do and writes what it promises: the PNG-folder
tutorial's ImageFolder path, conditional labels, honest metrics and figures, --generate."""
import os

import torch
from PIL import Image

from helpers import make_mnist, rows, script


def test_conditional_run_metrics_figures_and_generate(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    out = tmp_path / "run"
    p = script("dcgan_mnist.py", "--dataroot", root, "--conditional", "--epochs", 2,
               "--batch-size", 16, "--log-every", 2, "--eval-samples", 200, "--g-updates", 2,
               "--out", out)
    assert "training the quality classifier" in p.stdout and "Frechet" in p.stdout
    assert "-0.00" not in p.stdout and " inf" not in p.stdout
    table = rows(out / "metrics.csv")
    losses = [r for r in table if r["g_loss"]]
    assert [int(r["iteration"]) for r in losses] == [0, 2, 4, 6, 7]  # iterations, not records
    quality = [r for r in table if r["frechet"]]
    assert len(quality) == 2 and all(r["g_loss"] == r["d_loss"] == "" for r in quality)
    assert all(float(r["frechet"]) >= 0 and r["label_accuracy"] for r in quality)
    for name in ("losses.png", "fake_samples.png", "progress.gif", "real_vs_fake.png"):
        assert (out / name).stat().st_size > 0
    program = torch.export.load(str(out / "generator.pt2")).module()
    images = program(torch.randn(3, 100), torch.tensor([0, 1, 2]))
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    script("dcgan_mnist.py", "--generate", out / "generator.pt2", "--label", 7,
           "--num-samples", 5, "--out", tmp_path / "gen")
    assert (tmp_path / "gen" / "generated.png").stat().st_size > 0


def test_png_folder_tutorial_path_skips_broken_files(tmp_path):
    root = tmp_path / "mnist_png" / "training"
    for i in range(20):
        os.makedirs(root / str(i % 2), exist_ok=True)
        Image.new("RGB", (28, 28), (i * 10, i * 10, i * 10)).save(root / str(i % 2) / f"{i}.png")
    (root / "1" / "broken.png").write_bytes(b"not a png")
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--tutorial",
               "--arch", "dropout", "--no-batchnorm", "--batch-size", 4, "--epochs", 1,
               "--no-eval", "--workers", 1, "--out", tmp_path / "run")
    assert "Epoch 1; Elapsed time = " in p.stdout and "Epoch : | 001 / 001 |" in p.stdout
    assert "skipped 1 unreadable" in p.stderr
    assert "--no-decode-once" in p.stdout.splitlines()[0]  # --tutorial: files every epoch
    assert (tmp_path / "run" / "generator.pt2").is_file()


def test_samples_use_batchnorm_statistics_of_their_own_weights(tmp_path):
    """After a few iterations G's running statistics are mostly their initial values and belong
    to older weights (and the moving average of G never had its own): the export's must be
    those of its weights, so that eval-mode samples match what those weights draw in train mode
    (batch statistics) instead of a washed-out picture."""
    import dcgan_mnist
    from common import load_generator
    root = make_mnist(tmp_path / "data", n=64)
    out = tmp_path / "run"
    script("dcgan_mnist.py", "--dataroot", root, "--epochs", 1, "--batch-size", 16,
           "--no-eval", "--out", out)
    state, settings = load_generator(str(out / "generator.pt2"), "dcgan_mnist")
    g = dcgan_mnist.build_generator(settings)
    g.load_state_dict(state)
    z = torch.randn(512, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        gap = (g.eval()(z) - g.train()(z)).abs().mean().item()
    assert gap < 0.05, gap
