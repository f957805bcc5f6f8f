"""pggan_hub.py against an offline pytorch_GAN_zoo: images, --weights, signals, one-line errors."""
# The fake hub (tests/helpers.make_fake_hub) has the real hub branch's layout, entry point and
# checkpoint format, and a tiny network. No network: the proxies point at a closed port. Most
# runs call main() in-process (no training, nothing global is changed); the hub's `models`
# package is forgotten between tests.
import json
import os
import re
import shutil
import signal
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import pggan_hub
from helpers import ENV, in_process, make_fake_hub, save_fake_pgan, start

CELEBA_512 = "celebaHQ16_december_s7_i96000-9c72988c.pth"


def forget_hub_modules():
    for name in [n for n in sys.modules if n in ("hubconf", "models") or n.startswith("models.")]:
        del sys.modules[name]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fake repository, its cached weights (16 px), this process offline and logging how the
    entry point is called."""
    repo, env = make_fake_hub(tmp_path / "hub")
    for k, v in {**{k: ENV[k] for k in ENV if "proxy" in k.lower()}, **env,
                 "FAKE_HUB_LOG": str(tmp_path / "calls.jsonl")}.items():
        monkeypatch.setenv(k, v)
    yield repo, env
    forget_hub_modules()


def main(*argv):
    """pggan_hub.main in-process, as the command line would run it; returns (status, stderr)."""
    forget_hub_modules()
    return in_process(pggan_hub.main, *argv)


def calls(tmp_path):
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def png_size(path):
    with Image.open(path) as im:
        return im.size


# -- the recipe, offline ---------------------------------------------------------------------
def test_the_recipes_call_runs_from_the_hub_cache(tmp_path, hub, capsys):
    repo, env = hub
    # the hub cache holds the repository, as torch.hub leaves a first download
    os.symlink(repo, os.path.join(env["TORCH_HOME"], "hub", "facebookresearch_pytorch_GAN_zoo_hub"))
    out = tmp_path / "out"
    assert main("--out", out, "--save-images", "--interpolate", 4, "--batch-size", 2) == 0
    p = capsys.readouterr()
    assert p.out.startswith("arguments: python pggan_hub.py --model-name celebAHQ-512")
    # The recipe's call: PGAN(model_name='celebAHQ-512', pretrained=True, useGPU=<cuda?>).
    assert calls(tmp_path) == [{"pretrained": True, "args": [], "model_name": "celebAHQ-512",
                                "useGPU": False}]
    assert "downloading" not in p.out.lower() + p.err.lower()
    assert "seed: 0" in p.out and "images/s" in p.out and "ETA" in p.out
    # 5 images of 16 px in one row of the recipe's grid (padding 2)
    assert png_size(out / "pggan_celebAHQ-512.png") == (5 * 18 + 2, 20)
    singles = sorted(f.name for f in out.glob("pggan_celebAHQ-512_0*.png"))
    assert singles == [f"pggan_celebAHQ-512_{i:05d}.png" for i in range(5)]
    assert png_size(out / singles[0]) == (16, 16)
    assert png_size(out / "pggan_celebAHQ-512_interp.png") == (4 * 18 + 2, 20)
    with Image.open(out / "pggan_celebAHQ-512_interp.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (16, 16)  # 4 steps there, 2 back
        first = np.asarray(gif.convert("RGB"), dtype=np.int16)
    # the walk starts at image 0 (GIF colours are quantized, hence the tolerance)
    assert np.abs(first - pixels(out / singles[0])).mean() < 8


def test_seed_batch_size_and_precision(tmp_path, hub):
    repo, _ = hub

    def images(name, *flags):
        assert main("--repo", repo, "--out", tmp_path / name, "--save-images",
                    "--num-images", 3, *flags) == 0
        return np.stack([pixels(tmp_path / name / f"pggan_celebAHQ-512_{i:05d}.png")
                         for i in range(3)])

    a = images("a", "--seed", 7)
    assert np.abs(images("b", "--seed", 7, "--batch-size", 1) - a).max() <= 1  # same faces
    assert all(np.abs(x - y).mean() > 5 for x, y in zip(a, images("c", "--seed", 8)))
    half = images("d", "--seed", 7, "--half")  # bfloat16: about 3 digits
    assert 0 < np.abs(half - a).mean() < 8
    assert np.abs(images("e", "--seed", 7, "--avg-generator") - a).mean() > 0.5  # avgG


def test_local_weights_are_read_without_running_code(tmp_path, hub, capsys):
    repo, env = hub
    weights = save_fake_pgan(repo, tmp_path / "my_dtd.pth", size=8, seed=1)
    out = tmp_path / "out"
    assert main("--repo", repo, "--weights", weights, "--model-name", "DTD", "--num-images", 3,
                "--out", out) == 0
    # --weights: the entry point builds the model (pretrained=False), the script loads the file
    assert calls(tmp_path) == [{"pretrained": False, "args": [], "model_name": "DTD",
                                "useGPU": False}]
    assert png_size(out / "pggan_DTD.png") == (3 * 10 + 2, 12)
    assert not os.path.exists(os.path.join(env["TORCH_HOME"], "hub", "checkpoints",
                                           "testDTD_s5_i96000-04efa39f.pth"))
    # a .pth whose pickle would run code is refused, and the code does not run
    torch.save({"config": Payload(str(tmp_path / "ran")), "netG": {}}, tmp_path / "evil.pth")
    assert main("--repo", repo, "--weights", tmp_path / "evil.pth", "--out", tmp_path / "o2") == 2
    one_error(capsys, f"--weights {tmp_path / 'evil.pth'} is not a pytorch_GAN_zoo checkpoint")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "o2").exists()


class Payload:
    """Pickles as a call of os.system: what a tampered checkpoint would hide."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_adam_workaround_is_needed_and_put_back(tmp_path, hub, capsys):
    repo, _ = hub
    original = torch.optim.Adam
    sys.path.insert(0, repo)
    try:  # the fake fails as the real repository does on PyTorch >= 2.6 when nothing is done
        from models.progressive_gan import ProgressiveGAN
        with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
            ProgressiveGAN(useGPU=False, depthScale0=8)
    finally:
        sys.path.remove(repo)
    assert main("--repo", repo, "--out", tmp_path / "a") == 0
    assert torch.optim.Adam is original
    with open(os.path.join(repo, "hubconf.py"), "a") as f:  # an entry point that raises
        f.write("\ndef PGAN(*args, **kwargs):\n    raise ValueError('broken entry point')\n")
    assert main("--repo", repo, "--out", tmp_path / "b") == 2
    one_error(capsys, f"the hub code in {repo} failed", "ValueError: broken entry point")
    assert torch.optim.Adam is original and not (tmp_path / "b").exists()


