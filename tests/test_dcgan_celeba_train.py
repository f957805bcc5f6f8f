"""dcgan_celeba.py trains as the DCGAN tutorial does: its code first and in its order, its
networks, its outputs and figures, on small real JPEG folders made here (the tutorial's
img_align_celeba/ layout and a flat folder); decode-once gives the tutorial's values and nothing
is ever written into --dataroot."""
import hashlib
import io
import math
import os
import re
import shlex
import tokenize
from bisect import bisect_right

import pytest
import torch
from PIL import Image

import dcgan_celeba
from helpers import CELEBA_SMALL as SMALL, ROOT, celeba, ckpt, make_image_folder, rows

OUTPUTS = ["training_images.png", "losses.png", "progress.gif", "real_vs_fake.png",
           "nearest.png",
           "metrics.csv", "checkpoint.pt", "generator.pt2", "generator_weights.pt"]



def snapshot(root):
    """Every folder (with its mtime: a file made and removed again shows) and every file (size,
    mtime, content hash) under root."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        seen[os.path.relpath(folder, root)] = os.stat(folder).st_mtime_ns
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            seen[os.path.relpath(path, root)] = (os.path.getsize(path),
                                                 os.stat(path).st_mtime_ns, digest)
    return seen


def assert_fresh_rows(out):
    """Each metrics.csv training row holds the losses of its own iteration, never stale ones."""
    c = ckpt(out / "checkpoint.pt")
    table = [r for r in rows(out / "metrics.csv") if r["loss_d"]]
    assert table
    for r in table:
        k = int(r["iteration"])
        assert float(r["loss_d"]) == pytest.approx(c["D_losses"][k], abs=2e-5), r
        assert float(r["loss_g"]) == pytest.approx(c["G_losses"][k], abs=2e-5), r
    return table


# -- the tutorial's code, first and in its order, as a reader checks it --------------------------
# (the tutorial's statement, then what the script may write for it: the tutorial's own text, or
# the script's documented substitution); matched without whitespace, never inside a comment
TUTORIAL_STATEMENTS = [
    ("manualSeed = 999", "manualSeed ="),
    ('print("Random Seed: ", manualSeed)',),
    ("random.seed(manualSeed)",),
    ("torch.manual_seed(manualSeed)",),
    ("dataset = dset.ImageFolder(root=dataroot,", "dataset = FolderOfImages(root=dataroot,"),
    ('device = torch.device("cuda:0" if (torch.cuda.is_available() and ngpu > 0) else "cpu")',
     "device = args.device"),
    ("dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,",
     "dataloader = torch.utils.data.DataLoader(dataset, batch_size="),
    ("real_batch = next(iter(dataloader))",),
    ("plt.figure(figsize=(8,8))",),
    ('plt.title("Training Images")',),
    ("plt.imshow(np.transpose(vutils.make_grid(real_batch[0].to(device)[:64], padding=2, "
     "normalize=True).cpu(),(1,2,0)))",
     "plt.imshow(np.transpose(vutils.make_grid(real_batch[0].to(device)[:64], padding=2, "
     "normalize=True).cpu()"),
    ("def weights_init(m):",),
    ("class Generator(nn.Module):",),
    ("class Discriminator(nn.Module):",),
    ("netG = Generator(ngpu).to(device)", "netG = Generator(ngpu"),
    ("netG.apply(weights_init)",),
    ("print(netG)",),
    ("netD = Discriminator(ngpu).to(device)", "netD = Discriminator(ngpu"),
    ("netD.apply(weights_init)",),
    ("print(netD)",),
    ("criterion = nn.BCELoss()", "criterion = nn.BCEWithLogitsLoss()"),
    ("fixed_noise = torch.randn(64, nz, 1, 1, device=device)",),
    ("real_label = 1", "real_label = 1"),
    ("fake_label = 0", "fake_label = 0"),
    ("optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))",
     "optimizerD = optim.Adam(netD.parameters(), lr="),
    ("optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))",
     "optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1,"),
    ("img_list = []",),
    ("G_losses = []",),
    ("D_losses = []",),
    ("iters = 0",),
    ("for i, data in enumerate(dataloader, 0):", "for i, data in enumerate(dataloader,"),
    ("netD.zero_grad()",),
    ("real_cpu = data[0].to(device)",),
    ("b_size = real_cpu.size(0)",),
    ("label = torch.full((b_size,), real_label, dtype=torch.float, device=device)",),
    ("output = netD(real_cpu).view(-1)",),
    ("errD_real = criterion(output, label)",),
    ("errD_real.backward()", "scaler.scale(errD_real).backward()"),
    ("D_x = output.mean().item()", "D_x = D_of(output).mean()"),
    ("noise = torch.randn(b_size, nz, 1, 1, device=device)",),
    ("fake = netG(noise)",),
    ("label.fill_(fake_label)",),
    ("output = netD(fake.detach()).view(-1)",),
    ("errD_fake = criterion(output, label)",),  # + penalty(...): WGAN-GP's, an addition
    ("errD_fake.backward()", "scaler.scale(errD_fake).backward()"),
    ("D_G_z1 = output.mean().item()", "D_G_z1 = D_of(output).mean()"),
    ("errD = errD_real + errD_fake",),
    ("optimizerD.step()", "scaler.step(optimizerD)"),
    ("netG.zero_grad()",),
    ("label.fill_(real_label)",),
    ("output = netD(fake).view(-1)",),
    ("errG = criterion(output, label)", "errG = criterionG(output, label)"),
    ("errG.backward()", "scaler.scale(errG).backward()"),
    ("D_G_z2 = output.mean().item()", "D_G_z2 = D_of(output).mean()"),
    ("optimizerG.step()", "scaler.step(optimizerG)"),
    ("print('[%d/%d][%d/%d]\\tLoss_D: %.4f\\tLoss_G: %.4f\\tD(x): %.4f\\tD(G(z)): %.4f / %.4f'",),
    ("G_losses.append(errG.item())", "G_losses.append(errG.detach())"),
    ("D_losses.append(errD.item())", "D_losses.append(errD.detach())"),
    ("img_list.append(vutils.make_grid(fake, padding=2, normalize=True))",),
    ("iters += 1",),
    ('plt.title("Generator and Discriminator Loss During Training")',),
    ("ani = animation.ArtistAnimation(fig, ims, interval=1000, repeat_delay=1000, blit=True)",),
    ('plt.title("Real Images")',),
    ('plt.title("Fake Images")',),
    ("plt.imshow(np.transpose(img_list[-1],(1,2,0)))", "plt.imshow(np.transpose(img_list[-1]"),
]


def squeeze(text):
    return re.sub(r"\s+", "", text)


def read_script():
    """The script's lines, and its text without whitespace or comments (with where each line
    starts in that text)."""
    with open(os.path.join(ROOT, "dcgan_celeba.py")) as f:
        source = f.read()
    lines = source.splitlines()
    code = list(lines)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            code[row - 1] = code[row - 1][:col]
    starts, text = [], ""
    for line in code:
        starts.append(len(text))
        text += squeeze(line)
    return source, lines, text, starts


def in_order(candidates):
    """The longest chain of statements, each at one of its candidate positions, positions
    increasing: [(statement index, position)]."""
    best = {}  # (k, position) -> (length, previous (k, position))
    for k, positions in enumerate(candidates):
        for pos in positions:
            prev = max(((best[key][0], key) for key in best if key[0] < k and key[1] < pos),
                       default=(0, None))
            best[(k, pos)] = (prev[0] + 1, prev[1])
    key = max(best, key=lambda key: best[key][0], default=None)
    chain = []
    while key is not None:
        chain.append(key)
        key = best[key][1]
    return chain[::-1]


def test_the_tutorials_code_comes_first_in_its_order():
    """A reader with the tutorial open finds its statements in the script, in its order, the
    first near the top, the last before the appendices (sizes: benchmarks/readability.py)."""
    source, lines, text, starts = read_script()
    candidates = []
    for tutorial, *allowed in TUTORIAL_STATEMENTS:
        needles = {squeeze(n) for n in [tutorial, *allowed]}
        candidates.append(sorted({m.start() for n in needles
                                  for m in re.finditer(re.escape(n), text)}))
    line_of = lambda pos: bisect_right(starts, pos)  # noqa: E731 (1-based line numbers)
    chain = in_order(candidates)
    chained = {k for k, _ in chain}
    missing = [s[0] for s, c in zip(TUTORIAL_STATEMENTS, candidates) if not c]
    disorder = [(s[0], [line_of(p) for p in c]) for k, (s, c) in
                enumerate(zip(TUTORIAL_STATEMENTS, candidates)) if c and k not in chained]
    appendices = next(n for n, line in enumerate(lines) if line.startswith("# == Appendices"))
    first = line_of(candidates[0][0]) if candidates[0] else math.inf  # the seed
    last = line_of(candidates[-1][0]) if candidates[-1] else math.inf  # the fake images
    assert not missing and not disorder, f"not found: {missing}; out of order: {disorder}"
    assert first <= 250 and last <= 700 and last < appendices, (first, last, appendices)


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
    for size in (32, 64, 128, 256):  # narrow, to be quick: the layers scale the same way
        g = dcgan_celeba.Generator(1, 100, 8, 3, size).eval()
        d = dcgan_celeba.Discriminator(1, 3, 8, size).eval()
        assert len(g.main) == 3 * (size.bit_length() - 3) + 2  # one block more per doubling
        with torch.no_grad():
            x = g(torch.randn(2, 100, 1, 1))
            assert x.shape == (2, 3, size, size)
            assert d(x).shape == (2, 1, 1, 1)


def test_help_is_grouped_and_tutorial_gives_its_exact_settings(capsys):
    with pytest.raises(SystemExit) as exit:
        dcgan_celeba.parse_args(["--help"])
    assert exit.value.code == 0
    help_text = capsys.readouterr().out
    groups = ["the tutorial's inputs:", "data and speed:", "additions:", "evaluation:",
              "run control:"]
    assert [help_text.index(g) for g in groups] == sorted(help_text.index(g) for g in groups)
    first_group = help_text[help_text.index(groups[0]):]
    assert first_group.split()[3] == "--tutorial"  # the first flag of the first group
    assert "(default: None)" not in help_text
    run_control = help_text[help_text.index("run control:"):]
    for flag in ("--seed", "--time-budget", "--out", "--resume"):  # one layout, every script
        assert flag in run_control, flag
    assert "auto: cuda, then mps, then cpu" in " ".join(help_text.split())
    options = re.findall(r"^  (--[a-z-]+)(.*)$", help_text, re.M)  # every flag explains itself
    bare = [flag for flag, rest in options if not rest.strip() and
            not re.search(r"^  " + re.escape(flag) + r".*\n {10,}\S", help_text, re.M)]
    assert not bare, bare
    ours = dcgan_celeba.parse_args([])
    assert (ours.batch_size, ours.ema, ours.amp, ours.decode_once) == (64, 0.999, "auto", True)
    args = dcgan_celeba.parse_args(["--tutorial"])
    assert (args.batch_size, args.lr, args.beta1, args.image_size, args.amp, args.decode_once,
            args.channels_last, args.workers, args.ema) == \
        (128, 0.0002, 0.5, 64, "off", False, False, 2, 0.0)
    assert "--ema" not in args.command  # idle: the tutorial samples from G itself
    assert dcgan_celeba.parse_args(["--tutorial", "--batch-size", "64"]).batch_size == 64
    assert dcgan_celeba.parse_args(["--tutorial", "--decode-once"]).decode_once is True


ARGVS = [[], ["--loss", "wgan"], ["--loss", "wgan-gp", "--lr", "0.001"],
         ["--arch", "encoder-decoder"], ["--tutorial", "--loss", "hinge"],
         ["--fid", "100", "--checkpoint-every", "7"],
         ["--label-smoothing", "0.1", "--clip-value", "0.5", "--net-capacity", "8"],
         ["--seed", str(2**63 - 1), "--time-budget", "60", "--lr-d", "1e-4", "--no-decode-once"],
         ["--dataroot", "my data/with 'quotes'", "--out", "a b"]]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda argv: " ".join(argv) or "defaults")
def test_the_arguments_line_pastes_back_to_the_same_settings_and_names_only_acting_flags(argv):
    args = dcgan_celeba.parse_args(argv)
    words = shlex.split(args.command)
    assert words[:2] == ["python", "dcgan_celeba.py"]
    again = dcgan_celeba.parse_args(words[2:])
    idle = set(dcgan_celeba.check_args(args))
    assert {k: v for k, v in again.saved.items() if k not in idle} == \
        {k: v for k, v in args.saved.items() if k not in idle}
    assert again.command == args.command
    flags = {w for w in words if w.startswith("--")}
    keras, loss = args.arch == "encoder-decoder", args.loss
    assert ("--clip-value" in flags) == (loss == "wgan")
    assert ("--net-capacity" in flags) == ("--filter-size" in flags) == keras
    assert ("--ngf" in flags) == ("--ndf" in flags) == (not keras)  # the Keras model's own
    assert ("--fid" in flags) == bool(args.fid)
    assert ("--label-smoothing" in flags) == bool(args.label_smoothing)
    assert ("--checkpoint-every" in flags) == bool(args.checkpoint_every)
    assert "--num-samples" not in flags and "--resume" not in flags
    assert "--time-budget" in flags if args.time_budget else "--time-budget" not in flags


def test_the_wasserstein_losses_and_the_keras_model_imply_their_published_settings():
    line = dcgan_celeba.parse_args(["--loss", "wgan"]).command
    assert "--lr 5e-05 --beta1 0.0" in line and "--beta2 0.9 --d-updates 5" in line
    assert "--clip-value 0.01" in line
    gp = dcgan_celeba.parse_args(["--loss", "wgan-gp", "--d-updates", "2"])
    assert (gp.lr, gp.beta1, gp.beta2, gp.d_updates) == (0.0001, 0.0, 0.9, 2)  # yours win
    keras = dcgan_celeba.parse_args(["--arch", "encoder-decoder"])
    assert (keras.batch_size, keras.beta1) == (32, 0.9)
    assert "--batch-size 32" in keras.command and "--beta1 0.9" in keras.command
    bce = dcgan_celeba.parse_args([])
    assert (bce.lr, bce.beta1, bce.beta2, bce.d_updates) == (0.0002, 0.5, 0.999, 1)


# -- the tutorial, end to end ------------------------------------------------------------------
def test_dry_run_in_the_tutorials_layout_writes_every_output(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=12, size=48, corrupt=True)
    before = snapshot(data)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, "--dry-run", "--batch-size", 8,
                      "--workers", 0, "--ngf", 16, "--ndf", 16) == 0
    r = capsys.readouterr()
    assert r.out.startswith("arguments: python dcgan_celeba.py ")
    assert "Random Seed:  999" in r.out and "device: cpu" in r.out
    assert "(12): ConvTranspose2d(16, 3, kernel_size=(4, 4)" in r.out  # the printed netG
    assert "(13): Tanh()" in r.out and "(11): Conv2d(128, 1, kernel_size=(4, 4)" in r.out
    assert "Starting Training Loop..." in r.out
    assert "[0/5][0/2]\tLoss_D:" in r.out and "img/s" in r.out
    assert "dry run after 1 iterations" in r.out
    assert "skipped 1 unreadable image file" in r.err and "Traceback" not in r.err
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == sorted(OUTPUTS)
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    g = torch.export.load(str(out / "generator.pt2")).module()
    x = g(torch.randn(5, 100, 1, 1))
    assert x.shape == (5, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    row = rows(out / "metrics.csv")[0]
    assert set(row) == {"epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2",
                        "fake_std", "images_per_sec", "fid", "kid", "inception_score"}
    assert 0 <= float(row["d_x"]) <= 1 and 0 <= float(row["d_g_z1"]) <= 1 and row["fid"] == ""
    c = ckpt(out / "checkpoint.pt")
    assert c["script"] == "dcgan_celeba" and c["args"]["image_size"] == 64
    assert c["iters"] == 1 and len(c["G_losses"]) == 1
    weights = ckpt(out / "generator_weights.pt")
    assert weights["script"] == "dcgan_celeba" and weights["settings"]["image_size"] == 64
    assert snapshot(data) == before  # nothing written into --dataroot


def test_flat_folder_skips_the_corrupt_file_and_generate_writes_new_samples(tmp_path, capsys):
    data = make_image_folder(tmp_path / "flat", n=15, size=40, flat=True, corrupt=True)
    before = snapshot(data)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1, "--workers", 2, "--log-every", 2, "--sample-every", 2) == 0
    printed = capsys.readouterr()
    assert "skipped 1 unreadable image file" in printed.err and "Traceback" not in printed.err
    assert "dataset: 15 images" in printed.out and "[0/1][3/4]" in printed.out
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["batch"] == 0 and c["iters"] == 4 and len(c["D_losses"]) == 4
    assert len(c["img_list"]) == 3  # iterations 0 and 2, and the end
    assert Image.open(out / "progress.gif").n_frames == 3
    assert [int(r["iteration"]) for r in assert_fresh_rows(out)] == [0, 2, 3]
    assert snapshot(data) == before  # nothing written into --dataroot
    weights = out / "generator_weights.pt"
    assert celeba("--generate", weights, "--num-samples", 9) == 0  # no --out: a new folder
    assert celeba("--generate", weights, "--num-samples", 9, "--seed", 1) == 0
    first, second = out / "generated", out / "generated-2"
    assert sorted(os.listdir(first)) == sorted(os.listdir(second)) == \
        ["generated.png", "generated.pt"]  # nothing trained, nothing replaced
    assert Image.open(first / "generated.png").size == (3 * 34 + 2, 3 * 34 + 2)  # 3x3, 32 px
    x = torch.load(first / "generated.pt", weights_only=True)
    assert x.shape == (9, 3, 32, 32) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.01
    assert not torch.equal(x, torch.load(second / "generated.pt", weights_only=True))
    capsys.readouterr()
    assert celeba("--generate", weights, "--out", first) == 2  # never over earlier files
    assert "--out" in capsys.readouterr().err
    for wrong in ("generator.pt2", "checkpoint.pt"):  # each names the file --generate reads
        assert celeba("--generate", out / wrong, "--out", tmp_path / "g") == 2
        assert "generator_weights.pt" in capsys.readouterr().err
        assert not (tmp_path / "g").exists()


def test_image_size_128_trains_and_exports_128px(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=4, size=64)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, "--image-size", 128, "--batch-size", 4,
                      "--dry-run", "--workers", 0, "--ngf", 8, "--ndf", 8) == 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    assert g(torch.randn(3, 100, 1, 1)).shape == (3, 3, 128, 128)


def test_a_short_run_draws_real_samples_not_flat_grey(tmp_path, capsys):
    """Four iterations: the exported generator and the grids vary like the training batches
    (eval-mode sampling with batch-norm statistics recomputed), not a flat grey; the run says
    how far it is from the tutorial's training."""
    data = make_image_folder(tmp_path / "celeba", n=16, size=40)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1, "--log-every", 1) == 0
    assert "expect noise or blobs from this run's 16 images" in capsys.readouterr().out
    g = torch.export.load(str(out / "generator.pt2")).module()
    with torch.no_grad():
        x = g(torch.randn(64, 100, 1, 1))
    train_std = float(rows(out / "metrics.csv")[-1]["fake_std"])
    assert x.std(0).mean() > 0.3 * train_std > 0.01
    grid = ckpt(out / "checkpoint.pt")["img_list"][-1].float()
    assert grid.std() > 10  # uint8 grid: not one flat colour


