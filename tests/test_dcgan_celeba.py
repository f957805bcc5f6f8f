"""Tests of dcgan_celeba.py on small real JPEG folders made here, in the tutorial's
img_align_celeba/ layout and as a flat folder, each with one corrupt file. CPU only, no network;
everything is written under tmp_path."""
import csv
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import common
import dcgan_celeba

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "dcgan_celeba.py")
OUTPUTS = ["generator.pt2", "checkpoint.pt", "metrics.csv", "training_images.png", "losses.png",
           "progress.gif", "real_vs_fake.png", "fake_samples.png"]


# -- small real data ---------------------------------------------------------------------------
def make_faces(root, n=20, flat=False, corrupt=True, size=(178, 218), seed=0):
    """n JPEGs of CelebA's aligned size (178x218): a bright disc ("face") on a noisy background,
    in root/img_align_celeba/ (the tutorial's layout) or directly in root; plus one corrupt .jpg."""
    folder = root if flat else os.path.join(root, "img_align_celeba")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        img = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
        cx, cy, r = w // 2 + rng.integers(-10, 10), h // 2 + rng.integers(-10, 10), 50
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(120, 255, size=3)
        Image.fromarray(img).save(os.path.join(folder, f"{i + 1:06d}.jpg"), quality=85)
    if corrupt:
        with open(os.path.join(folder, f"{n + 1:06d}.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return str(root)


def script(*args, timeout=240, **kw):
    """Run the script as a user does; returns the CompletedProcess."""
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=HERE, **kw)


def in_process(*args):
    """common.run(main) in this process: the exit status a user would see (no import cost)."""
    try:
        return common.run(dcgan_celeba.main, [str(a) for a in args])
    except SystemExit as e:  # argparse's errors (common.ArgumentParser: one line, status 2)
        return e.code


def ckpt(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- the networks are the tutorial's at 64, and scale to other sizes ------------------------------
TUTORIAL_G = [("ConvTranspose2d", 100, 512, 1), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 512, 256, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 256, 128, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 128, 64, 2), ("BatchNorm2d",), ("ReLU",),
              ("ConvTranspose2d", 64, 3, 2), ("Tanh",)]


def layer_list(model):
    rows = []
    for m in model.main:
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            rows.append((type(m).__name__, m.in_channels, m.out_channels, m.stride[0]))
        else:
            rows.append((type(m).__name__,))
    return rows


def test_networks_at_64_are_the_tutorials_and_other_sizes_work():
    netG = dcgan_celeba.Generator()
    assert layer_list(netG) == TUTORIAL_G
    netD = dcgan_celeba.Discriminator()
    # the tutorial's D minus its final Sigmoid (logits; BCEWithLogitsLoss)
    assert [r[0] for r in layer_list(netD)] == ["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3 + ["Conv2d"]
    assert sum(p.numel() for p in netG.parameters()) == 3576704  # the tutorial's netG
    assert sum(p.numel() for p in netD.parameters()) == 2765568  # its netD (Sigmoid has none)
    for size in (32, 64, 128, 256):
        g = dcgan_celeba.Generator(image_size=size).eval()
        d = dcgan_celeba.Discriminator(image_size=size).eval()
        with torch.no_grad():
            x = g(torch.randn(2, 100, 1, 1))
            assert x.shape == (2, 3, size, size)
            assert d(x).shape == (2, 1, 1, 1)


# -- the tutorial, end to end -------------------------------------------------------------------
def test_dry_run_in_the_tutorials_layout_writes_every_output(tmp_path):
    data = make_faces(tmp_path / "celeba", n=12)
    out = tmp_path / "out"
    r = script("--dataroot", data, "--out", out, "--dry-run", "--batch-size", 8, "--workers", 0,
               "--no-cache")
    assert r.returncode == 0, r.stderr
    assert "Random Seed:  999" in r.stdout and "device: cpu" in r.stdout
    assert "(12): ConvTranspose2d(64, 3, kernel_size=(4, 4)" in r.stdout  # the printed netG
    assert "[0/5][0/2]\tLoss_D:" in r.stdout and "img/s" in r.stdout
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    g = torch.export.load(str(out / "generator.pt2")).module()
    x = g(torch.randn(5, 100, 1, 1))
    assert x.shape == (5, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    with open(out / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert {"epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "images_per_sec"} <= row.keys()
    assert 0 <= float(row["d_x"]) <= 1 and 0 <= float(row["d_g_z1"]) <= 1
    c = ckpt(out / "checkpoint.pt")
    assert c["arch"]["image_size"] == 64 and c["iters"] == 1 and len(c["G_losses"]) == 1


def test_flat_folder_32px_skips_the_corrupt_file_and_generate_writes_samples(tmp_path):
    data = make_faces(tmp_path / "flat", n=15, flat=True)
    out = tmp_path / "out"
    r = script("--dataroot", data, "--out", out, "--image-size", 32, "--batch-size", 4, "--no-cache",
               "--epochs", 1, "--workers", 2, "--log-every", 2, "--sample-every", 2)
    assert r.returncode == 0, r.stderr
    assert "skipped 1 unreadable image file" in r.stderr and "Traceback" not in r.stderr
    assert "dataset: 16 images" in r.stdout and "[0/1][3/4]" in r.stdout
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["batch"] == 0 and c["iters"] == 4 and len(c["D_losses"]) == 4
    assert len(c["img_list"]) == 3  # iterations 0 and 2, and the end
    assert Image.open(out / "progress.gif").n_frames == 3
    gen = tmp_path / "gen"
    assert in_process("--generate", out / "generator.pt2", "--num-samples", 9, "--out", gen,
                      "--save-images", gen / "each", "--interpolate", 5) == 0
    assert Image.open(gen / "generated.png").size == (3 * 34 + 2, 3 * 34 + 2)  # 3x3 grid of 32px
    assert len(os.listdir(gen / "each")) == 9
    assert Image.open(gen / "each" / "sample_00000.png").size == (32, 32)
    assert Image.open(gen / "interpolation.png").size == (5 * 34 + 2, 34 + 2)


def test_image_size_128_trains_and_exports_128px(tmp_path):
    data = make_faces(tmp_path / "celeba", n=4, corrupt=False)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, "--image-size", 128, "--batch-size", 4,
                      "--dry-run", "--workers", 0, "--ngf", 8, "--ndf", 8) == 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    assert g(torch.randn(3, 100, 1, 1)).shape == (3, 3, 128, 128)


# -- resume and Ctrl-C ------------------------------------------------------------------------
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_matches_an_uninterrupted_run(tmp_path):
    data = make_faces(tmp_path / "celeba", n=24)
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
             "--ngf", 16, "--ndf", 16, "--log-every", 1]
    out = tmp_path / "stopped"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, SCRIPT, *map(str, flags), "--out", str(out), "--epochs", "500"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE, env=env)
    try:
        for line in p.stdout:  # wait until training is under way in its second epoch
            if line.startswith("[1/500][2/"):
                break
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] >= 9
    done = c["epoch"] + 1  # finish the epoch it stopped in
    assert in_process(*flags, "--out", out, "--epochs", done, "--resume", out / "checkpoint.pt") == 0
    ref = tmp_path / "ref"
    assert in_process(*flags, "--out", ref, "--epochs", done) == 0
    a, b = ckpt(out / "checkpoint.pt"), ckpt(ref / "checkpoint.pt")
    assert_same_weights(a["netG"], b["netG"])
    assert_same_weights(a["netD"], b["netD"])
    assert a["G_losses"] == b["G_losses"] and a["iters"] == b["iters"] == 6 * done  # 24 readable images, batches of 4


def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    data = make_faces(tmp_path / "celeba", n=8, corrupt=False)
    out = tmp_path / "out"
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--log-every", 1, "--checkpoint-every", 1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, SCRIPT, *map(str, flags), "--out", str(out), "--epochs", "500"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=HERE, env=env)
    try:
        for line in p.stdout:  # checkpoints are being written every iteration by now
            if line.startswith("[3/500]"):
                break
        p.kill()  # SIGKILL: no handler runs, possibly in the middle of a checkpoint write
        p.wait(timeout=60)
    finally:
        p.kill()
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] >= 5
    assert in_process(*flags, "--out", out, "--epochs", c["epoch"] + 1, "--resume", out / "checkpoint.pt") == 0


