"""The CUDA path, on a machine with a GPU (skipped elsewhere; benchmarks/gpu_check.sh runs it):
every training script's dry run on CUDA, dcgan_celeba.py's fp16 GradScaler and bf16, and a
Ctrl-C'd CUDA run that resumes where it stopped."""
import os
import signal

import pytest
import torch

from helpers import ckpt, make_image_folder, make_mnist, rows, script, start

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPU = {"CUDA_VISIBLE_DEVICES": os.environ.get("GAN_TEST_GPU", "0"), "PYTHONUNBUFFERED": "1"}
SMALL = ["--image-size", 32, "--ngf", 8, "--ndf", 8, "--batch-size", 8, "--workers", 0]


@pytest.mark.parametrize("name", ["exponential_gan.py", "sequence_gan.py", "dcgan_mnist.py",
                                  "dcgan_celeba.py"])
def test_dry_run_on_cuda_writes_its_files(name, tmp_path):
    data = {"dcgan_celeba.py": ["--dataroot", make_image_folder(tmp_path / "f", n=16, size=40),
                                "--image-size", 32],
            "dcgan_mnist.py": ["--dataroot", make_mnist(tmp_path / "m", n=64)]}.get(name, [])
    p = script(name, *data, "--dry-run", "--device", "cuda", "--out", tmp_path / "o", env=GPU)
    assert "cuda" in p.stdout and (tmp_path / "o" / "generator_weights.pt").is_file()


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_finite_and_saves_float32(amp, tmp_path):
    data = make_image_folder(tmp_path / "f", n=32, size=40)
    script("dcgan_celeba.py", "--dataroot", data, *SMALL, "--epochs", 2, "--amp", amp,
           "--log-every", 1, "--device", "cuda", "--out", tmp_path / "o", env=GPU)
    c = ckpt(tmp_path / "o" / "checkpoint.pt")
    assert all(map(torch.isfinite, torch.tensor(c["G_losses"] + c["D_losses"])))
    assert all(v.dtype == torch.float32 for v in c["netG"].values() if v.is_floating_point())
    assert (amp == "fp16") == bool(c["scaler"])  # the GradScaler's state under fp16 only


def test_ctrl_c_on_cuda_saves_and_resumes_where_it_stopped(tmp_path):
    data = make_image_folder(tmp_path / "f", n=64, size=40)
    flags = ["--dataroot", data, *SMALL, "--log-every", 1, "--device", "cuda"]
    p = start("dcgan_celeba.py", *flags, "--epochs", 500, "--out", tmp_path / "a", env=GPU)
    try:
        for line in p.stdout:
            if line.startswith("[1/500][3/"):
                break
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    c = ckpt(tmp_path / "a" / "checkpoint.pt")
    done = c["epoch"] + 1
    script("dcgan_celeba.py", "--resume", tmp_path / "a" / "checkpoint.pt", "--epochs", done,
           env=GPU)
    script("dcgan_celeba.py", *flags, "--epochs", done, "--out", tmp_path / "b", env=GPU)
    a, b = rows(tmp_path / "a" / "metrics.csv"), rows(tmp_path / "b" / "metrics.csv")
    assert [r["iteration"] for r in a if r["loss_d"]] == [r["iteration"] for r in b if r["loss_d"]]
    # cuDNN's kernels are not bitwise deterministic: the resumed run follows the same course
    first = next(r for r in a if int(r["iteration"] or 0) >= c["iters"] and r["loss_d"])
    twin = next(r for r in b if r["iteration"] == first["iteration"])
    assert abs(float(first["loss_d"]) - float(twin["loss_d"])) < 0.05
