"""Config of the `keywords` experiment: a Speech Commands-layout set.

  python -m recon_jax --config=configs/make_keywords.py \
      --workdir=DIR
  python -m recon_jax --config=configs/make_keywords.py:tiny ...

Fields are those of `recon_jax.data.keywords.get_config` (seed, words,
speakers per split, utterances per word and speaker, rate/pitch ranges,
levels, background clip length, workers). The config is locked: a misspelt
override (--config.sed=3) is an error.
"""
from recon_jax.data import keywords


def get_config(size="default"):
  """`size`: "default" (35 words x 48 clips, 1120 for training) or "tiny"."""
  c = keywords.get_config(size)
  c.experiment = "keywords"
  c.lock()
  return c
