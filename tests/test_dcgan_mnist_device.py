"""dcgan_mnist.py on any device: no host sync in the training loop between progress lines, --device
auto's order, the precision named on the device line, --seed kept apart from the classifier's."""
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dcgan_mnist
from helpers import in_process, make_mnist, script


class HostSyncs(TorchDispatchMode):
    """Counts aten._local_scalar_dense (.item(), float(t), bool(t), int(t)): the op that makes
    the host wait for the device. Syncs made by torch.optim's own code (Adam's step count on the
    CPU) are left out; those of hooks and averaged models called from it are counted."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            files = [f.filename for f in traceback.extract_stack()]
            owner = next((f for f in reversed(files) if "torch/optim/" in f or
                          f.endswith("dcgan_mnist.py")), "")
            if "torch/optim/" not in owner or "swa_utils" in owner:
                self.count += 1
        return func(*args, **(kwargs or {}))


def syncs(root, tmp_path, n, *flags):
    with HostSyncs() as counter:
        assert in_process(dcgan_mnist.main, "--dataroot", root, "--subset", n, "--epochs", 1,
                          "--batch-size", 8, "--device", "cpu", "--out", tmp_path / f"o{n}",
                          *flags) == 0
    return counter.count


def test_no_host_sync_in_the_loop_between_progress_lines(tmp_path):
    """A one-epoch run of 8 more iterations (EMA on, as by default) makes not one more sync when
    no progress line falls between (tests/test_syncs.py holds the average with the defaults)."""
    root = make_mnist(tmp_path / "data", n=64)
    quiet = ["--log-every", 1000, "--sample-every", 1000, "--no-eval", "--ema", 0.99]
    assert syncs(root, tmp_path, 64, *quiet) == syncs(root, tmp_path, 32, *quiet)


def test_device_auto_picks_the_cpu_here_and_names_the_precision(tmp_path):
    root = make_mnist(tmp_path / "data", n=64)
    p = script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--out", tmp_path / "a")
    line = next(x for x in p.stdout.splitlines() if x.startswith("device: "))
    expected = "bf16 autocast" if torch.cpu._is_avx512_bf16_supported() else "float32"
    if torch.backends.mps.is_available():  # auto: cuda (hidden from the tests), then mps
        assert line.startswith("device: mps"), line
    else:
        assert line == f"device: cpu, {expected}", line
    p = script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--amp", "off", "--device",
               "cpu", "--out", tmp_path / "b")
    assert "device: cpu, float32" in p.stdout.splitlines()
    p = script("dcgan_mnist.py", "--dataroot", root, "--dry-run", "--amp", "fp16", "--device",
               "cpu", "--out", tmp_path / "c", check=False)
    assert p.returncode == 2 and "--amp fp16 needs a CUDA GPU" in p.stderr
    assert not (tmp_path / "c").exists()


def test_seed_changes_the_training_noise_with_the_quality_classifier_on(tmp_path, monkeypatch):
    """The classifier seeds its own stream and leaves the run's alone: two seeds, two runs."""
    root = make_mnist(tmp_path / "data", n=64)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = {}
    for run, seed in (("a", 1), ("b", 2), ("c", 1)):
        assert in_process(dcgan_mnist.main, "--dataroot", root, "--dry-run", "--eval",
                          "--eval-samples", 100, "--seed", seed, "--device", "cpu", "--out",
                          tmp_path / run) == 0
        weights[run] = torch.load(tmp_path / run / "generator_weights.pt",
                                  weights_only=True)["state_dict"]["fc.weight"]
    assert not torch.equal(weights["a"], weights["b"])
    assert torch.equal(weights["a"], weights["c"])
