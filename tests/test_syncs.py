"""No host sync in the training loop (issue 28): dcgan_celeba.py and dcgan_mnist.py make at most
one `.item()`-like call per iteration on average, end-of-epoch work included, counted on the CPU
(each one would stall a GPU). GAN_EXAMPLES_SHOW_SYNCS=1 prints where each sync comes from."""
import importlib
import os

import pytest

from helpers import count_syncs, in_process, make_image_folder, make_mnist

SHOW = bool(os.environ.get("GAN_EXAMPLES_SHOW_SYNCS"))
BATCHES, BATCH = 8, 4  # one epoch: 8 iterations of 4 images


def data_flags(name, tmp_path):
    """The script's main() and its flags for one epoch of BATCHES batches of small real data."""
    main = importlib.import_module(name[:-3]).main
    if name == "dcgan_celeba.py":
        folder = make_image_folder(tmp_path / "d", n=BATCHES * BATCH, size=32)
        return main, ["--dataroot", folder, "--image-size", 32, "--ngf", 8, "--ndf", 8]
    return main, ["--dataroot", make_mnist(tmp_path / "d", n=BATCHES * BATCH),
                  "--eval-samples", 100]


@pytest.mark.parametrize("extra", [[], ["--log-every", 1000]], ids=["defaults", "few-log-lines"])
@pytest.mark.parametrize("name", ["dcgan_celeba.py", "dcgan_mnist.py"])
def test_training_makes_at_most_one_host_sync_per_iteration(name, extra, tmp_path):
    main, flags = data_flags(name, tmp_path)
    counted = {}
    for epochs in (1, 3):  # start-up and the final figures are the same: they cancel
        status, counted[epochs] = count_syncs(
            in_process, main, *flags, "--batch-size", BATCH, "--workers", 0, "--epochs", epochs,
            *extra, "--device", "cpu", "--out", tmp_path / f"o{epochs}", show=SHOW)
        assert status == 0
    more = counted[3] - counted[1]
    iterations = 2 * BATCHES
    per_iteration = (counted[3].total() - counted[1].total()) / iterations
    where = "\n".join(f"-- {n} more from:\n{site}" for site, n in more.most_common(8))
    assert per_iteration <= 1, f"{per_iteration:.2f} host syncs per iteration:\n{where}"
