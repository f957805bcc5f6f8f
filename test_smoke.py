"""One smoke run per script as a new user meets it: files, export, --generate, refusals."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
from helpers import (assert_user_error, make_fake_hub, make_image_folder,  # noqa: E402
                     make_mnist, rows, script)


def data_flags(name, tmp_path):
    """The flags and environment each script needs to run offline on data the test makes."""
    if name == "dcgan_celeba.py":
        return ["--dataroot", make_image_folder(tmp_path / "faces", n=16, size=32),
                "--image-size", "32"], {}
    if name == "dcgan_mnist.py":
        return ["--dataroot", make_mnist(tmp_path / "mnist", n=64)], {}
    if name == "pggan_hub.py":
        repo, env = make_fake_hub(tmp_path / "hub")
        return ["--repo", repo], env
    return [], {}


def failing_late(name, tmp_path):
    """Flags that pass argparse and fail only where the run could have made its --out: missing
    data, a damaged weights file, and the words its error line names."""
    if name in ("dcgan_celeba.py", "dcgan_mnist.py"):
        os.makedirs(tmp_path / "empty", exist_ok=True)
        return ["--dataroot", tmp_path / "empty"], "--dataroot"
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x80\x02 half a pickle")
    if name == "pggan_hub.py":
        return ["--weights", damaged], "--weights"
    return ["--generate", damaged], "cannot load"


@pytest.mark.parametrize("name", ["exponential_gan.py", "sequence_gan.py", "dcgan_mnist.py",
                                  "dcgan_celeba.py", "pggan_hub.py"])
def test_script_runs_exports_generates_and_refuses_to_replace_or_leave_a_trace(name, tmp_path):
    flags, env = data_flags(name, tmp_path)
    out = tmp_path / "run"
    p = script(name, *flags, "--dry-run", "--out", out, env=env)
    assert p.stdout.startswith("arguments: python "), p.stdout[:200]
    pngs = [f for f in os.listdir(out) if f.endswith(".png")]
    assert pngs and all((out / f).stat().st_size > 0 for f in pngs)

    # A second run into the same folder never replaces the first run's results.
    before = {f: (out / f).read_bytes() for f in os.listdir(out) if not f.startswith(".")}
    again = script(name, *flags, "--dry-run", "--out", out, env=env, check=False)
    assert_user_error(again, "--out")
    assert before == {f: (out / f).read_bytes() for f in before}

    # A run that fails once under way (data, weights) leaves no --out behind.
    bad, words = failing_late(name, tmp_path)
    failed = script(name, *flags, *bad, "--out", tmp_path / "bad", env=env, check=False)
    assert_user_error(failed, words)
    assert not (tmp_path / "bad").exists()
    if name == "pggan_hub.py":  # draws from a hub model: nothing to export or read back
        return

    assert rows(out / "metrics.csv"), "metrics.csv has no rows"
    # The exported generator loads anywhere, without the script, with any batch size.
    program = torch.export.load(str(out / "generator.pt2"))
    example = program.example_inputs[0][0]
    samples = program.module()(torch.randn(3, *example.shape[1:]))
    assert samples.shape[0] == 3 and torch.isfinite(samples).all()

    # --generate reads its weights file (torch.load(weights_only=True): no code runs) into the
    # script's own network, and trains nothing.
    assert {"generator.pt2", "generator_weights.pt"} <= set(os.listdir(out))
    script(name, "--generate", out / "generator_weights.pt", "--num-samples", 4,
           "--out", tmp_path / "gen")
    assert (tmp_path / "gen" / "generated.png").stat().st_size > 0
    assert not (tmp_path / "gen" / "checkpoint.pt").exists()