def test_checkpoint_every_and_epoch_boundary_resume_is_exact(tmp_path):
    data = make_faces(tmp_path / "celeba", n=8, corrupt=False)
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--no-cache"]  # the tutorial's DataLoader path
    a, b = tmp_path / "a", tmp_path / "b"
    assert in_process(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert in_process(*flags, "--out", b, "--epochs", 1) == 0
    assert in_process(*flags, "--out", b, "--epochs", 2, "--resume", b / "checkpoint.pt") == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    assert_same_weights(ca["netG"], cb["netG"])
    assert ca["D_losses"] == cb["D_losses"] and len(ca["D_losses"]) == 4
    with open(b / "metrics.csv") as f:  # appended, one header
        assert f.read().count("loss_d") == 1


# -- bad input: one error line, exit 2 ----------------------------------------------------------
def test_missing_folder_is_one_error_line_without_traceback(tmp_path):
    r = script("--dataroot", tmp_path / "nothing", "--out", tmp_path / "o")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "img_align_celeba/*.jpg" in lines[0]


def bad_inputs(tmp):
    os.makedirs(tmp / "empty")
    os.makedirs(tmp / "zipped")
    (tmp / "zipped" / "img_align_celeba.zip").write_bytes(b"PK\x03\x04")
    os.makedirs(tmp / "nothing_useful" / "img_align_celeba")
    (tmp / "nothing_useful" / "img_align_celeba" / "list.txt").write_text("no images")
    (tmp / "garbage.pt").write_bytes(b"garbage")
    return [
        (["--dataroot", tmp / "empty"], "no images"),
        (["--dataroot", tmp / "nothing_useful"], "img_align_celeba/*.jpg"),
        (["--dataroot", tmp / "zipped"], "unzip"),
        (["--dataroot", tmp / "zipped" / "img_align_celeba.zip"], "unzip"),
        (["--image-size", 48], "power of two"),
        (["--image-size", 512], "--image-size"),
        (["--ngpu", 2], "torchrun"),
        (["--nc", 4], "--nc"),
        (["--batch-size", 0], "positive"),
        (["--lr", "nan"], "--lr"),
        (["--resume", tmp / "garbage.pt", "--dataroot", tmp / "data"], "cannot load checkpoint"),
        (["--resume", tmp / "missing.pt", "--dataroot", tmp / "data"], "does not exist"),
        (["--generate", tmp / "missing.pt2"], "does not exist"),
        (["--generate", tmp / "garbage.pt"], "not an exported generator"),
        (["--save-images", tmp / "x"], "--generate"),
        (["--download", "--dataroot", tmp / "dl" / "celeba"], "img_align_celeba.zip"),
        (["--amp", "fp16", "--dataroot", tmp / "data"], "--amp bf16"),
        (["--amp", "fp32"], "--amp"),
        (["--sync-bn", "--dataroot", tmp / "data"], "torchrun"),
        # issue 7
        (["--arch", "encoder-decoder", "--image-size", 32], "--image-size 64"),
        (["--arch", "stylegan"], "--arch"),
        (["--loss", "wgan"], "--loss"),
        (["--filter-size", 4], "odd"),
        (["--label-smoothing", 1], "[0, 1)"),
        (["--label-smoothing", 0.1, "--loss", "hinge"], "--loss bce"),
        (["--fid-every", 1], "--fid N"),
        (["--fid", 4, "--fid-weights", tmp / "missing.pth", "--dataroot", tmp / "data"], "does not exist"),
    ]


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    make_faces(tmp_path / "data", n=2, corrupt=False)
    for args, message in bad_inputs(tmp_path):
        assert in_process(*args, "--out", tmp_path / "o", "--workers", 0) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], (args, err)


