"""Config of the `corpus` experiment: an offline TIMIT-layout corpus.

  python -m recon_jax --config=configs/make_corpus.py --workdir=DIR
  python -m recon_jax --config=configs/make_corpus.py:tiny ...

Fields are those of `recon_jax.data.corpus.get_config` (seed, speakers per
dialect region and split, sentences per speaker, rate/pitch ranges, ...).
The config is locked: a misspelt override (--config.sed=3) is an error.
"""
from recon_jax.data import corpus


def get_config(size="default"):
  """`size`: "default" (~15k TRAIN / ~5k TEST phones) or "tiny" (tests)."""
  c = corpus.get_config(size)
  c.experiment = "corpus"
  c.lock()
  return c
