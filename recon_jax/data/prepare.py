"""The phone data an experiment config asks for: real TIMIT or generated."""
import json
import os
import shutil

from absl import logging
import ml_collections

from recon_jax.data import corpus as corpus_lib
from recon_jax.data import features


def corpus_settings(size: str = "default") -> ml_collections.ConfigDict:
  """The `corpus` block of an experiment config.

  timit_dir: a real TIMIT-layout corpus to read; empty -> generate one.
  generated_dir: where to generate it (empty -> WORKDIR/corpus).
  generator: make_timit_corpus settings (see recon_jax.data.corpus).
  """
  c = ml_collections.ConfigDict()
  c.timit_dir = ""
  c.generated_dir = ""
  c.generator = corpus_lib.get_config(size)
  c.percentile = 95.0
  return c


def ensure_corpus(corpus_config, workdir: str) -> str:
  """The corpus root: `timit_dir` if set, else a generated corpus.

  Generation writes to a '.partial' sibling and renames it when complete,
  so a killed run never leaves a half corpus that looks finished.
  """
  if corpus_config.timit_dir:
    if not os.path.isdir(corpus_config.timit_dir):
      raise FileNotFoundError(f"corpus.timit_dir={corpus_config.timit_dir!r} "
                              "is not a directory")
    return corpus_config.timit_dir
  root = corpus_config.generated_dir or os.path.join(workdir, "corpus")
  settings = json.loads(corpus_config.generator.to_json_best_effort())
  settings_path = os.path.join(root, "generator_config.json")
  if os.path.isdir(root):
    saved = None
    if os.path.exists(settings_path):
      with open(settings_path) as f:
        saved = json.load(f)
    if saved != settings:
      raise ValueError(
          f"{root} was not generated with this corpus.generator config "
          f"({'no ' + settings_path if saved is None else 'settings differ'}); "
          "delete it, set corpus.generated_dir to a new directory, or read "
          "it as it is with corpus.timit_dir")
    return root
  partial = root + ".partial"
  shutil.rmtree(partial, ignore_errors=True)
  logging.info("Generating a TIMIT-layout corpus in %s", root)
  corpus_lib.make_timit_corpus(partial, corpus_config.generator,
                               corpus_config.generator.seed)
  with open(os.path.join(partial, "generator_config.json"), "w") as f:
    json.dump(settings, f, indent=1, sort_keys=True)
  os.replace(partial, root)
  return root


def phone_data_from_config(corpus_config, workdir: str):
  """PhoneData for an experiment: corpus (made if needed) -> features.

  Features are cached under WORKDIR/cache.
  """
  root = ensure_corpus(corpus_config, workdir)
  return features.load_phone_data(root, percentile=corpus_config.percentile,
                                  cache_dir=os.path.join(workdir, "cache"))
