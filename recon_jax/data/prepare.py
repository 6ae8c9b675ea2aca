"""The phone data an experiment config asks for: real TIMIT or generated."""
import os
import shutil

from absl import logging
import ml_collections

from recon_jax import provenance
from recon_jax.data import corpus as corpus_lib
from recon_jax.data import features
from recon_jax.data import timit
from recon_jax.ops.spectral import WINDOW


def corpus_settings(size: str = "default") -> ml_collections.ConfigDict:
  """The `corpus` block of an experiment config.

  timit_dir: a real TIMIT-layout corpus to read; empty -> generate one.
  generated_dir: where to generate it (empty -> WORKDIR/corpus).
  generator: make_timit_corpus settings (see recon_jax.data.corpus).
  percentile: TRAIN phone-length percentile in (0, 100] above which phones
    are dropped (thesis: 95).
  stft_window: the STFT window (see recon_jax.ops.spectral): "hamming",
    MATLAB's symmetric Hamming as the thesis's `spectrogram`, by default;
    "periodic_hann" is the window this package used before.
  """
  c = ml_collections.ConfigDict()
  c.timit_dir = ""
  c.generated_dir = ""
  c.generator = corpus_lib.get_config(size)
  c.percentile = 95.0
  c.stft_window = WINDOW
  c.lock()  # A misspelt field (corpus.timitdir) fails, not ignored.
  return c


_FIELDS = tuple(corpus_settings("tiny").keys())


def check_corpus_settings(corpus_config):
  """Checks a `corpus` block before any work; raises at the first problem.

  Raises:
    ValueError naming an unknown (e.g. misspelt) or missing field, or a
    value outside its range; FileNotFoundError for a timit_dir that is not
    a directory.
  """
  keys = set(corpus_config.keys())
  unknown, missing = sorted(keys - set(_FIELDS)), sorted(set(_FIELDS) - keys)
  if unknown or missing:
    raise ValueError(
        "corpus: " + "; ".join(
            ([f"unknown field(s) {unknown}"] if unknown else []) +
            ([f"missing field(s) {missing}"] if missing else [])) +
        f" (known: {sorted(_FIELDS)})")
  for name in ("timit_dir", "generated_dir"):
    value = corpus_config[name]
    if not isinstance(value, str):
      raise ValueError(f"corpus.{name}={value!r}: must be a path (string)")
    if value:
      provenance.check_workdir(value, flag=f"corpus.{name}")
  if corpus_config.timit_dir and not os.path.isdir(corpus_config.timit_dir):
    raise FileNotFoundError(f"corpus.timit_dir={corpus_config.timit_dir!r} "
                            "is not a directory")
  try:
    features.check_settings(percentile=corpus_config.percentile,
                            window=_window(corpus_config.stft_window))
  except ValueError as e:
    raise ValueError(f"corpus: {e}") from None
  corpus_lib.check_config(corpus_config.generator)


def _window(value):
  """A config's stft_window: a name, or a list/tuple of values."""
  return value if isinstance(value, str) else tuple(value)


def generate_corpus(root: str, generator_config, seed=None):
  """Generates a corpus at `root` (docs/methods.md, A0), appearing only when
  complete.

  Writes into `<root>.partial` (removed first: a killed run restarts
  cleanly) and renames it to `root` when every file is written. If `root`
  already holds a complete corpus made with the same settings, nothing is
  done; an incomplete one left by a killed `make_timit_corpus` there is
  deleted and made again.

  Args:
    root: the corpus directory (absent, empty, or a corpus made before).
    generator_config: `corpus.get_config()`-like settings (checked first).
    seed: overrides generator_config.seed.

  Returns:
    make_timit_corpus's summary, or None when `root` was already complete.

  Raises:
    ValueError if `root` holds something else: another corpus (the
    differing settings are named) or files that are not a generated corpus.
  """
  root = provenance.check_workdir(root, flag="corpus directory")
  settings = corpus_lib.generator_settings(generator_config, seed)
  settings_path = os.path.join(root, timit.GENERATOR_CONFIG)
  if os.path.isdir(root) and os.listdir(root):
    if os.path.exists(os.path.join(root, timit.IN_PROGRESS)):
      logging.warning("%s: an incomplete generated corpus (%s); generating it "
                      "again", root, timit.IN_PROGRESS)
      shutil.rmtree(root)
    else:
      saved = (provenance.read_json(settings_path)
               if os.path.exists(settings_path) else None)
      diffs = (["no " + settings_path] if saved is None else
               corpus_lib.same_settings(saved, settings))
      if diffs:
        raise ValueError(
            f"{root} was not generated with this corpus.generator config "
            f"({'; '.join(diffs[:6])}); delete it, set corpus.generated_dir "
            "to a new directory, or read it as it is with corpus.timit_dir")
      return None
  elif os.path.exists(root) and not os.path.isdir(root):
    raise ValueError(f"{root} is a file, not a corpus directory")
  partial = root + timit.PARTIAL_SUFFIX
  if os.path.exists(partial):
    logging.warning("Removing the half-written corpus %s of a killed run",
                    partial)
    shutil.rmtree(partial)
  logging.info("Generating a TIMIT-layout corpus in %s", root)
  summary = corpus_lib.make_timit_corpus(partial, generator_config, seed)
  if os.path.isdir(root):
    os.rmdir(root)  # empty (checked above)
  os.replace(partial, root)
  return summary


def ensure_corpus(corpus_config, workdir: str) -> str:
  """The corpus root: `timit_dir` if set, else a generated corpus.

  Generation goes through `generate_corpus`: a killed run never leaves a
  half corpus that looks finished, and a rerun restarts it cleanly.
  """
  if corpus_config.timit_dir:
    if not os.path.isdir(corpus_config.timit_dir):
      raise FileNotFoundError(f"corpus.timit_dir={corpus_config.timit_dir!r} "
                              "is not a directory")
    return corpus_config.timit_dir
  root = corpus_config.generated_dir or os.path.join(workdir, "corpus")
  generate_corpus(root, corpus_config.generator)
  return root


def phone_data_from_config(corpus_config, workdir: str):
  """PhoneData for an experiment: corpus (made if needed) -> features.

  Every field of the block is used (checked first, see
  check_corpus_settings); the config is only read, never modified. Features
  are cached under WORKDIR/cache.
  """
  check_corpus_settings(corpus_config)
  root = ensure_corpus(corpus_config, workdir)
  return features.load_phone_data(
      root, percentile=corpus_config.percentile,
      window=_window(corpus_config.stft_window),
      cache_dir=os.path.join(workdir, "cache"))