def test_amp_bf16_and_channels_last_train_on_cpu(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1, "--amp", "bf16", "--channels-last") == 0
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] == 2 and all(map(torch.isfinite, torch.tensor(c["G_losses"] +
                                                                     c["D_losses"])))
    assert all(v.dtype == torch.float32 for v in c["netG"].values() if v.is_floating_point())
    x = torch.export.load(str(out / "generator.pt2")).module()(torch.randn(2, 100, 1, 1))
    assert x.dtype == torch.float32 and x.shape == (2, 3, 32, 32)


def test_time_budget_stops_cleanly_with_every_output_fresh_rows_and_resumes(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 1000, "--time-budget", 1.5, "--log-every", 1000) == 0
    printed = capsys.readouterr().out
    c = ckpt(out / "checkpoint.pt")
    assert f"--time-budget spent after {c['iters']} iterations" in printed
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    assert 1 <= c["iters"] < 2000 and c["epoch"] < 1000
    table = assert_fresh_rows(out)  # the stop row is the last step's own values
    assert int(table[-1]["iteration"]) == c["iters"] - 1 == len(c["D_losses"]) - 1
    assert celeba("--resume", out / "checkpoint.pt", "--time-budget", 0.5) == 0
    assert ckpt(out / "checkpoint.pt")["iters"] > c["iters"]
    assert_fresh_rows(out)
    with open(out / "metrics.csv") as f:  # appended, one header
        assert f.read().count("loss_d") == 1


