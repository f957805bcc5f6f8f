"""dcgan_mnist.py trains as the tutorials do and writes what it promises: conditional labels,
honest metrics and figures, --generate; the PNG-folder tutorial's ImageFolder path; a quality
reference that covers every class of a folder; nothing written into --dataroot."""
import os
import re

import numpy as np
import torch
from PIL import Image

import common
import dcgan_mnist
from helpers import in_process, make_mnist, rows, script

WARNINGS = {"PYTHONWARNINGS": "default::DeprecationWarning"}


def digit_folder(root, per_class, size=28):
    """A 10-class PNG folder (as mnist_png/training) of digit-like images in class order: a bar
    whose column is the class, on noise."""
    rng = np.random.default_rng(0)
    for c in range(10):
        os.makedirs(root / str(c), exist_ok=True)
        for k in range(per_class):
            img = rng.integers(0, 40, size=(size, size)).astype(np.uint8)
            img[4:24, 3 + 2 * c:5 + 2 * c] = 255
            Image.fromarray(img).save(root / str(c) / f"{k:04d}.png")
    return root


def test_conditional_run_metrics_figures_and_generate(tmp_path, capsys):
    root = make_mnist(tmp_path / "data", n=64)
    out, cache = tmp_path / "run", tmp_path / "cache"
    p = script("dcgan_mnist.py", "--dataroot", root, "--conditional", "--epochs", 2,
               "--batch-size", 16, "--log-every", 2, "--eval-samples", 200, "--g-updates", 2,
               "--out", out, env={"XDG_CACHE_HOME": str(cache), **WARNINGS})
    assert "DeprecationWarning" not in p.stderr, p.stderr[-2000:]
    assert p.stdout.count(str(cache / "gan-examples")) == 1  # the cache path, named once
    assert "ratio = most / least" in p.stdout and "-0.00" not in p.stdout
    assert "label accuracy = how often" in p.stdout  # explained: the run asks for classes
    verdicts = re.findall(r"^quality: .*, Frechet ([\d.]+), .* vs ([\d.]+) for real images: "
                          r"(close to|getting closer to|far from) the real images", p.stdout, re.M)
    assert len(verdicts) == 2, p.stdout  # one per epoch, beside the figures
    for fake, real, verdict in verdicts:
        assert (verdict == "close to") == (float(fake) <= 2 * float(real) + 2)
    table = rows(out / "metrics.csv")
    losses = [r for r in table if r["g_loss"]]
    assert [int(r["iteration"]) for r in losses] == [0, 2, 4, 6, 7]  # iterations, not records
    quality = [r for r in table if r["frechet"]]
    assert len(quality) == 2 and all(r["g_loss"] == r["d_loss"] == "" for r in quality)
    assert all(float(r["frechet"]) >= 0 and r["label_accuracy"] for r in quality)
    for name in ("losses.png", "fake_samples.png", "fake_iter_000000.png"):
        assert (out / name).stat().st_size > 0
    assert sorted(os.listdir(root)) == ["MNIST"]  # nothing written into --dataroot
    program = torch.export.load(str(out / "generator.pt2")).module()
    images = program(torch.randn(3, 100), torch.tensor([0, 1, 2]))
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    # The saved generator's batch-norm statistics are those of its own weights (a few
    # iterations' running statistics are mostly their initial values, and the average of G
    # never had its own): eval-mode samples match what its weights draw in train mode.
    saved = common.load_checkpoint(str(out / "generator_weights.pt"), "dcgan_mnist")
    assert saved["settings"] == {"arch": "cookbook", "z_dim": 100, "batchnorm": True,
                                 "n_classes": 10}
    g = dcgan_mnist.Generator_model(100, 10)
    g.load_state_dict(saved["state_dict"])
    z, want = torch.randn(500, 100, generator=torch.Generator().manual_seed(1)), \
        torch.arange(500) % 10
    with torch.no_grad():
        gap = (g.eval()(z, want) - g.train()(z, want)).abs().mean().item()
    assert gap < 0.05, gap
    assert in_process(dcgan_mnist.main, "--generate", out / "generator_weights.pt", "--label", 7,
                      "--num-samples", 5, "--out", tmp_path / "gen") == 0
    assert (tmp_path / "gen" / "generated.png").stat().st_size > 0
    capsys.readouterr()
    # --generate reads generator_weights.pt only: given the checkpoint, it names that file
    assert in_process(dcgan_mnist.main, "--generate", out / "checkpoint.pt", "--out",
                      tmp_path / "from_ckpt") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "generator_weights.pt" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "from_ckpt").exists()


def test_png_folder_tutorial_path_skips_broken_files(tmp_path):
    root = tmp_path / "mnist_png" / "training"
    for i in range(20):
        os.makedirs(root / str(i % 2), exist_ok=True)
        Image.new("RGB", (32, 32), (i * 10, i * 10, i * 10)).save(root / str(i % 2) / f"{i}.png")
    (root / "1" / "broken.png").write_bytes(b"not a png")
    (root / "0" / "notes.txt").write_text("not an image file: ignored, as ImageFolder does")
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--tutorial",
               "--arch", "dropout", "--no-batchnorm", "--batch-size", 4, "--epochs", 1,
               "--no-eval", "--workers", 1, "--out", tmp_path / "run")
    assert p.stdout.count("Epoch 1; Elapsed time = ") == 1  # its header, once
    assert "Epoch : |" not in p.stdout  # (the cookbook's header is the cookbook networks')
    assert "skipped 1 unreadable" in p.stderr and "broken.png" in p.stderr
    first = p.stdout.splitlines()[0]
    assert "--no-decode-once" in first  # --tutorial: the files decoded every epoch
    assert "--download" not in first and "--eval-samples" not in first  # flags that act only
    assert (tmp_path / "run" / "generator.pt2").is_file()


