"""dcgan_celeba.py trains as the DCGAN tutorial does: its networks, its outputs, its figures, on
small real JPEG folders made here (the tutorial's img_align_celeba/ layout and a flat folder)."""
import os

import torch
from PIL import Image

import common
import dcgan_celeba
import helpers
from helpers import ckpt, make_image_folder, rows, script

OUTPUTS = ["generator.pt2", "checkpoint.pt", "metrics.csv", "training_images.png", "losses.png",
           "progress.gif", "real_vs_fake.png", "fake_samples.png"]
SMALL = ["--image-size", 32, "--workers", 0, "--ngf", 8, "--ndf", 8]


def in_process(*args):
    return helpers.in_process(dcgan_celeba.main, *args)


# -- the networks are the tutorial's at 64, and scale to other sizes ---------------------------
TUTORIAL_G = [("ConvTranspose2d", 100, 512, 1), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 512, 256, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 256, 128, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 128, 64, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 64, 3, 2), ("Tanh",)]


def layer_list(model):
    return [(type(m).__name__, m.in_channels, m.out_channels, m.stride[0])
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
            else (type(m).__name__,) for m in model.main]


def test_networks_at_64_are_the_tutorials_and_other_sizes_work():
    netG = dcgan_celeba.Generator(1)
    assert layer_list(netG) == TUTORIAL_G
    netD = dcgan_celeba.Discriminator(1)
    # the tutorial's D minus its final Sigmoid (logits; BCE with logits)
    assert [r[0] for r in layer_list(netD)] == ["Conv2d", "LeakyReLU"] + \
        ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3 + ["Conv2d"]
    assert sum(p.numel() for p in netG.parameters()) == 3576704  # the tutorial's netG
    assert sum(p.numel() for p in netD.parameters()) == 2765568  # its netD (Sigmoid has none)
    for size in (32, 64, 128, 256):
        g = dcgan_celeba.Generator(1, image_size=size).eval()
        d = dcgan_celeba.Discriminator(1, image_size=size).eval()
        with torch.no_grad():
            x = g(torch.randn(2, 100, 1, 1))
            assert x.shape == (2, 3, size, size)
            assert d(x).shape == (2, 1, 1, 1)


def test_the_tutorials_statements_appear_in_its_order():
    """A reader with the tutorial open finds its statements in the script, in its order."""
    with open(os.path.join(os.path.dirname(dcgan_celeba.__file__), "dcgan_celeba.py")) as f:
        source = f.read()
    steps = ["manualSeed = args.seed", "dataset = ImageFolder(root=", "transforms.Resize(",
             "transforms.CenterCrop(", "transforms.Normalize(", "# Create the dataloader",
             "def weights_init(m):", "class Generator(nn.Module):",
             "class Discriminator(nn.Module):", "# Plot some training images",
             "netG = Generator(ngpu", "netG.apply(weights_init)", "print(netG)",
             "netD = Discriminator(ngpu", "netD.apply(weights_init)", "print(netD)",
             "fixed_noise = latent(64", "real_label = 1.", "fake_label = 0.",
             "optimizerD = optim.Adam(", "optimizerG = optim.Adam(", "img_list = []",
             "G_losses = []", "D_losses = []", "iters = 0", 'print("Starting Training Loop...")',
             "for epoch in range(", "errD_real = criterion(output, label)", "D_x = prob(",
             "errD_fake = criterion(output, label)", "D_G_z1 = prob(",
             "errD = errD_real + errD_fake",
             "errG = criterionG(output, label)", "D_G_z2 = prob(", "'[%d/%d][%d/%d]\\tLoss_D: %.4f",
             "img_list.append(vutils.make_grid(", "iters += 1",
             'plt.title("Generator and Discriminator Loss During Training")',
             "animation.ArtistAnimation(", 'plt.title("Real Images")', 'plt.title("Fake Images")']
    # the definitions in the tutorial's order, then its statements in train() and training()
    data = source[source.index("def load_data("):]
    positions = [data.index(s) for s in steps[1:9]]  # the Data step, then the networks' classes
    assert positions == sorted(positions)
    train = source[source.index("def train("):]
    positions = [train.index(s) for s in steps[:1] + steps[9:]]
    assert positions == sorted(positions), [s for s, p in zip(steps[:1] + steps[9:], positions)]
    loop = train[train.index("    for epoch in range("):train.index("            iters += 1")]
    assert loop.count("\n") <= 100
    assert max(len(line) for line in source.splitlines() if "https://" not in line) <= 100