def test_earlier_images_are_never_replaced_unless_asked(tmp_path, hub, capsys):
    repo, _ = hub
    out = tmp_path / "out"
    assert main("--repo", repo, "--out", out, "--seed", 1) == 0
    grid = (out / "pggan_celebAHQ-512.png").read_bytes()
    capsys.readouterr()
    assert main("--repo", repo, "--out", out, "--seed", 2) == 2
    one_error(capsys, f"--out {out} holds images of an earlier run", "--overwrite")
    assert (out / "pggan_celebAHQ-512.png").read_bytes() == grid
    assert main("--repo", repo, "--out", out, "--model-name", "celebAHQ-256") == 2  # not cached
    one_error(capsys, "cannot download", "celebaHQ_s6_i80000-6196db68.pth", "--weights")
    assert main("--repo", repo, "--out", out, "--seed", 2, "--overwrite") == 0
    assert (out / "pggan_celebAHQ-512.png").read_bytes() != grid


def test_sigterm_writes_the_grid_so_far_and_exits_130(tmp_path, hub):
    repo, env = hub
    p = start("pggan_hub.py", "--repo", repo, "--num-images", 10000, "--batch-size", 1,
              "--save-images", "--out", tmp_path, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tmp_path.glob("*_0*.png"))) < 3:
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted after" in err and "Traceback" not in err, err
    assert png_size(tmp_path / "pggan_celebAHQ-512.png")[1] > 16  # the grid of what was made
    assert len(list(tmp_path.glob("*_0*.png"))) < 10000


