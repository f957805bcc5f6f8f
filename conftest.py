"""pytest reads this file before any test file: the tests run on the CPU, so CUDA is hidden here,
before anything imports torch (tests/test_gpu.py gives the user's devices back to the scripts it
starts, through helpers.GPU_ENV)."""
import os

# The user's own setting, kept for the GPU tests ("unset": every GPU was visible).
os.environ.setdefault("GAN_EXAMPLES_CUDA_VISIBLE_DEVICES",
                      os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
os.environ["CUDA_VISIBLE_DEVICES"] = ""