def test_all_images_corrupt_is_an_error_not_a_crash(tmp_path, capsys):
    folder = tmp_path / "bad"
    os.makedirs(folder)
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"nope")
    for cache in ("--cache", "--no-cache"):
        assert in_process("--dataroot", folder, "--out", tmp_path / "o", "--workers", 0, "--dry-run", cache) == 2
        assert "could be read" in capsys.readouterr().err


def test_resume_from_another_size_or_width_is_refused(tmp_path, capsys):
    data = make_faces(tmp_path / "celeba", n=4, corrupt=False)
    flags = ["--dataroot", data, "--batch-size", 4, "--workers", 0, "--dry-run", "--ngf", 8, "--ndf", 8]
    assert in_process(*flags, "--out", tmp_path / "a", "--image-size", 32) == 0
    capsys.readouterr()
    c = tmp_path / "a" / "checkpoint.pt"
    assert in_process(*flags, "--out", tmp_path / "b", "--image-size", 64, "--resume", c) == 2
    assert "--image-size 32" in capsys.readouterr().err
    assert in_process(*flags[:-4], "--out", tmp_path / "b", "--image-size", 32, "--resume", c) == 2
    assert "--ngf 8" in capsys.readouterr().err


# -- issue 5: the decoded-image cache, mixed precision, torchrun ---------------------------------
def test_cache_holds_exactly_what_the_tutorials_transform_gives(tmp_path):
    data = make_faces(tmp_path / "celeba", n=5, corrupt=False)
    paths = dcgan_celeba.find_images(data)
    args = dcgan_celeba.parse_args(["--dataroot", data, "--image-size", "32", "--workers", "0"])
    images, skipped = dcgan_celeba.build_cache(paths, args, dcgan_celeba.cache_path(args, len(paths)))
    tf = dcgan_celeba.transforms
    tutorial = tf.Compose([tf.Resize(32), tf.CenterCrop(32), tf.ToTensor(), tf.Normalize((0.5,) * 3, (0.5,) * 3)])
    for path, u8 in zip(paths, images):
        expected = tutorial(Image.open(path).convert("RGB"))
        assert torch.allclose(dcgan_celeba.to_model_range(u8), expected, atol=1e-6)
    assert skipped == 0 and images.dtype == torch.uint8 and images.shape == (5, 3, 32, 32)


