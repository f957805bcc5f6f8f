"""The scripts live in the repository root; tests import them (and common.py) from there."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
