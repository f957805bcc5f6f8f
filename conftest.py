"""pytest reads this file before any test file: the tests run on the CPU, so CUDA is hidden here,
before anything imports torch (tests/test_gpu.py gives the user's devices back to the scripts it
starts, through helpers.GPU_ENV)."""
import os

# The user's own setting, kept for the GPU tests ("unset": every GPU was visible).
os.environ.setdefault("GAN_EXAMPLES_CUDA_VISIBLE_DEVICES",
                      os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
os.environ["CUDA_VISIBLE_DEVICES"] = ""

# pytest -n N (pytest-xdist, requirements-test.txt): N test processes share the cores, so each
# runs torch on one thread (no fight over the cores; a run in a test and a run it starts then
# sum in the same order, which the bit-for-bit resume tests compare)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