def test_cache_is_built_once_reused_rebuilt_on_change_and_never_trusted_when_damaged(tmp_path, capsys):
    data = make_faces(tmp_path / "celeba", n=6)
    flags = ["--dataroot", data, "--out", tmp_path / "o", "--image-size", 32, "--batch-size", 4,
             "--workers", 0, "--dry-run", "--ngf", 8, "--ndf", 8, "--cache"]
    cache = tmp_path / "celeba" / "dcgan_celeba_cache_32px_nc3.pt"

    def run_and_log():
        assert in_process(*flags) == 0
        return capsys.readouterr().out

    assert "cache: building" in run_and_log() and cache.is_file()
    built = ckpt(cache)
    assert built["count"] == 6 and built["skipped"] == 1 and built["images"].shape == (6, 3, 32, 32)
    assert "cache: reusing" in run_and_log()
    make_faces(tmp_path / "celeba", n=7, corrupt=False, seed=1)  # the corrupt file is now an image
    assert "the folder or --image-size changed" in run_and_log()
    assert ckpt(cache)["count"] == 7 and ckpt(cache)["skipped"] == 0
    assert "cache: reusing" in run_and_log()
    blob = cache.read_bytes()
    cache.write_bytes(blob[:len(blob) // 2])  # truncated (a crash while copying, a full disk)
    assert "unreadable" in run_and_log()
    c = ckpt(cache)
    c["images"][0] ^= 0xFF  # bits flipped, the file still loads
    torch.save(c, cache)
    assert "damaged" in run_and_log()
    assert "cache: reusing" in run_and_log()
    other = tmp_path / "elsewhere"
    os.makedirs(other)
    assert in_process(*flags, "--cache-dir", other) == 0
    assert (other / cache.name).is_file()


def test_amp_bf16_channels_last_and_flips_train_on_cpu(tmp_path):
    data = make_faces(tmp_path / "celeba", n=8, corrupt=False)
    out = tmp_path / "out"
    assert in_process("--dataroot", data, "--out", out, "--image-size", 32, "--batch-size", 4,
                      "--workers", 0, "--epochs", 1, "--amp", "bf16", "--channels-last", "--hflip",
                      "--ngf", 8, "--ndf", 8) == 0
    c = ckpt(out / "checkpoint.pt")
    assert c["iters"] == 2 and all(np.isfinite(c["G_losses"] + c["D_losses"]))
    assert all(v.dtype == torch.float32 for v in c["netG"].values() if v.is_floating_point())
    g = torch.export.load(str(out / "generator.pt2")).module()
    x = g(torch.randn(2, 100, 1, 1))
    assert x.dtype == torch.float32 and x.shape == (2, 3, 32, 32)


def test_torchrun_two_processes_gloo_writes_one_set_of_outputs_and_resumes_single_process(tmp_path, capsys):
    data = make_faces(tmp_path / "celeba", n=16)
    out = tmp_path / "ddp"
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 8, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--log-every", 1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", SCRIPT, *map(str, flags), "--out", str(out),
                        "--epochs", "1"], capture_output=True, text=True, timeout=240, cwd=HERE, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("Starting Training Loop") == 1  # only rank 0 prints
    assert "x 2 processes" in r.stdout and "[0/1][1/2]" in r.stdout
    assert r.stderr.count("skipped 1 unreadable") == 1
    assert sorted(p for p in os.listdir(out) if not p.startswith(".")) == sorted(OUTPUTS)
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["iters"] == 2 and len(c["G_losses"]) == 2
    assert not any(k.startswith("module.") for k in c["netG"])  # loads without DDP
    assert in_process(*flags, "--out", out, "--epochs", 2, "--resume", out / "checkpoint.pt") == 0
    assert "resumed from" in capsys.readouterr().out
    assert ckpt(out / "checkpoint.pt")["iters"] == 4


def test_torchrun_ctrl_c_on_one_rank_stops_every_rank_with_a_loadable_checkpoint(tmp_path):
    """Issue 5: Ctrl-C on any rank leaves a loadable checkpoint. SIGINT goes to rank 1 only (rank 0
    writes checkpoints, so it must learn of the stop from the other rank)."""
    data = make_faces(tmp_path / "celeba", n=32, corrupt=False)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", SCRIPT, "--dataroot", data, "--image-size", "32",
                          "--batch-size", "8", "--workers", "0", "--ngf", "8", "--ndf", "8",
                          "--log-every", "3", "--epochs", "500", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE, env=env)
    try:
        for line in p.stdout:  # training under way in its second epoch
            if line.startswith("[1/500]"):
                break
        workers = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        rank1 = [w for w in workers if b"RANK=1\0" in open(f"/proc/{w}/environ", "rb").read()]
        assert len(rank1) == 1, workers
        os.kill(int(rank1[0]), signal.SIGINT)
        rest, _ = p.communicate(timeout=120)
    finally:
        p.kill()
    assert "stopped; checkpoint saved" in rest, rest[-3000:]
    assert "exitcode: 130" in rest  # every rank exits 130, as a single process does
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["iters"] > 4 and len(c["G_losses"]) == c["iters"]  # mid-epoch 2



