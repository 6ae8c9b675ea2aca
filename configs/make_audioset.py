"""Config of the `audioset` experiment: an AudioSet-layout data set.

  python -m recon_jax --config=configs/make_audioset.py --workdir=DIR
  python -m recon_jax --config=configs/make_audioset.py:tiny ...
  python -m recon_jax --config=configs/make_audioset.py:stream ...

Writes Google's layout (balanced_train_segments.csv,
unbalanced_train_segments.csv, eval_segments.csv with their three comment
lines, class_labels_indices.csv, audio/<part>/Y<YTID>.wav) from the event
classes of configs/make_events.py; read it with
`recon_jax.data.audioset.list_audioset(DIR)`. Fields are those of
`recon_jax.data.audioset.get_config`: seed, classes, clip counts per part
(balanced_clips, unbalanced_clips, eval_clips), clip_seconds (10),
sample_rate, naming, missing_fraction (clips listed but not written, as in
any real download), the events' mixing fields, num_workers. The config is
locked: a misspelt override is an error.
"""
from recon_jax.data import audioset


def get_config(size="default"):
  """`size`: "default" (400 balanced, 800 unbalanced, 300 eval 10 s clips;
  10-20 s on 2 cores), "tiny" (24/24/16; about 0.5 s) or "stream" (300/
  2000/200; 784 MB as float32 at 8 kHz; 10-25 s)."""
  c = audioset.get_config(size)
  c.experiment = "audioset"
  c.lock()
  return c
