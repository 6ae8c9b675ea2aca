"""An experiment's data: generated once, atomically, never silently swapped."""
import glob
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from recon_jax import data
from recon_jax.data import corpus
from recon_jax.data import prepare
from recon_jax.data import timit
from recon_jax.data.errors import CorpusError
import subprocess_env  # tests/subprocess_env.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small_generator():
  config = corpus.get_config("tiny")
  config.sx_per_speaker = 1
  config.si_per_speaker = 0
  return config


def _listing(root):
  return sorted(os.path.relpath(p, root)
                for p in glob.glob(os.path.join(root, "**", "*"),
                                   recursive=True))


def test_generated_corpus_is_reused_only_for_the_same_settings(tmp_path):
  config = prepare.corpus_settings("tiny")
  config.generator.sx_per_speaker = 1
  root = prepare.ensure_corpus(config, str(tmp_path))
  assert root == os.path.join(str(tmp_path), "corpus")
  assert os.path.isdir(os.path.join(root, "TRAIN"))
  assert not os.path.exists(root + ".partial")
  assert not os.path.exists(os.path.join(root, timit.IN_PROGRESS))
  stamp = os.stat(os.path.join(root, "generator_config.json")).st_mtime_ns
  assert prepare.ensure_corpus(config, str(tmp_path)) == root
  assert os.stat(os.path.join(root, "generator_config.json")).st_mtime_ns == stamp
  config.generator.num_workers = 2  # does not change the corpus's bytes
  assert prepare.ensure_corpus(config, str(tmp_path)) == root
  config.generator.seed = 1
  with pytest.raises(ValueError, match=r"not generated with this .*seed: "
                     r"was 0, now 1"):
    prepare.ensure_corpus(config, str(tmp_path))


def test_missing_timit_dir_is_a_clear_error(tmp_path):
  config = prepare.corpus_settings("tiny")
  config.timit_dir = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    prepare.ensure_corpus(config, str(tmp_path))
  with pytest.raises(FileNotFoundError, match="nowhere"):
    prepare.check_corpus_settings(config)


def test_balanced_indices_refuses_unreproducible_or_out_of_range_input():
  with pytest.raises(ValueError, match="seed"):
    data.balanced_indices(np.array([0, 1]), 2, None)
  with pytest.raises(ValueError, match="outside"):
    data.balanced_indices(np.array([0, 0, 5, -1]), 2, 0, num_classes=2)


class _Killed(Exception):
  pass


def _kill_after(monkeypatch, n):
  """Makes the generator die while writing its (n+1)-th speaker."""
  real = corpus._write_speaker
  calls = []

  def dying(*args):
    calls.append(1)
    if len(calls) > n:
      raise _Killed("killed")
    return real(*args)

  monkeypatch.setattr(corpus, "_write_speaker", dying)


def test_killed_generation_is_refused_then_restarted_cleanly(tmp_path,
                                                             monkeypatch):
  root = str(tmp_path / "corpus")
  _kill_after(monkeypatch, 3)
  with pytest.raises(_Killed):
    prepare.generate_corpus(root, _small_generator())
  monkeypatch.undo()
  partial = root + ".partial"
  assert not os.path.exists(root) and os.path.isdir(partial)
  assert os.path.isdir(os.path.join(partial, "TRAIN"))
  # The half corpus is refused by the reader, naming it and what to do.
  with pytest.raises(CorpusError, match=r"corpus.partial: a half-written "
                     "generated corpus"):
    data.list_utterances(partial, "TRAIN")
  with pytest.raises(CorpusError, match="half-written"):
    data.load_phone_data(partial, cache=False)
  # Running again restarts it and gives what an unbroken run gives.
  summary = prepare.generate_corpus(root, _small_generator())
  assert summary["TRAIN"]["speakers"] == 8
  assert not os.path.exists(partial)
  assert prepare.generate_corpus(root, _small_generator()) is None
  unbroken = str(tmp_path / "unbroken")
  prepare.generate_corpus(unbroken, _small_generator())
  assert _listing(root) == _listing(unbroken)
  for rel in _listing(root):
    path = os.path.join(root, rel)
    if os.path.isfile(path):
      with open(path, "rb") as f, open(os.path.join(unbroken, rel), "rb") as g:
        assert f.read() == g.read(), rel


