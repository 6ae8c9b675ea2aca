"""Runs top-3 clips per feature map and layer
on trained CNN12s (flags: as experiments/sonification.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recon_jax.experiments import sonification  # noqa: E402

if __name__ == "__main__":
  sonification.run_entry_point(("topk",))
