"""No host sync in the training loop (issue 28): dcgan_celeba.py and dcgan_mnist.py make at most
one `.item()`-like call per iteration on average, end-of-epoch work included, counted on the CPU
(each one would stall a GPU). GAN_EXAMPLES_SHOW_SYNCS=1 prints where each sync comes from."""
import importlib
import os

import pytest

from helpers import count_syncs, in_process_cpu

SHOW = bool(os.environ.get("GAN_EXAMPLES_SHOW_SYNCS"))
BATCHES, BATCH = 8, 4  # one epoch: 8 iterations of 4 images


# With the defaults (--ema on, a stats line every 50 iterations: here each epoch's first, so a
# larger --log-every counts the same) and no DataLoader workers (the count is this process's).
@pytest.mark.parametrize("name", ["dcgan_celeba.py", "dcgan_mnist.py"])
def test_training_makes_at_most_one_host_sync_per_iteration(name, image_folder, mnist, tmp_path):
    main = importlib.import_module(name[:-3]).main
    flags = ["--dataroot", image_folder(n=BATCHES * BATCH), "--image-size", 32, "--ngf", 8,
             "--ndf", 8] if name == "dcgan_celeba.py" else \
        ["--dataroot", mnist(n=BATCHES * BATCH), "--eval-samples", 100]
    counted = {}
    for epochs in (1, 3):  # start-up and the final figures are the same: they cancel
        status, counted[epochs] = count_syncs(
            in_process_cpu, main, *flags, "--batch-size", BATCH, "--workers", 0, "--epochs",
            epochs, "--out", tmp_path / f"o{epochs}", show=SHOW)
        assert status == 0
    per_iteration = (counted[3].total() - counted[1].total()) / (2 * BATCHES)
    where = "\n".join(f"-- {n} more from:\n{site}"
                      for site, n in (counted[3] - counted[1]).most_common(8))
    assert per_iteration <= 1, f"{per_iteration:.2f} host syncs per iteration:\n{where}"