def test_incomplete_in_place_corpus_is_refused_then_regenerated(tmp_path,
                                                                monkeypatch):
  # make_timit_corpus itself (no .partial) killed midway.
  root = str(tmp_path / "direct")
  _kill_after(monkeypatch, 2)
  with pytest.raises(_Killed):
    data.make_timit_corpus(root, _small_generator())
  monkeypatch.undo()
  assert os.path.exists(os.path.join(root, timit.IN_PROGRESS))
  assert not os.path.exists(os.path.join(root, timit.GENERATOR_CONFIG))
  with pytest.raises(CorpusError, match=r"direct: an incomplete generated "
                     r"corpus \(generation_in_progress.json"):
    data.load_phone_data(root, cache=False)
  with pytest.raises(CorpusError, match="already exists"):
    data.make_timit_corpus(root, _small_generator())
  summary = prepare.generate_corpus(root, _small_generator())
  assert not os.path.exists(os.path.join(root, timit.IN_PROGRESS))
  assert len(data.list_utterances(root, "TEST")) == summary["TEST"][
      "utterances"]


def test_directory_holding_other_things_is_refused(tmp_path):
  other = tmp_path / "mine"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match=r"not generated with this .*no .*"
                     "generator_config.json"):
    prepare.generate_corpus(str(other), _small_generator())
  assert (other / "notes.txt").read_text() == "mine"
  with pytest.raises(ValueError, match="is a URL"):
    prepare.generate_corpus("gs://bucket/corpus", _small_generator())


def test_corpus_settings_fields_are_all_checked_and_used(tmp_path, monkeypatch):
  config = prepare.corpus_settings("tiny")
  assert config.stft_window == "hamming" and config.percentile == 95.0
  prepare.check_corpus_settings(config)
  seen = {}

  def fake_load(root, **kwargs):
    seen.update(kwargs, root=root)
    return "phones"

  monkeypatch.setattr(prepare, "ensure_corpus", lambda c, w: "/corpus/root")
  monkeypatch.setattr(prepare.features, "load_phone_data", fake_load)
  config.percentile = 90.0
  config.stft_window = "periodic_hann"
  config.lock()
  before = config.to_json()
  assert prepare.phone_data_from_config(config, str(tmp_path)) == "phones"
  assert seen == dict(root="/corpus/root", percentile=90.0,
                      window="periodic_hann",
                      cache_dir=os.path.join(str(tmp_path), "cache"))
  assert config.to_json() == before  # nothing added to the locked config
  with pytest.raises(AttributeError, match="percentil"):
    config.percentil = 80.0  # locked: a misspelt override fails


def _unlocked(config, change):
  with config.unlocked():
    change()


def test_corpus_settings_are_locked_against_misspelt_fields():
  c = prepare.corpus_settings("tiny")
  with pytest.raises(AttributeError, match='Did you mean "timit_dir"'):
    c.timitdir = "/data/TIMIT"
  with pytest.raises(AttributeError, match="train_speaker_per_dialect"):
    c.generator.train_speaker_per_dialect = 3


