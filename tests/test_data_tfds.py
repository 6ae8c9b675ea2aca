"""TFDS speech_commands as a keyword source (mocked: no network, no data)."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from recon_jax.data import tfds_source
from recon_jax.data.audio_io import AudioError
import subprocess_env  # tests/subprocess_env.py


@pytest.fixture(scope="module")
def mocked():
  with tfds.testing.mock_data(num_examples=5):
    return tfds_source.load_tfds_speech_commands("/nonexistent/tfds")


def test_mocked_speech_commands(mocked):
  d = mocked
  assert len(d.class_names) == 12 and d.class_names[-2:] == ("_silence_",
                                                             "_unknown_")
  assert d.sample_rate == 8000 and d.background == ()
  for split in ("train", "validation", "test"):
    s = d.split(split)
    assert s.waveforms.shape == (5, 8000) and s.waveforms.dtype == np.float32
    assert s.labels.dtype == np.int32 and np.all(s.labels < 12)
    np.testing.assert_allclose(np.max(np.abs(s.waveforms), axis=1), 1.0,
                               rtol=1e-6)
    assert s.files[0] == f"speech_commands/{split}[0]"


def test_clips_are_resampled_from_16k(mocked):
  with tfds.testing.mock_data(num_examples=2):
    ds = tfds.load("speech_commands", split="train", data_dir="/nonexistent",
                   download=False)
    raw = [ex["audio"] for ex in tfds.as_numpy(ds)]
  from recon_jax.data import audio_io  # pylint: disable=g-import-not-at-top
  for x, w in zip(raw, mocked.train.waveforms):
    y = audio_io.resample(x.astype(np.float32) / 32768.0, 16000, 8000)
    np.testing.assert_allclose(w[:len(y)], y / np.max(np.abs(y)), atol=1e-6)
    assert not np.any(w[len(y):])
  with tfds.testing.mock_data(num_examples=2):
    again = tfds_source.load_tfds_speech_commands("/nonexistent",
                                                  max_examples=2)
    assert len(again.test) == 2
    np.testing.assert_array_equal(again.train.waveforms,
                                  mocked.train.waveforms[:2])


def test_errors(monkeypatch, tmp_path):
  with pytest.raises(FileNotFoundError, match=r"no prepared TFDS "
                     r"speech_commands.*tfds build speech_commands"):
    tfds_source.load_tfds_speech_commands(str(tmp_path))
  with pytest.raises(ValueError, match="peak='loud'"):
    tfds_source.load_tfds_speech_commands(str(tmp_path), peak="loud")
  with pytest.raises(ValueError, match="max_examples=0"):
    tfds_source.load_tfds_speech_commands(str(tmp_path), max_examples=0)
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(AudioError, match=r"speech_commands/train\[0\]: .* "
                       "shorter than the minimum of 9000"):
      tfds_source.load_tfds_speech_commands(str(tmp_path), min_samples=9000)
  monkeypatch.setitem(sys.modules, "tensorflow", None)  # As if not installed.
  with pytest.raises(ImportError, match=r"not installed: tensorflow \(.*"
                     r"'tfds' extra.*: pip install -e \"\.\[tfds\]\"$"):
    tfds_source.load_tfds_speech_commands(str(tmp_path))


def test_without_tfds_one_error_names_the_extra(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ImportError, match=r"not installed: tensorflow_datasets "
                     r"\(.*'tfds' extra.*: pip install -e \"\.\[tfds\]\"$"):
    tfds_source.load_tfds_speech_commands(str(tmp_path))
  # Settings are still checked first, without TFDS.
  with pytest.raises(ValueError, match="peak='loud'"):
    tfds_source.load_tfds_speech_commands(str(tmp_path), peak="loud")


def test_every_module_imports_without_tfds_or_tensorflow():
  """The base install has neither (the `tfds` extra brings them): importing
  the package and every one of its modules must not need them."""
  code = (
      "import importlib, pkgutil, sys\n"
      "sys.modules['tensorflow_datasets'] = None  # as if not installed\n"
      "sys.modules['tensorflow'] = None\n"
      "import recon_jax\n"
      "names = [m.name for m in pkgutil.walk_packages(recon_jax.__path__,\n"
      "                                               'recon_jax.')]\n"
      "for name in names:\n"
      "  importlib.import_module(name)\n"
      "assert sys.modules['tensorflow_datasets'] is None\n"
      "assert 'recon_jax.data.tfds_source' in names, names\n"
      "print(len(names))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=600,
                       env=subprocess_env.env(devices=1))
  assert out.returncode == 0, out.stderr[-3000:]
  assert int(out.stdout.split()[-1]) > 50


def test_a_tfds_source_packs_and_reads_back(mocked, tmp_path):
  from recon_jax.data import pack  # pylint: disable=g-import-not-at-top
  from recon_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "packed")
  manifest = pack.pack_arrays("tfds_speech_commands", mocked, out,
                              records_per_shard=2)
  assert manifest["source"]["settings"]["data_fingerprint"] == (
      mocked.fingerprint)
  data = pipeline.open_packed(out)
  assert data.class_names == mocked.class_names and not data.multilabel
  for split in ("train", "validation", "test"):
    store, ref = data.split(split), mocked.split(split)
    np.testing.assert_array_equal(store.labels, ref.labels)
    assert len(store.shards) == 3
    for i in range(len(ref)):
      # Through a 16-bit WAV and a 16-bit record, renormalised to unit peak.
      np.testing.assert_allclose(store.clip(i), ref.waveforms[i], atol=2e-4)
  # A rerun reuses the finished pack.
  assert pack.pack_arrays("tfds_speech_commands", mocked, out,
                          records_per_shard=2) == manifest
