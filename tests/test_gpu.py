"""The CUDA path, on a machine with a GPU (skipped elsewhere; benchmarks/gpu_check.sh runs it):
every training script's dry run on CUDA, its generator.pt2 loading with CUDA hidden, --device cpu
beside a GPU, --seed on CUDA samples, dcgan_celeba.py's fp16 GradScaler and bf16, and a Ctrl-C'd
CUDA run that resumes where it stopped. The scripts run in subprocesses that see the user's GPUs
(helpers.GPU_ENV); this process itself has CUDA hidden (the root conftest.py)."""
import os
import re
import subprocess
import sys

import pytest
import torch

from helpers import GPU_ENV, ckpt, environment, make_image_folder, make_mnist, rows, script


DRIVERS = ("/dev/nvidiactl", "/dev/dxg", "/dev/kfd")  # NVIDIA, WSL, ROCm


def visible_gpus():
    """How many CUDA GPUs the scripts will see (a subprocess: this one has CUDA hidden)."""
    if not (torch.version.cuda or torch.version.hip) or GPU_ENV["CUDA_VISIBLE_DEVICES"] == "":
        return 0  # a CPU-only build of torch, or the user hid every GPU
    if sys.platform == "linux" and not any(map(os.path.exists, DRIVERS)):
        return 0  # no GPU driver: no need to start torch to ask
    p = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                       capture_output=True, text=True, timeout=120, env=environment(GPU_ENV))
    return int(p.stdout.strip() or 0) if p.returncode == 0 else 0


pytestmark = pytest.mark.skipif(visible_gpus() == 0, reason="needs a CUDA GPU")
HIDDEN = {"CUDA_VISIBLE_DEVICES": ""}  # a machine without a GPU
SMALL = ["--image-size", 32, "--ngf", 8, "--ndf", 8, "--batch-size", 8, "--workers", 0]
SCRIPTS = ["exponential_gan.py", "sequence_gan.py", "dcgan_mnist.py", "dcgan_celeba.py"]


def data(name, tmp_path):
    return {"dcgan_celeba.py": ["--dataroot", make_image_folder(tmp_path / "f", n=16, size=40),
                                "--image-size", 32],
            "dcgan_mnist.py": ["--dataroot", make_mnist(tmp_path / "m", n=64)]}.get(name, [])


def device_line(p):
    """The `device: ...` line the script printed at its start (not the echoed arguments)."""
    lines = [line for line in p.stdout.splitlines() if line.startswith("device: ")]
    assert lines, p.stdout[-2000:]
    return lines[0]


@pytest.mark.parametrize("name", SCRIPTS)
def test_dry_run_on_cuda_runs_there_and_its_export_loads_without_a_gpu(name, tmp_path):
    out = tmp_path / "o"
    p = script(name, *data(name, tmp_path), "--dry-run", "--device", "cuda", "--out", out,
               env=GPU_ENV)
    assert re.match(r"device: cuda\b", device_line(p)), device_line(p)
    assert (out / "generator_weights.pt").is_file()
    # generator.pt2 from the GPU run, on a machine with no GPU (issue 28, item 3).
    load = ("import sys, torch; program = torch.export.load(sys.argv[1]); "
            "x = program.example_inputs[0][0]; y = program.module()(torch.randn(3, *x.shape[1:]))"
            "; assert y.shape[0] == 3 and y.device.type == 'cpu' and torch.isfinite(y).all()")
    p = subprocess.run([sys.executable, "-c", load, str(out / "generator.pt2")],
                       capture_output=True, text=True, timeout=300, env=environment(HIDDEN))
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.parametrize("name", ["dcgan_mnist.py", "dcgan_celeba.py"])
def test_device_cpu_runs_on_the_cpu_beside_a_gpu(name, tmp_path):
    p = script(name, *data(name, tmp_path), "--dry-run", "--device", "cpu",
               "--out", tmp_path / "o", env=GPU_ENV)
    assert re.match(r"device: cpu\b", device_line(p)), device_line(p)


@pytest.mark.parametrize("name", ["dcgan_mnist.py", "dcgan_celeba.py"])
def test_seed_sets_the_cuda_samples(name, tmp_path):
    out = tmp_path / "o"
    script(name, *data(name, tmp_path), "--dry-run", "--device", "cuda", "--out", out,
           env=GPU_ENV)
    drawn = {}
    for run, seed in (("a", 1), ("b", 2), ("c", 1)):
        script(name, "--generate", out / "generator_weights.pt", "--num-samples", 16, "--seed",
               seed, "--device", "cuda", "--out", tmp_path / run, env=GPU_ENV)
        drawn[run] = torch.load(tmp_path / run / "generated.pt", weights_only=True) \
            if name == "dcgan_celeba.py" else (tmp_path / run / "generated.png").read_bytes()
    same = torch.allclose if name == "dcgan_celeba.py" else bytes.__eq__
    assert not same(drawn["a"], drawn["b"])  # another seed, other samples
    assert same(drawn["a"], drawn["c"])  # the same seed, the same samples


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_finite_and_saves_float32(amp, tmp_path):
    folder = make_image_folder(tmp_path / "f", n=32, size=40)
    script("dcgan_celeba.py", "--dataroot", folder, *SMALL, "--epochs", 2, "--amp", amp,
           "--log-every", 1, "--device", "cuda", "--out", tmp_path / "o", env=GPU_ENV)
    c = ckpt(tmp_path / "o" / "checkpoint.pt")
    assert all(map(torch.isfinite, torch.tensor(c["G_losses"] + c["D_losses"])))
    assert all(v.dtype == torch.float32 for v in c["netG"].values() if v.is_floating_point())
    assert (amp == "fp16") == bool(c["scaler"])  # the GradScaler's state under fp16 only


def test_ctrl_c_on_cuda_saves_and_resumes_where_it_stopped(tmp_path, signal_at):
    folder = make_image_folder(tmp_path / "f", n=64, size=40)
    flags = ["--dataroot", folder, *SMALL, "--log-every", 1, "--device", "cuda"]
    p = signal_at("dcgan_celeba.py", *flags, "--epochs", 500, "--out", tmp_path / "a",
                  at="[1/500][3/", env=GPU_ENV)
    assert p.returncode == 130 and "Traceback" not in p.stderr, p.stderr[-2000:]
    c = ckpt(tmp_path / "a" / "checkpoint.pt")
    done = c["epoch"] + 1
    script("dcgan_celeba.py", "--resume", tmp_path / "a" / "checkpoint.pt", "--epochs", done,
           env=GPU_ENV)
    script("dcgan_celeba.py", *flags, "--epochs", done, "--out", tmp_path / "b", env=GPU_ENV)
    a, b = rows(tmp_path / "a" / "metrics.csv"), rows(tmp_path / "b" / "metrics.csv")
    assert [r["iteration"] for r in a if r["loss_d"]] == [r["iteration"] for r in b if r["loss_d"]]
    # cuDNN's kernels are not bitwise deterministic: the resumed run follows the same course
    first = next(r for r in a if int(r["iteration"] or 0) >= c["iters"] and r["loss_d"])
    twin = next(r for r in b if r["iteration"] == first["iteration"])
    assert abs(float(first["loss_d"]) - float(twin["loss_d"])) < 0.05