@pytest.mark.parametrize("change,pattern", [
    # corpus_settings() is locked (below); a config built another way, e.g.
    # from JSON, is still checked field by field.
    (lambda c: _unlocked(c, lambda: c.__setitem__("timitdir", "/data/TIMIT")),
     r"corpus: unknown field\(s\) \['timitdir'\]"),
    (lambda c: _unlocked(c, lambda: c.__delitem__("stft_window")),
     r"corpus: missing field\(s\) \['stft_window'\]"),
    (lambda c: setattr(c, "percentile", 0.0),
     r"corpus: percentile=0.0: must be in \(0, 100\]"),
    (lambda c: setattr(c, "percentile", 120.0), r"percentile=120.0"),
    (lambda c: setattr(c, "stft_window", "hamm"), "unknown STFT window 'hamm'"),
    (lambda c: setattr(c, "generated_dir", "gs://b/c"), "is a URL"),
    (lambda c: _unlocked(c, lambda: c.generator.__setitem__(
        "train_speaker_per_dialect", 3)),
     r"generator: unknown field\(s\) \['train_speaker_per_dialect'\]"),
    (lambda c: setattr(c.generator, "seed", -1),
     r"generator.seed=-1: must be in \[0, inf\]"),
    (lambda c: setattr(c.generator, "test_speakers_per_dialect", 0),
     r"generator.test_speakers_per_dialect=0"),
    (lambda c: setattr(c.generator, "sx_per_speaker", 10_000),
     "generator.sx_per_speaker=10000"),
    (lambda c: setattr(c.generator, "rate_range", (300, 100)),
     r"generator.rate_range=\(300, 100\)"),
    (lambda c: setattr(c.generator, "pitch_range", (10, 200)),
     r"generator.pitch_range"),
    (lambda c: setattr(c.generator, "gain", 0.0), "generator.gain=0.0"),
    (lambda c: setattr(c.generator, "num_workers", 0), "num_workers=0"),
    (lambda c: (setattr(c.generator, "pitch_range", (50, 50)),
                setattr(c.generator, "train_speakers_per_dialect", 14)),
     "15 speakers per dialect region but only 13 distinct voices"),
])
def test_bad_corpus_settings_fail_before_any_work(tmp_path, monkeypatch, change,
                                                  pattern):
  config = prepare.corpus_settings("tiny")
  change(config)

  def fail(*args, **kwargs):
    raise AssertionError("a corpus was being made")

  monkeypatch.setattr(corpus, "plan_speakers", fail)
  with pytest.raises(ValueError, match=pattern):
    prepare.phone_data_from_config(config, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_generator_config_is_not_modified():
  config = corpus.get_config("tiny")
  config.lock()
  before = config.to_json()
  checked = corpus.check_config(config)
  assert checked is not config and config.to_json() == before
  assert corpus.check_config({"seed": 3}).seed == 3
  with pytest.raises(ValueError, match=r"unknown field\(s\) \['sed'\]"):
    corpus.check_config({"sed": 3})
  with pytest.raises(ValueError, match=r"corpus seed=-2: must be an integer "
                     ">= 0"):
    data.make_timit_corpus("/nonexistent/x", config, seed=-2)


def _make_corpus(args):
  env = subprocess_env.env()
  return subprocess.run(
      [sys.executable, "-m", "recon_jax",
       "--config=configs/make_corpus.py:tiny", "--config.sx_per_speaker=1",
       "--config.si_per_speaker=0"] + args, cwd=ROOT, env=env,
      capture_output=True, text=True, timeout=300)


def test_make_corpus_entry_point_is_atomic_and_rerunnable(tmp_path):
  workdir = tmp_path / "timit"
  # A leftover of a killed run is removed and the corpus made from scratch.
  (tmp_path / "timit.partial" / "TRAIN" / "DR1").mkdir(parents=True)
  proc = _make_corpus([f"--workdir={workdir}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "TRAIN: 8 speakers" in proc.stdout
  assert not (tmp_path / "timit.partial").exists()
  assert (workdir / "generator_config.json").exists()
  assert "TRAIN: 8 speakers, 12 SX/SI utterances" in proc.stdout
  assert len(data.list_utterances(str(workdir), "TRAIN")) == 12
  proc = _make_corpus([f"--workdir={workdir}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "nothing to do" in proc.stdout
  proc = _make_corpus([f"--workdir={workdir}", "--config.seed=5"])
  assert proc.returncode == 1
  assert "seed: was 0, now 5" in proc.stderr and "Traceback" not in proc.stderr
  proc = _make_corpus([f"--workdir={tmp_path / 'x'}", "--config.sed=5"])
  assert proc.returncode != 0 and "sed" in proc.stderr
  assert not (tmp_path / "x").exists()
  proc = _make_corpus([f"--workdir={tmp_path / 'y'}",
                       "--config.rate_range=(10,20)"])
  assert proc.returncode == 1 and "generator.rate_range" in proc.stderr
  assert not (tmp_path / "y").exists()


def test_generated_corpus_config_block_is_a_config_dict():
  assert isinstance(prepare.corpus_settings(), ml_collections.ConfigDict)
