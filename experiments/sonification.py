"""Runs every analysis of the sonification paper (SPEC B3, B4) and writes
the offline page, on trained CNN12s.

  python experiments/sonification.py --config=configs/sonification.py \
      --workdir=runs/sonification --config.supervised=runs/cnn12_events \
      --config.contrastive=runs/cnn12_simclr \
      --config.probe=runs/cnn12_probe_events \
      --config.finetune=runs/cnn12_finetune_events \
      --config.data.dir=runs/data/events

See configs/sonification.py and recon_jax/experiments/sonification.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recon_jax.experiments import sonification  # noqa: E402

if __name__ == "__main__":
  sonification.run_entry_point(sonification.ANALYSES)
