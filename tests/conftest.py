"""Shared fixtures, each written once: small real image folders and MNIST files, in-process runs
on the CPU, a run stopped by a signal, the one-error-line check. The scripts live in the
repository root; tests import them (and common.py) from there. CUDA is hidden from this process
by the root conftest.py, which pytest reads first."""
import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import helpers  # noqa: E402 (tests/ is on sys.path: pytest puts it there for this file)


@pytest.fixture
def image_folder(tmp_path):
    """image_folder(n=16, size=32, **kw) -> a new --dataroot of n small real JPEGs (the
    tutorial's CelebA layout; flat=True, corrupt=True, seed=: see helpers.make_image_folder)."""
    count = itertools.count()
    return lambda n=16, size=32, **kw: helpers.make_image_folder(
        tmp_path / f"images{next(count)}", n=n, size=size, **kw)


@pytest.fixture
def mnist(tmp_path):
    """mnist(n=64, **kw) -> a new --dataroot with n MNIST digits as torchvision's raw IDX files
    (name="FashionMNIST", n_test=: see helpers.make_mnist)."""
    count = itertools.count()
    return lambda n=64, **kw: helpers.make_mnist(tmp_path / f"mnist{next(count)}", n=n, **kw)


@pytest.fixture
def run_cpu():
    """run_cpu(main, *flags) -> the exit status of main(flags + --device cpu), in this process."""
    return helpers.in_process_cpu


@pytest.fixture
def signal_at():
    """signal_at(script, *flags, at=progress line, sig=SIGINT) -> the CompletedProcess of a run
    signalled once it printed that line (see helpers.signal_at)."""
    return helpers.signal_at


@pytest.fixture
def user_error():
    """user_error(completed, *words): exit 2, one `error:` line naming words, no traceback."""
    return helpers.assert_user_error
