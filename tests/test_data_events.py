"""The FSD50K-layout sound event generator (recon_jax.data.events)."""
import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from recon_jax.data import events
from recon_jax.data import keywords

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small(**overrides):
  c = dict(classes=("Pure_tone", "Spoken_word", "Knock"), train_clips=3,
           val_clips=3, eval_clips=3, clip_seconds=0.5,
           event_seconds=(0.05, 0.2), events_per_clip=(1, 2), num_workers=1)
  c.update(overrides)
  return c


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("ev") / "fsd50k")
  summary = events.generate_events(root, events.get_config("tiny"))
  return root, summary


def _rows(path):
  with open(path, newline="") as f:
    return list(csv.reader(f))


def test_tiny_layout_is_fsd50k(tiny):
  root, summary = tiny
  assert sorted(os.listdir(root)) == [
      "FSD50K.dev_audio", "FSD50K.eval_audio", "FSD50K.ground_truth",
      "generator_config.json"]
  gt = os.path.join(root, "FSD50K.ground_truth")
  vocab = _rows(os.path.join(gt, "vocabulary.csv"))
  assert vocab[0] == ["0", "Pure_tone", "/recon_jax/pure_tone"]  # No header.
  assert [r[1] for r in vocab] == list(events.LABELS)
  assert len(vocab) == 14 and [int(r[0]) for r in vocab] == list(range(14))
  mid = {r[1]: r[2] for r in vocab}
  dev = _rows(os.path.join(gt, "dev.csv"))
  ev = _rows(os.path.join(gt, "eval.csv"))
  assert dev[0] == ["fname", "labels", "mids", "split"]
  assert ev[0] == ["fname", "labels", "mids"]
  assert [r[3] for r in dev[1:]] == ["train"] * 16 + ["val"] * 14
  assert len(ev) == 1 + 14
  for part, rows in (("dev", dev[1:]), ("eval", ev[1:])):
    audio = os.path.join(root, f"FSD50K.{part}_audio")
    assert sorted(os.listdir(audio)) == sorted(r[0] + ".wav" for r in rows)
    for r in rows:
      labels = r[1].split(",")
      assert 1 <= len(labels) <= 4 and len(set(labels)) == len(labels)
      assert r[2].split(",") == [mid[l] for l in labels]
    x, rate = soundfile.read(os.path.join(audio, rows[0][0] + ".wav"))
    assert rate == 8000 and x.shape == (8000,)  # tiny: 1 s clips.
    assert soundfile.info(os.path.join(audio, rows[0][0] + ".wav")).subtype == (
        "PCM_16")
  # Several labels are quoted, as in the real CSVs.
  with open(os.path.join(gt, "dev.csv")) as f:
    lines = f.read().splitlines()[1:]
  multi = [l for l in lines if l.count(",") > 3]
  assert multi and all(re.fullmatch(r'\d+,"[^"]+","[^"]+",(train|val)', l)
                       for l in multi)
  single = [l for l in lines if l.count(",") == 3]
  assert single and all(re.fullmatch(r"\d+,\w+,[\w/]+,(train|val)", l)
                        for l in single)
  for split in events.SPLITS:
    assert min(summary[split]["class_counts"].values()) >= 1, split
  assert not set(r[0] for r in dev[1:]) & set(r[0] for r in ev[1:])


def _centroid(x):
  spectrum = np.abs(np.fft.rfft(x))**2
  f = np.fft.rfftfreq(len(x), 1 / 8000)
  return np.sum(f * spectrum) / np.sum(spectrum)


def _band_power(x, lo, hi):
  spectrum = np.abs(np.fft.rfft(x))**2
  f = np.fft.rfftfreq(len(x), 1 / 8000)
  return np.sum(spectrum[(f >= lo) & (f < hi)]) / np.sum(spectrum)


@pytest.mark.parametrize("label", events.LABELS)
def test_every_class_makes_an_event_of_its_kind(label):
  rng = np.random.default_rng(3)
  x = events.make_event(label, rng, 8000)
  assert np.all(np.isfinite(x)) and np.max(np.abs(x)) == pytest.approx(1.0)
  assert len(x) == 8000 or label == "Spoken_word"
  q = len(x) // 4
  if label == "Up_chirp":
    assert _centroid(x[:q]) * 1.5 < _centroid(x[-q:])
  elif label == "Down_chirp":
    assert _centroid(x[:q]) > 1.5 * _centroid(x[-q:])
  elif label == "Pure_tone":
    spectrum = np.abs(np.fft.rfft(x))**2
    peak = np.argmax(spectrum)
    assert np.sum(spectrum[peak - 3:peak + 4]) > 0.95 * np.sum(spectrum)
  elif label == "White_noise_burst":
    assert 0.4 < _band_power(x, 0, 2000) < 0.6
  elif label == "Pink_noise_burst":
    assert _band_power(x, 0, 500) > 0.5
  elif label in ("Click_train", "Knock"):
    assert np.mean(np.abs(x) < 0.01) > 0.5  # Mostly silence between hits.
  elif label == "Dial_tone":
    spectrum = np.abs(np.fft.rfft(x))**2
    top = np.sort(np.argsort(spectrum)[-2:])
    assert top[1] - top[0] > 50  # Two tones (1 Hz bins), apart.
    assert np.sum(spectrum[top]) > 0.9 * np.sum(spectrum)
  elif label == "Spoken_word":
    assert 1500 < len(x) < 8000


