"""Config of the `events` experiment: an FSD50K-layout event data set.

  python -m recon_jax --config=configs/make_events.py \
      --workdir=DIR
  python -m recon_jax --config=configs/make_events.py:tiny ...

Fields are those of `recon_jax.data.events.get_config` (seed, classes, clip
counts per split, clip length, events per clip, event lengths and levels,
noise floor, workers). The config is locked: a misspelt override is an
error.
"""
from recon_jax.data import events


def get_config(size="default"):
  """`size`: "default" (1000 train, 200 val, 400 eval 5 s clips) or "tiny"."""
  c = events.get_config(size)
  c.experiment = "events"
  c.lock()
  return c
