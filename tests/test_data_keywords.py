"""The Speech Commands-layout keyword generator (recon_jax.data.keywords)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from recon_jax.data import keywords

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small(**overrides):
  """A config that takes about a second: 3 words, 3 speakers."""
  c = dict(words=("yes", "no", "sheila"), train_speakers=1,
           validation_speakers=1, test_speakers=1, utterances_per_word=2,
           background_seconds=0.5, babble_talkers=1, num_workers=1)
  c.update(overrides)
  return c


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("kw") / "speech_commands")
  summary = keywords.generate_keywords(root, keywords.get_config("tiny"))
  return root, summary


def _wavs(root):
  out = []
  for d in sorted(os.listdir(root)):
    if os.path.isdir(os.path.join(root, d)) and not d.startswith("_"):
      out += [f"{d}/{f}" for f in sorted(os.listdir(os.path.join(root, d)))]
  return out


def test_tiny_layout_is_speech_commands(tiny):
  root, summary = tiny
  words = sorted(d for d in os.listdir(root)
                 if os.path.isdir(os.path.join(root, d)) and d[0] != "_")
  assert words == sorted(keywords.WORDS) and len(words) == 35
  files = _wavs(root)
  assert len(files) == 35 * 4  # 2 train + 1 validation + 1 test speakers.
  for rel in files:
    assert re.fullmatch(r"[a-z]+/[0-9a-f]{8}_nohash_0\.wav", rel), rel
  info = soundfile.info(os.path.join(root, files[0]))
  assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
  for rel in files[::7]:
    x, rate = soundfile.read(os.path.join(root, rel))
    assert rate == 8000 and x.shape == (keywords.CLIP_SAMPLES,)
    assert 0.15 < np.max(np.abs(x)) <= 0.95
  with open(os.path.join(root, "validation_list.txt")) as f:
    validation = f.read().split()
  with open(os.path.join(root, "testing_list.txt")) as f:
    testing = f.read().split()
  assert len(validation) == len(testing) == 35
  assert set(validation) | set(testing) <= set(files)
  assert not set(validation) & set(testing)
  assert summary["train"] == {"speakers": 2, "clips": 70}
  assert summary["validation"] == {"speakers": 1, "clips": 35}
  for name in keywords.BACKGROUND_NOISES:
    x, rate = soundfile.read(os.path.join(root, "_background_noise_",
                                          name + ".wav"))
    assert rate == 8000 and x.shape == (16000,)
    assert np.std(x) > 0.01
  assert os.path.exists(os.path.join(root, "generator_config.json"))
  assert not os.path.exists(root + ".partial")


def test_splits_are_speaker_disjoint(tiny):
  root, _ = tiny
  speaker = lambda rel: rel.split("/")[1].split("_")[0]
  with open(os.path.join(root, "validation_list.txt")) as f:
    validation = {speaker(l) for l in f.read().split()}
  with open(os.path.join(root, "testing_list.txt")) as f:
    testing = {speaker(l) for l in f.read().split()}
  train = {speaker(r) for r in _wavs(root)} - validation - testing
  assert len(train) == 2 and len(validation) == 1 and len(testing) == 1
  # Every speaker says every word; no speaker is in two splits.
  assert not (train & validation or train & testing or validation & testing)
  plan = keywords.plan_speakers(keywords.check_config(
      keywords.get_config("tiny")), 0)
  voices = [(s["accent"], s["variant"]) for s in plan]
  assert len(set(voices)) == len(voices)  # Distinct voices while they last.


def test_word_placed_at_random_offsets():
  c = keywords.check_config(_small())
  speaker = keywords.plan_speakers(c, 0)[0]
  onsets = []
  for i in range(6):
    x = keywords.keyword_clip("yes", speaker, c, np.random.default_rng(i))
    assert x.shape == (8000,) and np.max(np.abs(x)) <= 1.0
    loud = np.flatnonzero(np.abs(x) > 0.1 * np.max(np.abs(x)))
    onsets.append(loud[0])
    assert loud[-1] - loud[0] > 1000  # A word, not a click.
  assert np.std(onsets) > 200


def test_same_seed_same_bytes_any_worker_count(tmp_path):
  a = str(tmp_path / "a")
  b = str(tmp_path / "b")
  c = str(tmp_path / "c")
  keywords.generate_keywords(a, _small())
  keywords.generate_keywords(b, _small(num_workers=2))
  keywords.generate_keywords(c, _small(), seed=1)
  assert keywords.digest(a) == keywords.digest(b)
  assert keywords.digest(a) != keywords.digest(c)


def test_rerun_is_a_no_op_and_another_config_an_error(tmp_path):
  root = str(tmp_path / "kw")
  assert keywords.generate_keywords(root, _small()) is not None
  before = keywords.digest(root)
  assert keywords.generate_keywords(root, _small(num_workers=2)) is None
  assert keywords.digest(root) == before
  with pytest.raises(ValueError, match=r"another config.*seed: was 0, now 4"):
    keywords.generate_keywords(root, _small(), seed=4)
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="not a generated keyword data set"):
    keywords.generate_keywords(str(other), _small())


def test_half_written_run_is_restarted(tmp_path):
  root = str(tmp_path / "kw")
  os.makedirs(root + ".partial/yes")
  with open(root + ".partial/yes/stale_nohash_0.wav", "wb") as f:
    f.write(b"junk")
  keywords.generate_keywords(root, _small())
  assert not os.path.exists(root + ".partial")
  assert "stale_nohash_0.wav" not in os.listdir(os.path.join(root, "yes"))


@pytest.mark.parametrize("overrides, message", [
    (dict(wrods=("yes",)), r"unknown field\(s\) \['wrods'\]"),
    (dict(words=("yes", "Yes")), "not a lower-case word"),
    (dict(words=("yes", "yes")), "repeated words"),
    (dict(words=()), "non-empty sequence"),
    (dict(train_speakers=0), r"train_speakers=0: must be in \[1, inf\]"),
    (dict(rate_range=(300, 200)), "rate_range"),
    (dict(peak_range=(0.0, 0.5)), r"peak_range.*0.0 < low"),
    (dict(utterances_per_word=1.5), "must be an integer"),
    (dict(train_speakers=500, pitch_range=(50, 52)), "distinct voices"),
])
def test_bad_config_is_refused_before_work(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    keywords.generate_keywords(str(tmp_path / "kw"), _small(**overrides))
  assert not os.path.exists(tmp_path / "kw.partial")
  with pytest.raises(ValueError, match="unknown keyword data set size"):
    keywords.get_config("huge")


def test_entry_point(tmp_path):
  root = str(tmp_path / "kw")
  cmd = [sys.executable, "-m", "recon_jax",
         f"--config={os.path.join(_ROOT, 'configs', 'make_keywords.py')}:tiny",
         "--config.words=('yes', 'no')", "--config.background_seconds=0.5"]
  out = subprocess.run(cmd + [f"--workdir={root}"], capture_output=True,
                       text=True, check=False)
  assert out.returncode == 0, out.stderr
  assert "train: 2 speakers, 4 clips (2 words)" in out.stdout
  assert sorted(os.listdir(root)) == [
      "_background_noise_", "generator_config.json", "no", "testing_list.txt",
      "validation_list.txt", "yes"]
  # A misspelt field or another config: one line, exit status 1.
  bad = subprocess.run(cmd + ["--config.seed=9", f"--workdir={root}"],
                       capture_output=True, text=True, check=False)
  assert bad.returncode == 1
  assert "another config (seed: was 0, now 9)" in bad.stderr
  assert "Traceback" not in bad.stderr
