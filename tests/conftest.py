"""Shared fixtures. The scripts live in the repository root; tests import them (and common.py)
from there. CUDA is hidden from this process by the root conftest.py, which pytest reads first."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