def test_a_clip_holds_its_labelled_events():
  c = events.check_config(_small(events_per_clip=(1, 1), clip_peak=(0.5, 0.5),
                                 occurrences=(1, 1)))
  x, labels = events.make_clip(c, np.random.default_rng(0), first_class=0)
  assert labels == [0] and x.shape == (4000,)
  # Peak 0.5 before the noise floor (std <= 0.01) is added.
  assert np.max(np.abs(x)) == pytest.approx(0.5, abs=0.04)
  spectrum = np.abs(np.fft.rfft(x))**2  # Pure_tone: one line over the floor.
  peak = np.argmax(spectrum)
  assert np.sum(spectrum[peak - 5:peak + 6]) > 0.9 * np.sum(spectrum)
  c = events.check_config(_small(events_per_clip=(3, 3)))
  _, labels = events.make_clip(c, np.random.default_rng(0), first_class=1)
  assert labels == [0, 1, 2]


def test_a_source_sounds_as_often_as_drawn():
  # One 50 ms tone in 1 s: three occurrences light up about three times
  # as many samples as one (onsets may overlap a little).
  active = {}
  for times in (1, 3):
    c = events.check_config(_small(
        events_per_clip=(1, 1), clip_seconds=1.0, event_seconds=(0.05, 0.05),
        occurrences=(times, times), noise_floor_db=(-120.0, -120.0)))
    x, _ = events.make_clip(c, np.random.default_rng(0), first_class=0)
    active[times] = np.sum(np.abs(x) > 1e-3)
  assert 380 <= active[1] <= 400
  assert 2.5 * active[1] <= active[3] <= 3.05 * active[1]  # levels +-3 dB
  with pytest.raises(ValueError, match="events.occurrences"):
    events.check_config(_small(occurrences=(0, 2)))


def test_same_seed_same_bytes_any_worker_count(tmp_path):
  paths = [str(tmp_path / n) for n in "abc"]
  events.generate_events(paths[0], _small())
  events.generate_events(paths[1], _small(num_workers=2))
  events.generate_events(paths[2], _small(), seed=1)
  digests = [keywords.digest(p) for p in paths]
  assert digests[0] == digests[1] != digests[2]


def test_rerun_is_a_no_op_and_another_config_an_error(tmp_path):
  root = str(tmp_path / "ev")
  assert events.generate_events(root, _small()) is not None
  before = keywords.digest(root)
  assert events.generate_events(root, _small(num_workers=3)) is None
  assert keywords.digest(root) == before
  with pytest.raises(ValueError, match=r"another config \(train_clips: was 3, "
                     r"now 4\)"):
    events.generate_events(root, _small(train_clips=4))


@pytest.mark.parametrize("overrides, message", [
    (dict(clases=()), r"unknown field\(s\) \['clases'\]"),
    (dict(classes=("Pure_tone", "Trumpet")), r"unknown: \['Trumpet'\]"),
    (dict(classes=("Pure_tone",)), "at least 2"),
    (dict(train_clips=2), r"train_clips=2: must be in \[3, 99999\]"),
    (dict(events_per_clip=(1, 4)), r"events_per_clip.*<= 3"),
    (dict(events_per_clip=(1.0, 2)), "integers"),
    (dict(event_seconds=(0.1, 1.0)), r"event_seconds.*<= 0.5"),
    (dict(clip_seconds="5"), "clip_seconds"),
    (dict(event_level_db=(-10.0, 3.0)), "event_level_db"),
    (dict(num_workers=0), "num_workers"),
])
def test_bad_config_is_refused_before_work(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    events.generate_events(str(tmp_path / "ev"), _small(**overrides))
  assert not os.path.exists(tmp_path / "ev.partial")
  with pytest.raises(ValueError, match="unknown event data set size"):
    events.get_config("huge")


def test_entry_point(tmp_path):
  root = str(tmp_path / "ev")
  cmd = [sys.executable, "-m", "recon_jax",
         f"--config={os.path.join(_ROOT, 'configs', 'make_events.py')}:tiny",
         "--config.classes=('Pure_tone', 'Bell')", "--config.train_clips=2",
         "--config.events_per_clip=(1, 2)", "--config.val_clips=2",
         "--config.eval_clips=2"]
  out = subprocess.run(cmd + [f"--workdir={root}"], capture_output=True,
                       text=True, check=False)
  assert out.returncode == 0, out.stderr
  assert "train: 2 clips" in out.stdout and "eval: 2 clips" in out.stdout
  assert len(os.listdir(os.path.join(root, "FSD50K.dev_audio"))) == 4
  bad = subprocess.run(cmd + ["--config.eval_clips=1", f"--workdir={root}"],
                       capture_output=True, text=True, check=False)
  assert bad.returncode == 1 and "Traceback" not in bad.stderr
  assert "events.eval_clips=1: must be in [2, 99999]" in bad.stderr