# -- issue 7: seed 003's model, losses, troubleshooting knobs and FID ----------------------------
def test_seed003_model_has_the_keras_parameter_counts_and_shapes_64_in_64_out():
    netG, netD = dcgan_celeba.DecoderGenerator(16, 5, 100, 3), dcgan_celeba.EncoderDiscriminator(16, 5, 3)
    # trainable parameters of seed 003's Keras models (NET_CAPACITY 16, FILTER_SIZE 5), by hand:
    # G: Dense 100*2048+2048, BN 2*2048, Deconv 25*128*64+64, BN 128, 25*64*32+32, BN 64,
    #    25*32*16+16, BN 32, 25*16*16+16, BN 32, Conv 25*16*3+3
    assert sum(p.numel() for p in netG.parameters()) == 487731
    # D: per block Conv + BN + Conv(stride 2) + BN, filters 16, 32, 64, 128; Dense 128+1
    assert sum(p.numel() for p in netD.parameters()) == 815569
    sizes = []
    for m in netD.main:
        if isinstance(m, torch.nn.LeakyReLU):
            m.register_forward_hook(lambda mod, i, o: sizes.append(tuple(o.shape[1:])))
    for m in netG.main:
        if isinstance(m, torch.nn.LeakyReLU):
            m.register_forward_hook(lambda mod, i, o: sizes.append(tuple(o.shape[1:])))
    fake = netG(torch.randn(2, 100, 1, 1))
    assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
    assert netD(fake).shape == (2, 1)
    assert sizes == [(64, 8, 8), (32, 16, 16), (16, 32, 32), (16, 64, 64),   # G's decoder blocks
                     (16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]    # D's encoder blocks


def test_gradient_penalty_matches_hand_computed_values():
    x = torch.randn(3, 1, 2, 2)
    # a linear critic D(x) = w.x + b has gradient w everywhere: GP = 10 * (||w|| - 1)^2 = 10 * 4^2
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        linear[1].weight.copy_(torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
    gp = dcgan_celeba.gradient_penalty(linear, x, torch.randn(3, 1, 2, 2), 10.0)
    assert gp.item() == pytest.approx(160.0)
    # and it trains D: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 16 w
    gp.backward()
    assert torch.allclose(linear[1].weight.grad, torch.tensor([[48.0, 64.0, 0.0, 0.0]]))

    # D(x) = sum(x^2): gradient 2 x_hat; with real == fake, x_hat = x whatever eps is drawn
    class Square(torch.nn.Module):
        def forward(self, x):
            return (x ** 2).flatten(1).sum(1)
    expected = 2.0 * ((2 * x.flatten(1).norm(dim=1) - 1) ** 2).mean()
    gp = dcgan_celeba.gradient_penalty(Square(), x, x.clone(), 2.0)
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_label_smoothing_changes_only_ds_real_targets(tmp_path, monkeypatch):
    data = make_faces(tmp_path / "celeba", n=8, corrupt=False)
    seen = {"D_real": set(), "D_fake": set(), "G": set()}
    real_loss_D, real_loss_G = dcgan_celeba.loss_D, dcgan_celeba.loss_G

    def spy_D(output, label, criterion, loss, real):
        seen["D_real" if real else "D_fake"].update(label.tolist())
        return real_loss_D(output, label, criterion, loss, real)

    def spy_G(output, label, criterion, loss):
        seen["G"].update(label.tolist())
        return real_loss_G(output, label, criterion, loss)
    monkeypatch.setattr(dcgan_celeba, "loss_D", spy_D)
    monkeypatch.setattr(dcgan_celeba, "loss_G", spy_G)
    assert in_process("--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
                      "--ngf", 8, "--ndf", 8, "--dry-run", "--label-smoothing", 0.1,
                      "--out", tmp_path / "o") == 0
    assert [round(t, 6) for t in seen["D_real"]] == [0.9] and seen["D_fake"] == {0.0} and seen["G"] == {1.0}


@pytest.mark.parametrize("arch,loss", [("dcgan", "wgan-gp"), ("dcgan", "hinge"),
                                       ("encoder-decoder", "bce"), ("encoder-decoder", "wgan-gp")])
def test_each_arch_and_loss_trains_a_tiny_epoch_and_writes_its_outputs(tmp_path, capsys, arch, loss):
    data = make_faces(tmp_path / "celeba", n=8, corrupt=False)
    flags = ["--dataroot", data, "--workers", 0, "--arch", arch, "--loss", loss, "--batch-size", 4,
             "--log-every", 1, "--ngf", 8, "--ndf", 8, "--net-capacity", 4, "--image-size",
             64 if arch == "encoder-decoder" else 32]
    assert in_process(*flags, "--out", tmp_path / "dry", "--dry-run") == 0
    out = tmp_path / "run"
    assert in_process(*flags, "--out", out, "--epochs", 1, "--d-updates", 2, "--g-updates", 2,
                      "--lr-d", 4e-4, "--lr-g", 1e-4, "--noise", "uniform") == 0
    printed = capsys.readouterr().out
    if loss == "wgan-gp":
        assert "defaults implied by" in printed and "--beta1 0.0 --beta2 0.9" in printed
        assert "\tW: " in printed and "D(x)" not in printed  # the critic's estimate instead
        critic = dcgan_celeba.build_models(dcgan_celeba.parse_args(["--arch", arch, "--loss", loss]),
                                           torch.device("cpu"))[1]
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())  # layer norm
    c = ckpt(out / "checkpoint.pt")
    assert c["optimizerD"]["param_groups"][0]["lr"] == 4e-4 and c["optimizerG"]["param_groups"][0]["lr"] == 1e-4
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(r["grad_norm_d"]) > 0 for r in rows)
    assert float(rows[-1]["grad_norm_g"]) > 0 and float(rows[-1]["fake_std"]) > 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    size = 64 if arch == "encoder-decoder" else 32
    assert g(torch.rand(3, 100, 1, 1) * 2 - 1).shape == (3, 3, size, size)
    if arch == "encoder-decoder":  # seed 003's progress figures, in its configuration's folder
        name = "gan_cap4_batch4_filt5_disc2_gen2" + ("" if loss == "bce" else "_" + loss)
        figures = sorted(os.listdir(tmp_path / "dry" / "visualization" / "gan_cap4_batch4_filt5_disc1_gen1" if loss == "bce"
                                    else tmp_path / "dry" / "visualization" / "gan_cap4_batch4_filt5_disc5_gen1_wgan-gp"))
        assert figures == ["0000000000.jpg"]
        assert os.path.isdir(out / "visualization" / name)


