"""One smoke test over all five scripts, as a new user first meets them: a dry run writes its
files, the exported generator loads without the script, `--generate` reads its weights file,
and bad input is one `error:` line that leaves no trace. CPU only, no network, everything under tmp_path; deeper tests are
in tests/."""
import os
import sys

import pytest
import torch

import common

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


@pytest.mark.parametrize("name", ["exponential_gan.py", "sequence_gan.py", "dcgan_mnist.py",
                                  "dcgan_celeba.py", "pggan_hub.py"])
def test_script_runs_exports_generates_and_refuses_bad_input(name, tmp_path):
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

    assert_user_error(script(name, *flags, "--seed", str(2**64), "--out", tmp_path / "bad",
                             env=env, check=False), "--seed")
    assert not (tmp_path / "bad").exists()  # a failed run leaves no trace
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

    # Given the .pt2 program, or another script's weights, it says which file to pass.
    assert_user_error(script(name, "--generate", out / "generator.pt2", "--out", tmp_path / "g1",
                             check=False), "generator_weights.pt")
    common.save_generator(torch.nn.Linear(2, 2), (torch.randn(2, 2),), str(tmp_path), "other_gan",
                          {})
    assert_user_error(script(name, "--generate", tmp_path / "generator_weights.pt",
                             "--out", tmp_path / "g2", check=False), "other_gan.py")
    assert not (tmp_path / "g1").exists() and not (tmp_path / "g2").exists()  # no trace
