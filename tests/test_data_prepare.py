"""An experiment's data: generated once, never silently swapped."""
import os

import numpy as np
import pytest

from recon_jax import data
from recon_jax.data import prepare


def test_generated_corpus_is_reused_only_for_the_same_settings(tmp_path):
  config = prepare.corpus_settings("tiny")
  config.generator.sx_per_speaker = 1
  root = prepare.ensure_corpus(config, str(tmp_path))
  assert root == os.path.join(str(tmp_path), "corpus")
  assert os.path.isdir(os.path.join(root, "TRAIN"))
  assert not os.path.exists(root + ".partial")
  stamp = os.stat(os.path.join(root, "generator_config.json")).st_mtime_ns
  assert prepare.ensure_corpus(config, str(tmp_path)) == root
  assert os.stat(os.path.join(root, "generator_config.json")).st_mtime_ns == stamp
  config.generator.seed = 1
  with pytest.raises(ValueError, match="not generated with this"):
    prepare.ensure_corpus(config, str(tmp_path))


def test_missing_timit_dir_is_a_clear_error(tmp_path):
  config = prepare.corpus_settings("tiny")
  config.timit_dir = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    prepare.ensure_corpus(config, str(tmp_path))


def test_balanced_indices_refuses_unreproducible_or_out_of_range_input():
  with pytest.raises(ValueError, match="seed"):
    data.balanced_indices(np.array([0, 1]), 2, None)
  with pytest.raises(ValueError, match="outside"):
    data.balanced_indices(np.array([0, 0, 5, -1]), 2, 0, num_classes=2)