def test_wgan_gp_with_d_updates_resumes_exactly(tmp_path):
    data = make_faces(tmp_path / "celeba", n=12, corrupt=False)
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--loss", "wgan-gp", "--d-updates", 2]
    a, b = tmp_path / "a", tmp_path / "b"
    assert in_process(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert in_process(*flags, "--out", b, "--epochs", 2, "--checkpoint-every", 2, "--dry-run") == 0
    assert in_process(*flags, "--out", b, "--epochs", 2, "--resume", b / "checkpoint.pt") == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    assert_same_weights(ca["netG"], cb["netG"])
    assert_same_weights(ca["netD"], cb["netD"])
    assert ca["D_losses"] == cb["D_losses"] and len(ca["D_losses"]) == 6


def test_failure_watch_warns_once_about_vanishing_gradients_and_collapse():
    args = dcgan_celeba.parse_args([])
    watch = dcgan_celeba.FailureWatch(args, patience=100)
    assert watch.update([1.2] * 500, 0.4, 0.5) == []  # a healthy run: nothing
    assert watch.update([0.001] * 99, 0.4, 0.5) == []
    first = watch.update([0.001], 0.4, 0.5)
    assert len(first) == 1 and "vanish" in first[0] and "--lr-d" in first[0]
    assert watch.update([0.001] * 300, 0.4, 0.5) == []  # once only
    collapsed = watch.update([1.0] * 100, 0.01, 0.5)
    assert len(collapsed) == 1 and "collaps" in collapsed[0] and "--loss wgan-gp" in collapsed[0]
    # with smoothing 0.1, D's BCE cannot go below ~0.325: sitting there is the same sign
    smooth = dcgan_celeba.FailureWatch(dcgan_celeba.parse_args(["--label-smoothing", "0.1"]), patience=10)
    assert smooth.update([0.33] * 10, 0.4, 0.5) and not smooth.update([0.33] * 10, 0.4, 0.5)
    # a WGAN critic's loss has no floor to sit at
    critic = dcgan_celeba.FailureWatch(dcgan_celeba.parse_args(["--loss", "wgan-gp"]), patience=10)
    assert critic.update([0.0] * 50, 0.4, 0.5) == []


class TinyFeatures(torch.nn.Module):
    """A stand-in for the Inception network with its calling convention (uint8 in, a tuple of
    features out), buildable offline."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 4), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        return (self.net(x.float() / 255),)


def test_fid_plumbing_writes_fid_rows_and_real_vs_real_is_zero(tmp_path, monkeypatch, capsys):
    data = make_faces(tmp_path / "celeba", n=40, corrupt=False)
    monkeypatch.setattr(dcgan_celeba, "fid_extractor", lambda args, device: TinyFeatures())
    out = tmp_path / "o"
    assert in_process("--dataroot", data, "--image-size", 32, "--batch-size", 8, "--workers", 0,
                      "--ngf", 8, "--ndf", 8, "--epochs", 2, "--fid", 40, "--fid-every", 1,
                      "--out", out) == 0
    assert capsys.readouterr().out.count("FID: ") == 2
    with open(out / "metrics.csv") as f:
        fids = [float(r["fid"]) for r in csv.DictReader(f) if r["fid"]]
    assert len(fids) == 2 and all(np.isfinite(fids)) and min(fids) > 0
    images = torch.from_numpy(np.stack([np.asarray(Image.open(os.path.join(data, "img_align_celeba", p)).resize((32, 32)))
                                        for p in sorted(os.listdir(os.path.join(data, "img_align_celeba")))])).permute(0, 3, 1, 2)
    stats = dcgan_celeba.fid_stats(TinyFeatures(), images.split(16), torch.device("cpu"))
    assert common.frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-6)
    assert max(fids) > 10 * common.frechet_distance(*stats, *dcgan_celeba.fid_stats(
        TinyFeatures(), images.flip(0).split(7), torch.device("cpu")))  # batching changes nothing


def test_frechet_distance_matches_torch_fidelitys():
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(0.3, 1.5, size=(300, 16))
    ours = common.frechet_distance(*common.gaussian_stats(a), *common.gaussian_stats(b))
    theirs = metric_fid.fid_statistics_to_metric(metric_fid.fid_features_to_statistics(torch.from_numpy(a)),
                                                 metric_fid.fid_features_to_statistics(torch.from_numpy(b)),
                                                 verbose=False)["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_fid_errors_missing_package_offline_and_bad_weights_are_one_line(tmp_path, monkeypatch, capsys):
    data = make_faces(tmp_path / "celeba", n=4, corrupt=False)
    flags = ["--dataroot", data, "--image-size", 32, "--workers", 0, "--dry-run", "--fid", 4,
             "--out", tmp_path / "o"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch_fidelity", None)  # as if not installed
        m.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
        assert in_process(*flags) == 2
        assert "pip install -r requirements-fid.txt" in capsys.readouterr().err
    pytest.importorskip("torch_fidelity")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no weights cached
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # and no network, even on CI
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert in_process(*flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fid-weights" in err[-1] and "Traceback" not in err[-1]
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    assert in_process(*flags, "--fid-weights", tmp_path / "bad.pth") == 2
    assert "not torch-fidelity's Inception weights" in capsys.readouterr().err


DDP_GP_WORKER = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {here!r})
import dcgan_celeba as d
from torch.nn.parallel import DistributedDataParallel as DDP
dist.init_process_group("gloo")
rank = dist.get_rank()
layer_norm = lambda c: torch.nn.GroupNorm(1, c)
torch.manual_seed(0)
netD, ref = d.Discriminator(3, 8, 32, layer_norm), d.Discriminator(3, 8, 32, layer_norm)
ref.load_state_dict(netD.state_dict())
g = torch.Generator().manual_seed(1)
real, fake = torch.randn(8, 3, 32, 32, generator=g), torch.randn(8, 3, 32, 32, generator=g)
eps = lambda r: torch.Generator().manual_seed(100 + r)  # each rank's draws for its half
ddp, half = DDP(netD), slice(4 * rank, 4 * rank + 4)
(-ddp(real[half]).mean()).backward()
ddp(fake[half]).mean().backward()
d.gradient_penalty(ddp, real[half], fake[half], 10.0, eps(rank)).backward()
# one process, the whole batch, the same interpolation points
e = torch.cat([torch.rand(4, 1, 1, 1, generator=eps(r)) for r in (0, 1)])
(-ref(real).mean()).backward()
ref(fake).mean().backward()
x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
grad, = torch.autograd.grad(ref(x_hat).sum(), x_hat, create_graph=True)
(10.0 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()).backward()
print("maxdiff", max((a.grad - b.grad).abs().max().item() for a, b in zip(netD.parameters(), ref.parameters())))
dist.destroy_process_group()
"""


def test_wgan_gp_under_ddp_gives_the_critic_the_single_process_gradients(tmp_path):
    """The gradient penalty's double backward through DistributedDataParallel: 2 gloo ranks on
    half a batch each must give D the gradients of one process on the whole batch."""
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_GP_WORKER.format(here=HERE))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", str(worker)], capture_output=True, text=True,
                       timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    diffs = [float(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("maxdiff")]
    assert r.returncode == 0 and len(diffs) == 2, r.stderr[-2000:]
    assert max(diffs) < 1e-4