def test_help_is_grouped_and_tutorial_gives_its_exact_settings(tmp_path):
    r = script("dcgan_celeba.py", "--help")
    for group in ("the tutorial's inputs:", "data and speed:", "advanced topics", "evaluation:",
                  "run control:"):
        assert group in r.stdout
    assert "(default: None)" not in r.stdout and "--ngpu" not in r.stdout
    args = dcgan_celeba.parse_args(["--tutorial"])
    assert (args.batch_size, args.lr, args.beta1, args.image_size, args.amp, args.cache,
            args.channels_last, args.workers) == (128, 0.0002, 0.5, 64, "off", False, False, 2)
    assert dcgan_celeba.parse_args(["--tutorial", "--batch-size", "64"]).batch_size == 64


# -- the tutorial, end to end ------------------------------------------------------------------
def test_dry_run_in_the_tutorials_layout_writes_every_output(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=12, size=48, corrupt=True)
    out = tmp_path / "out"
    r = script("dcgan_celeba.py", "--dataroot", data, "--out", out, "--dry-run",
               "--batch-size", 8, "--workers", 0, "--no-cache")
    assert r.stdout.startswith("arguments: python dcgan_celeba.py ")
    assert "Random Seed:  999" in r.stdout and "device: cpu" in r.stdout
    assert "(12): ConvTranspose2d(64, 3, kernel_size=(4, 4)" in r.stdout  # the printed netG
    assert "[0/5][0/2]\tLoss_D:" in r.stdout and "img/s" in r.stdout
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    g = torch.export.load(str(out / "generator.pt2")).module()
    x = g(torch.randn(5, 100, 1, 1))
    assert x.shape == (5, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    row = rows(out / "metrics.csv")[0]
    assert {"epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2",
            "images_per_sec", "fid", "inception_score"} <= row.keys()
    assert 0 <= float(row["d_x"]) <= 1 and 0 <= float(row["d_g_z1"]) <= 1 and row["fid"] == ""
    c = ckpt(out / "checkpoint.pt")
    assert c["script"] == "dcgan_celeba" and c["args"]["image_size"] == 64
    assert c["iters"] == 1 and len(c["G_losses"]) == 1
    # the arguments line can be pasted back: it parses to the same settings
    words = r.stdout.splitlines()[0].split()[3:]
    assert vars(dcgan_celeba.parse_args(words))["batch_size"] == 8


def test_flat_folder_32px_skips_the_corrupt_file_and_generate_writes_samples(tmp_path, capsys):
    data = make_image_folder(tmp_path / "flat", n=15, size=40, flat=True, corrupt=True)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, "--image-size", 32, "--batch-size", 4,
                      "--no-cache", "--epochs", 1, "--workers", 2, "--log-every", 2,
                      "--sample-every", 2) == 0
    printed = capsys.readouterr()
    assert "skipped 1 unreadable image file" in printed.err and "Traceback" not in printed.err
    assert "dataset: 16 images" in printed.out and "[0/1][3/4]" in printed.out
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["batch"] == 0 and c["iters"] == 4 and len(c["D_losses"]) == 4
    assert len(c["img_list"]) == 3  # iterations 0 and 2, and the end
    assert Image.open(out / "progress.gif").n_frames == 3
    gen = tmp_path / "gen"
    assert in_process("--generate", out / "generator.pt2", "--num-samples", 9, "--out", gen,
                      "--save-images", gen / "each", "--interpolate", 5) == 0
    assert Image.open(gen / "generated.png").size == (3 * 34 + 2, 3 * 34 + 2)  # 3x3 of 32px
    assert len(os.listdir(gen / "each")) == 9
    assert Image.open(gen / "each" / "sample_00000.png").size == (32, 32)
    assert Image.open(gen / "interpolation.png").size == (5 * 34 + 2, 34 + 2)
    assert not (gen / "checkpoint.pt").exists()  # nothing trained


def test_image_size_128_trains_and_exports_128px(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=4, size=64)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, "--image-size", 128, "--batch-size", 4,
                      "--dry-run", "--workers", 0, "--ngf", 8, "--ndf", 8) == 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    assert g(torch.randn(3, 100, 1, 1)).shape == (3, 3, 128, 128)


