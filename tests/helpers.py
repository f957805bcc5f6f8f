"""What every test file needs: run a script as a user does, and check what a user would see."""
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
       **{k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                            "HTTPS_PROXY")}}  # no network, ever


def script(name, *args, check=True, timeout=600, env=None, cwd=None):
    """Run ROOT/name with real flags in a subprocess; returns the CompletedProcess."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, name), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout,
                       env={**ENV, **(env or {})}, cwd=cwd)
    if check:
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return p


def start(name, *args, env=None, cwd=None):
    """Start ROOT/name in its own process group (for signal tests); returns the Popen."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, name), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, **(env or {})}, cwd=cwd, start_new_session=True)


def assert_user_error(p, *words):
    """Exit 2 with exactly one `error:` line on stderr, no traceback, mentioning `words`."""
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, p.stderr[-3000:]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def rows(path):
    """metrics.csv as a list of dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_image_folder(root, n=16, size=32, flat=False, corrupt=False, seed=0):
    """n small real JPEGs (a bright disc on a noisy background) in root/img_align_celeba/ (the
    DCGAN tutorial's CelebA layout) or, with flat, directly in root; corrupt adds one file that
    is not a JPEG. Returns root, usable as dcgan_celeba.py --dataroot."""
    import numpy as np
    from PIL import Image
    folder = root if flat else os.path.join(root, "img_align_celeba")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
        cx, cy = size // 2 + rng.integers(-size // 8, size // 8 + 1, size=2)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size // 3) ** 2] = rng.integers(120, 255, size=3)
        Image.fromarray(img).save(os.path.join(folder, f"{i + 1:06d}.jpg"), quality=90)
    if corrupt:
        with open(os.path.join(folder, f"{n + 1:06d}.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return str(root)