def test_quality_reference_covers_every_class_of_a_folder(tmp_path):
    """The real-vs-real reference is drawn across the classes (a seeded stratified split): on
    a folder in class order it sees all 10 digits, evenly, and a small Frechet distance; the
    classifier is cached in the user cache folder, not in --dataroot."""
    root = digit_folder(tmp_path / "png", per_class=30)
    p = script("dcgan_mnist.py", "--dataset", "folder", "--dataroot", root, "--dry-run",
               "--eval", "--eval-samples", 100, "--out", tmp_path / "a",
               env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    line = next(x for x in p.stdout.splitlines() if x.startswith("real images: "))
    assert line.startswith("real images: classes 10/10, ratio "), line
    ratio, frechet = float(line.split("ratio ")[1].split(",")[0]), float(line.split()[-1])
    assert ratio <= 1.5 and frechet < 5, line
    assert "trained; cached in " + str(tmp_path / "cache" / "gan-examples") in p.stdout
    assert "label accuracy" not in p.stdout  # an unconditional run asks for no class
    assert sorted(os.listdir(root)) == [str(c) for c in range(10)]  # nothing in --dataroot


def test_stratified_halves_hold_every_class_in_its_share():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)  # in class order, as folders are
    fit, held_out = dcgan_mnist.stratified_halves(labels)
    assert len(set(fit.tolist()) | set(held_out.tolist())) == 100
    for half in (fit, held_out):
        assert torch.bincount(labels[half]).tolist() == [25, 15, 10]
        assert torch.bincount(labels[half[:10]], minlength=3).tolist() == [5, 3, 2]  # prefix


# The cookbook's statements, as written or with their names and call heads (adapted), which
# must stay in plain sight and in its order, before any appendix.
COOKBOOK = [
    "transform = transforms.Compose([", "transforms.ToTensor(),",
    "transforms.Normalize((0.5, ), (0.5, )),", "device = torch.device(",
    "class Generator_model(nn.Module):", "self.fc = nn.Linear(z_dim, 256 * 7 * 7)",
    "self.gen = nn.Sequential(", "x = self.fc(input)", "x = x.view(-1, 256, 7, 7)",
    "return self.gen(x)", "class Discriminator_model(nn.Module):", "self.disc = nn.Sequential(",
    "nn.Conv2d(1, 32, 3, 2, 1),", "self.fc = nn.Linear(2048, 1)", "x = self.disc(input)",
    "def weights_init(m):", "classname = m.__class__.__name__",
    "generator = Generator_model(z_dim", "discriminator = Discriminator_model(",
    "generator.apply(weights_init)", "discriminator.apply(weights_init)",
    "summary(generator, (", "summary(discriminator, (1, 28, 28)", "criterion = nn.BCE",
    "fixed_noise = torch.randn(64, z_dim, device=device)",
    "doptimizer = optim.Adam(discriminator.parameters()",
    "goptimizer = optim.Adam(generator.parameters()", "real_label, fake_label =",
    "image_list = []", "g_losses = []", "d_losses = []", "iterations = 0", "num_epochs =",
    "for epoch in range(", "print(f'Epoch : | {epoch+1:03} / {num_epochs:03} |')",
    "discriminator.zero_grad()", "real_images = data[0].to(device)",
    "size = real_images.size(0)", "label = torch.full((size,), real_label, device=device)",
    "d_output = discriminator(real_images", "derror_real = criterion(d_output, label)",
    "scaler.scale(derror_real).backward()", "noise = torch.randn(size, z_dim, device=device)",
    "fake_images = generator(noise", "label.fill_(0)",
    "d_output = discriminator(fake_images.detach()", "derror_fake = criterion(d_output, label)",
    "scaler.scale(derror_fake).backward()", "derror_total = derror_real + derror_fake",
    "scaler.step(doptimizer)",
    "generator.zero_grad()", "label.fill_(1)", "d_output = discriminator(fake_images,",
    "gerror = criterion(d_output, label)", "scaler.scale(gerror).backward()",
    "scaler.step(goptimizer)",
    "print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '",
    "g_losses.append(gerror.item())", "d_losses.append(derror_total.item())",
    "with torch.no_grad():", "image_list.append(vutils.make_grid(fake_images, padding=2, normal",
    "iterations += 1", "plt.figure(figsize=(10,5))",
    'plt.title("Generator and Discriminator Loss During Training")', 'plt.xlabel("iterations")',
    'plt.ylabel("Loss")', "plt.legend()", "for image in image_list",
    "plt.imshow(np.transpose(image",
]


def test_the_cookbook_reads_in_its_order_before_the_appendices():
    lines = [" ".join(x.split()) for x in open(dcgan_mnist.__file__).read().splitlines()]
    at = 0
    for statement in COOKBOOK:
        at = next((n for n in range(at, len(lines)) if statement in lines[n]), None)
        assert at is not None, f"not found in order: {statement}"
    assert at < next(n for n, x in enumerate(lines) if x.startswith("# == Appendix"))