def test_a_short_run_draws_real_samples_not_flat_grey(tmp_path):
    """Four iterations: the exported generator and the grids vary like the training batches
    (eval-mode sampling with batch-norm statistics recomputed), not a flat grey."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1, "--log-every", 1) == 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    with torch.no_grad():
        x = g(torch.randn(64, 100, 1, 1))
    train_std = float(rows(out / "metrics.csv")[-1]["fake_std"])
    assert x.std(0).mean() > 0.3 * train_std > 0.01
    grid = ckpt(out / "checkpoint.pt")["img_list"][-1].float()
    assert grid.std() > 10  # uint8 grid: not one flat colour


def test_amp_bf16_channels_last_and_flips_train_on_cpu(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1, "--amp", "bf16", "--channels-last", "--hflip") == 0
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] == 2 and all(map(torch.isfinite, torch.tensor(c["G_losses"] +
                                                                     c["D_losses"])))
    assert all(v.dtype == torch.float32 for v in c["netG"].values() if v.is_floating_point())
    x = torch.export.load(str(out / "generator.pt2")).module()(torch.randn(2, 100, 1, 1))
    assert x.dtype == torch.float32 and x.shape == (2, 3, 32, 32)


def test_time_budget_stops_cleanly_with_every_output_and_resumes(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1000, "--time-budget", 1.5, "--log-every", 1) == 0
    assert "--time-budget 1.5 s spent" in capsys.readouterr().out
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    c = ckpt(out / "checkpoint.pt")
    assert 1 <= c["iters"] < 2000 and c["epoch"] < 1000
    assert in_process("--resume", out / "checkpoint.pt", "--time-budget", 0.5) == 0
    assert ckpt(out / "checkpoint.pt")["iters"] > c["iters"]


# -- the decoded-image cache --------------------------------------------------------------------
def test_cache_holds_exactly_what_the_tutorials_transform_gives(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=5, size=45)
    args = dcgan_celeba.parse_args(["--dataroot", data, "--image-size", "32", "--workers", "0"])
    tf = dcgan_celeba.transforms
    tutorial = tf.Compose([tf.Resize(32), tf.CenterCrop(32), tf.ToTensor(),
                           tf.Normalize((0.5,) * 3, (0.5,) * 3)])
    dataset = dcgan_celeba.ImageFolder(data, tutorial)
    path, key = dcgan_celeba.cache_file(dataset, args)
    stop = common.StopOnCtrlC()
    images, skipped = dcgan_celeba.build_cache(dataset, args, path, key, stop)
    for (file, _), u8 in zip(dataset.samples, images):
        expected = tutorial(Image.open(file).convert("RGB"))
        assert torch.allclose(dcgan_celeba.to_model_range(u8), expected, atol=1e-6)
    assert skipped == 0 and images.dtype == torch.uint8 and images.shape == (5, 3, 32, 32)


def test_cache_is_built_once_reused_rebuilt_on_change_and_never_trusted_when_damaged(
        tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=6, size=40, corrupt=True)
    cache = tmp_path / "celeba" / "dcgan_celeba_cache_32px_nc3.pt"

    def cached(*more):
        args = dcgan_celeba.parse_args(["--dataroot", data, *map(str, SMALL), "--cache", *more])
        dataset = dcgan_celeba.ImageFolder(data, None)
        images = dcgan_celeba.cached_images(dataset, args, torch.device("cpu"), 0, 1,
                                            common.StopOnCtrlC())
        return images, capsys.readouterr().out

    images, printed = cached()
    assert "cache: building" in printed and cache.is_file() and images.shape == (6, 3, 32, 32)
    built = ckpt(cache)
    assert built["count"] == 6 and built["skipped"] == 1
    assert "cache: reusing" in cached()[1]
    make_image_folder(tmp_path / "celeba", n=7, size=40, seed=1)  # the corrupt file is an image
    assert "the folder or --image-size changed" in cached()[1]
    assert ckpt(cache)["count"] == 7 and ckpt(cache)["skipped"] == 0
    blob = cache.read_bytes()
    cache.write_bytes(blob[:len(blob) // 2])  # truncated (a crash while copying, a full disk)
    assert "unreadable" in cached()[1]
    c = ckpt(cache)
    c["images"][0] ^= 0xFF  # bits flipped, the file still loads
    torch.save(c, cache)
    assert "damaged" in cached()[1]
    images, printed = cached()
    assert "cache: reusing" in printed and torch.equal(images, ckpt(cache)["images"])
    other = tmp_path / "not" / "yet" / "there"  # --cache-dir is created
    cached("--cache-dir", str(other))
    assert (other / cache.name).is_file()