# -- decode-once: the tutorial's values, decoded once, nothing written beside the data ----------
def test_decode_once_and_reading_the_files_train_the_same_first_iteration(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=45)
    before = snapshot(data)
    runs = {}
    for flag in ("--decode-once", "--no-decode-once"):
        out = tmp_path / flag
        assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                          "--dry-run", "--amp", "off", flag) == 0
        runs[flag] = ckpt(out / "checkpoint.pt"), rows(out / "metrics.csv")[0]
    (a, row_a), (b, row_b) = runs.values()
    assert a["D_losses"] == pytest.approx(b["D_losses"], abs=1e-5)
    assert a["G_losses"] == pytest.approx(b["G_losses"], abs=1e-5)
    for key in ("d_x", "d_g_z1", "d_g_z2", "fake_std"):
        assert float(row_a[key]) == pytest.approx(float(row_b[key]), abs=1e-4), key
    assert snapshot(data) == before  # nothing written into --dataroot, either way


def test_reading_the_files_every_epoch_counts_an_unreadable_file_once(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=7, size=40, corrupt=True)
    out = tmp_path / "out"
    assert celeba("--dataroot", data, "--out", out, *SMALL, "--batch-size", 4,
                      "--epochs", 3, "--no-decode-once") == 0
    printed = capsys.readouterr()
    counts = re.findall(r"replaced (\d+) unreadable image file", printed.err)
    assert counts and set(counts) == {"1"}, printed.err  # one bad file, never "skipped 3"
    assert ckpt(out / "checkpoint.pt")["iters"] == 6


def test_the_same_seed_repeats_a_run_bit_for_bit_and_another_seed_changes_it(tmp_path):
    """Each epoch's order and every noise batch come from --seed: the same seed gives the same
    checkpoint, whichever way the images are read; another seed gives another run."""
    data = make_image_folder(tmp_path / "celeba", n=12, size=40)
    runs = {}
    for name, flags in (("a", []), ("b", []), ("files", ["--no-decode-once", "--amp", "off"]),
                        ("decoded", ["--amp", "off"]), ("other", ["--seed", 1])):
        assert celeba("--dataroot", data, "--out", tmp_path / name, *SMALL, "--batch-size",
                          4, "--epochs", 2, *flags) == 0
        runs[name] = ckpt(tmp_path / name / "checkpoint.pt")
    assert runs["a"]["D_losses"] == runs["b"]["D_losses"]
    assert torch.equal(runs["a"]["netG"]["main.0.weight"], runs["b"]["netG"]["main.0.weight"])
    assert runs["files"]["D_losses"] == pytest.approx(runs["decoded"]["D_losses"], abs=1e-4)
    assert runs["other"]["D_losses"] != pytest.approx(runs["a"]["D_losses"], abs=1e-3)