# -- faults: one `error:` line each ------------------------------------------------------------
def one_error(capsys, *words):
    """Exactly one `error:` line, the last thing on stderr (nothing of its text on lines after
    it), naming `words`."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == lines[0], err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_offline_without_cache_names_what_to_put_where(tmp_path, hub, monkeypatch, capsys):
    home = tmp_path / "empty_torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert main("--out", tmp_path / "out") == 2
    line = one_error(capsys, "error: cannot download", "--repo", "--weights")
    assert str(home / "hub" / "facebookresearch_pytorch_GAN_zoo_hub") in line
    assert str(home / "hub" / "checkpoints" / CELEBA_512) in line
    # with the repository there (--repo), only the weights are named
    assert main("--repo", hub[0], "--model-name", "celeba", "--out", tmp_path / "out") == 2
    line = one_error(capsys, "celebaCropped_s5_i83000-2b0acc76.pth", "--weights")
    assert "git clone" not in line
    assert not (tmp_path / "out").exists()  # a failed run leaves no --out folder


def test_broken_repository_and_files_are_one_error_line(tmp_path, hub, monkeypatch, capsys):
    """Whatever fails inside the hub code is one line naming the code and what failed; a bad
    --weights file is one line naming the file. No run leaves an --out folder."""
    repo, env = hub
    cached = os.path.join(env["TORCH_HOME"], "hub", "checkpoints", CELEBA_512)
    with open(cached, "rb") as f:
        whole = f.read()
    with open(cached, "wb") as f:  # a damaged download in the cache
        f.write(whole[:1000])
    assert main("--repo", repo, "--out", tmp_path / "o1") == 2
    one_error(capsys, f"the hub code in {repo} failed", f"delete {cached}")
    with open(cached, "wb") as f:
        f.write(whole)

    monkeypatch.setenv("FAKE_HUB_IMPORT", "no_such_package_for_pggan")  # a missing package
    assert main("--repo", repo, "--out", tmp_path / "o2") == 2
    one_error(capsys, "ModuleNotFoundError", "no_such_package_for_pggan")
    monkeypatch.delenv("FAKE_HUB_IMPORT")

    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    with open(broken / "hubconf.py", "a") as f:
        f.write("\ndef PGAN(:\n")
    assert main("--repo", broken, "--out", tmp_path / "o3") == 2
    one_error(capsys, f"the hub code in {broken} failed", "SyntaxError", "hubconf.py, line")

    garbage, misfit = tmp_path / "garbage.pth", tmp_path / "misfit.pth"
    garbage.write_bytes(b"not a checkpoint")
    torch.save({"netG": {}}, misfit)  # a torch file, but no PGAN checkpoint
    assert main("--repo", repo, "--weights", garbage, "--out", tmp_path / "o4") == 2
    one_error(capsys, f"--weights {garbage} is not a pytorch_GAN_zoo checkpoint")
    assert main("--repo", repo, "--weights", misfit, "--out", tmp_path / "o5") == 2
    one_error(capsys, "does not fit the hub's PGAN (KeyError")
    other = tmp_path / "other.pth"  # a checkpoint of another network: a line per wrong key
    torch.save({"config": {}, "netG": {"a.weight": torch.zeros(2), "b.weight": torch.zeros(2)}},
               other)
    assert main("--repo", repo, "--weights", other, "--out", tmp_path / "o6") == 2
    one_error(capsys, "does not fit the hub's PGAN (RuntimeError", "Unexpected key(s)",
              "pass a .pth of --model-name celebAHQ-512")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))


@pytest.mark.parametrize("flags, message", [
    (["--repo", "no/such/dir"], "has no hubconf.py"),
    (["--weights", "no_such.pth"], "does not exist"),
    (["--num-images", "1e10"], "--num-images"),
    (["--interpolate", "100000000"], "--interpolate"),
    (["--interpolate", "1"], "--interpolate"),
    (["--interpolate", "3", "--num-images", "1"], "--num-images 2 or more"),
    (["--seed", str(2**64)], "--seed"),
    (["--batch-size", "1e9"], "--batch-size"),
    (["--model-name", "celebahq-512"], "invalid choice"),
    pytest.param(["--device", "cuda"], "not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_bad_flags_are_one_error_line(tmp_path, hub, capsys, flags, message):
    assert main("--repo", hub[0], *flags, "--out", tmp_path / "out") == 2
    one_error(capsys, message)
    assert not (tmp_path / "out").exists()


def test_slerp_ends_and_norm():
    z0, z1 = torch.randn(512), torch.randn(512)
    assert torch.allclose(pggan_hub.slerp(z0, z1, torch.tensor(0.0)), z0, atol=1e-5)
    assert torch.allclose(pggan_hub.slerp(z0, z1, torch.tensor(1.0)), z1, atol=1e-5)
    mid = pggan_hub.slerp(z0, z1, torch.tensor(0.5))
    assert mid.norm() > 0.95 * min(z0.norm(), z1.norm())  # no shrinking toward the origin


def test_help_has_the_shared_groups_and_words():
    parser, _ = pggan_hub.parse_args([])
    text = parser.format_help()
    assert re.findall(r"^(\S.*):$", text, re.M) == [
        "options", "the tutorial's inputs", "data and speed", "additions",
        "hub source (offline use)", "run control"]
    assert "random seed of the noise, printed at the start" in " ".join(text.split())
    assert all(a.help for a in parser._actions)  # every flag says what it does
