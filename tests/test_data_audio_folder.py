"""Readers for Speech Commands, FSD50K and labelled folders (audio_folder)."""
import os

import numpy as np
import pytest
import scipy.signal
import soundfile

from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data import events
from recon_jax.data import keywords
from recon_jax.data.audio_io import AudioError


def _sine(f, seconds, rate, amplitude=0.5):
  t = np.arange(int(seconds * rate)) / rate
  return amplitude * np.sin(2 * np.pi * f * t)


def _write(path, x, rate, subtype="PCM_16", fmt=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, x, rate, subtype=subtype, format=fmt)
  return path


@pytest.fixture(scope="module")
def generated_sc(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("sc") / "speech_commands")
  keywords.generate_keywords(root, dict(
      words=("yes", "no", "up"), train_speakers=2, validation_speakers=1,
      test_speakers=1, utterances_per_word=1, background_seconds=0.5,
      babble_talkers=1, num_workers=1))
  return root


@pytest.fixture(scope="module")
def generated_fsd(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("fsd") / "fsd50k")
  events.generate_events(root, dict(
      classes=("Pure_tone", "Knock", "Siren"), train_clips=4, val_clips=3,
      eval_clips=3, clip_seconds=0.5, event_seconds=(0.05, 0.2),
      events_per_clip=(1, 2), num_workers=1))
  return root


def _sc_folder(tmp_path, rate=16000, extra=None):
  """A hand-made Speech Commands folder: 2 words x 3 clips at `rate`."""
  root = str(tmp_path / "sc")
  for w, f in (("go", 500.0), ("off", 900.0)):
    for s in ("aaaa0000", "bbbb1111", "cccc2222"):
      _write(f"{root}/{w}/{s}_nohash_0.wav", _sine(f, 0.8, rate), rate)
  _write(f"{root}/_background_noise_/white_noise.wav",
         0.3 * np.random.default_rng(0).standard_normal(2 * rate), rate)
  with open(f"{root}/validation_list.txt", "w") as f:
    f.write("go/bbbb1111_nohash_0.wav\noff/bbbb1111_nohash_0.wav\n")
  with open(f"{root}/testing_list.txt", "w") as f:
    f.write("go/cccc2222_nohash_0.wav\noff/cccc2222_nohash_0.wav\n")
  for rel, x in (extra or {}).items():
    _write(f"{root}/{rel}", x, rate)
  return root


# --- Speech Commands ---------------------------------------------------------


def test_reads_the_generated_keyword_set(generated_sc, tmp_path):
  d = audio_folder.load_speech_commands(generated_sc, cache_dir=str(tmp_path))
  assert d.class_names == ("no", "up", "yes")
  assert d.sample_rate == 8000
  assert [len(d.split(s)) for s in ("train", "validation", "test")] == [6, 3, 3]
  for s in ("train", "validation", "test"):
    split = d.split(s)
    assert split.waveforms.shape == (len(split), 8000)
    assert split.waveforms.dtype == np.float32
    assert split.labels.dtype == np.int32
    np.testing.assert_allclose(np.max(np.abs(split.waveforms), axis=1), 1.0,
                               rtol=1e-6)
    for rel, label in zip(split.files, split.labels):
      assert rel.split("/")[0] == d.class_names[label]
  with open(os.path.join(generated_sc, "testing_list.txt")) as f:
    assert sorted(d.test.files) == sorted(f.read().split())
  x, _ = soundfile.read(os.path.join(generated_sc, d.train.files[0]),
                        dtype="float32")
  np.testing.assert_allclose(d.train.waveforms[0], x / np.max(np.abs(x)),
                             rtol=1e-6)
  assert d.background_names == tuple(
      sorted(n + ".wav" for n in keywords.BACKGROUND_NOISES))
  assert all(b.shape == (4000,) for b in d.background)
  assert isinstance(d.fingerprint, str) and len(d.fingerprint) == 16


def test_speech_commands_at_16k_is_resampled_and_padded(tmp_path):
  root = _sc_folder(tmp_path)
  d = audio_folder.load_speech_commands(root, cache=False)
  assert d.class_names == ("go", "off")
  assert d.train.files == ("go/aaaa0000_nohash_0.wav",
                           "off/aaaa0000_nohash_0.wav")
  assert list(d.train.labels) == [0, 1]
  x, _ = soundfile.read(os.path.join(root, d.train.files[0]))
  expected = scipy.signal.resample_poly(x, 1, 2)
  expected /= np.max(np.abs(expected))
  np.testing.assert_allclose(d.train.waveforms[0, :6400], expected, atol=1e-6)
  assert not np.any(d.train.waveforms[:, 6400:])  # Zero-padded to 1 s.
  assert d.background[0].shape == (16000,)
  d2 = audio_folder.load_speech_commands(root, words=["off"], cache=False)
  assert d2.class_names == ("off",) and len(d2.validation) == 1


def test_speech_commands_cache_and_fingerprint(tmp_path, monkeypatch):
  root = _sc_folder(tmp_path)
  cache = str(tmp_path / "cache")
  first = audio_folder.load_speech_commands(root, cache_dir=cache)
  assert len(os.listdir(cache)) == 1

  def no_decoding(*args, **kwargs):
    raise AssertionError("decoded although cached")

  monkeypatch.setattr(audio_io, "load_clip", no_decoding)
  again = audio_folder.load_speech_commands(root, cache_dir=cache)
  assert again.fingerprint == first.fingerprint
  np.testing.assert_array_equal(again.train.waveforms, first.train.waveforms)
  monkeypatch.undo()
  # A changed file (new mtime) is decoded again; other settings differ.
  os.utime(os.path.join(root, "go/aaaa0000_nohash_0.wav"), (1, 1))
  monkeypatch.setattr(audio_io, "load_clip", no_decoding)
  with pytest.raises(AssertionError, match="decoded although cached"):
    audio_folder.load_speech_commands(root, cache_dir=cache)
  monkeypatch.undo()
  other = audio_folder.load_speech_commands(root, peak="louder_than_one",
                                            cache_dir=cache)
  assert other.fingerprint != first.fingerprint


def test_speech_commands_errors_name_the_file(tmp_path):
  root = _sc_folder(tmp_path, extra={
      "go/dddd3333_nohash_0.wav": np.zeros(8000)})
  with pytest.raises(AudioError,
                     match=r"go/dddd3333_nohash_0.wav: silent clip"):
    audio_folder.load_speech_commands(root, cache=False)
  os.remove(os.path.join(root, "go/dddd3333_nohash_0.wav"))
  long = _write(os.path.join(root, "go/eeee4444_nohash_0.wav"),
                _sine(300, 1.5, 16000), 16000)
  with pytest.raises(AudioError, match=r"eeee4444_nohash_0.wav: 12000 "
                     r"samples .* longer than the 1.0 s clip"):
    audio_folder.load_speech_commands(root, cache=False)
  os.remove(long)
  with pytest.raises(AudioError, match=r"aaaa0000_nohash_0.wav: 6400 samples"
                     r", shorter than the minimum of 7000"):
    audio_folder.load_speech_commands(root, min_samples=7000, cache=False)
  with pytest.raises(ValueError, match=r"no directory for word\(s\) "
                     r"\['stop'\]"):
    audio_folder.load_speech_commands(root, words=["go", "stop"], cache=False)
  with open(os.path.join(root, "testing_list.txt"), "a") as f:
    f.write("go/zzzz9999_nohash_0.wav\n")
  with pytest.raises(FileNotFoundError, match=r"testing_list.txt, line 3: "
                     r"'go/zzzz9999_nohash_0.wav' does not exist"):
    audio_folder.load_speech_commands(root, cache=False)
  with open(os.path.join(root, "testing_list.txt"), "w") as f:
    f.write("go/bbbb1111_nohash_0.wav\n")
  with pytest.raises(ValueError, match=r"in both validation_list.txt and "
                     "testing_list.txt"):
    audio_folder.load_speech_commands(root, cache=False)
  with open(os.path.join(root, "testing_list.txt"), "w") as f:
    f.write("go/cccc2222_nohash_0.wav\n")
  with pytest.raises(ValueError, match=r"no test clips of class\(es\) "
                     r"\['off'\]"):
    audio_folder.load_speech_commands(root, cache=False)
  os.remove(os.path.join(root, "validation_list.txt"))
  with pytest.raises(FileNotFoundError, match="validation_list.txt: not found"):
    audio_folder.load_speech_commands(root, cache=False)
  with pytest.raises(FileNotFoundError, match="directory not found"):
    audio_folder.load_speech_commands(str(tmp_path / "nowhere"))
  os.makedirs(str(tmp_path / "kw.partial"))
  with pytest.raises(ValueError, match="half-written"):
    audio_folder.load_speech_commands(str(tmp_path / "kw.partial"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(peak="sometimes"), "peak='sometimes'"),
    (dict(sample_rate=0), "sample_rate=0"),
    (dict(min_samples=-1), "min_samples=-1"),
    (dict(clip_seconds=0.0), "clip_seconds=0.0"),
])
def test_bad_settings_are_refused_before_reading(tmp_path, kwargs, message):
  with pytest.raises(ValueError, match=message):
    audio_folder.load_speech_commands(str(tmp_path / "nowhere"), **kwargs)


# --- Single clips ------------------------------------------------------------


def test_load_clip_filters_resamples_mixes_down_and_peaks(tmp_path):
  # 1 kHz + 5 kHz at 16 kHz: 5 kHz is above 8 kHz's Nyquist frequency and
  # must be filtered out, not folded to 3 kHz.
  x = _sine(1000, 1.0, 16000) + _sine(5000, 1.0, 16000)
  path = _write(str(tmp_path / "a.wav"), x, 16000)
  y = audio_io.load_clip(path)
  assert y.shape == (8000,) and np.max(np.abs(y)) == pytest.approx(1.0)
  spectrum = np.abs(np.fft.rfft(y))**2
  assert spectrum[3000] < 1e-4 * spectrum[1000]
  # Stereo FLAC at 44.1 kHz: the mean of the channels.
  left, right = _sine(440, 0.5, 44100), -0.5 * _sine(440, 0.5, 44100)
  path = _write(str(tmp_path / "b.flac"), np.stack([left, right], 1), 44100,
                fmt="FLAC")
  y = audio_io.load_clip(path, peak="louder_than_one")
  stored, _ = soundfile.read(path, dtype="float32")
  expected = scipy.signal.resample_poly(stored.mean(axis=1).astype(np.float64),
                                        80, 441)
  np.testing.assert_allclose(y, expected, atol=1e-6)
  # (0.5 - 0.25) / 2: the mean of the channels, not scaled up.
  assert np.max(np.abs(y)) == pytest.approx(0.125, abs=0.005)
  loud = _write(str(tmp_path / "c.wav"), 2.0 * _sine(300, 0.5, 8000), 8000,
                subtype="FLOAT")
  np.testing.assert_allclose(np.max(np.abs(audio_io.load_clip(
      loud, peak="louder_than_one"))), 1.0, rtol=1e-6)


def test_load_clip_errors_name_the_file(tmp_path):
  bad = str(tmp_path / "corrupt.wav")
  with open(bad, "wb") as f:
    f.write(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
  with pytest.raises(AudioError, match=r"corrupt.wav: unreadable or corrupt"):
    audio_io.load_clip(bad)
  nan = _write(str(tmp_path / "nan.wav"),
               np.where(np.arange(4000) == 7, np.nan, 0.1), 8000,
               subtype="FLOAT")
  with pytest.raises(AudioError, match=r"nan.wav: 1 NaN or infinite"):
    audio_io.load_clip(nan)
  silent = _write(str(tmp_path / "silent.flac"), np.zeros(4000), 8000,
                  fmt="FLAC")
  with pytest.raises(AudioError, match=r"silent.flac: silent clip"):
    audio_io.load_clip(silent)
  short = _write(str(tmp_path / "short.wav"), _sine(300, 0.25, 8000), 8000)
  with pytest.raises(AudioError, match=r"short.wav: 2000 samples, shorter "
                     r"than the minimum of 2370"):
    audio_io.load_clip(short, min_samples=audio_io.CNN12_RECEPTIVE_FIELD)
  with pytest.raises(FileNotFoundError, match="missing.wav"):
    audio_io.load_clip(str(tmp_path / "missing.wav"))
  with pytest.raises(ValueError, match=r"outside|within \[-1, 1\]"):
    audio_io.write_wav(str(tmp_path / "x.wav"), np.array([0.5, 1.5]))


# --- FSD50K and labelled folders ---------------------------------------------


def test_reads_the_generated_event_set(generated_fsd, tmp_path):
  d = audio_folder.load_fsd50k(generated_fsd, cache_dir=str(tmp_path))
  assert d.class_names == ("Pure_tone", "Knock", "Siren")
  assert d.mids == ("/recon_jax/pure_tone", "/recon_jax/knock",
                    "/recon_jax/siren")
  assert sorted(d.splits) == ["test", "train", "validation"]
  assert [len(d.split(s)) for s in ("train", "validation", "test")] == [4, 3, 3]
  gt = os.path.join(generated_fsd, "FSD50K.ground_truth")
  import csv  # pylint: disable=g-import-not-at-top
  with open(os.path.join(gt, "eval.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
  for i, row in enumerate(rows):
    assert d.test.fnames[i] == row["fname"]
    names = {d.class_names[j] for j in np.flatnonzero(d.test.labels[i])}
    assert names == set(row["labels"].split(","))
  for s in d.splits.values():
    assert s.labels.shape == (len(s), 3) and s.labels.dtype == np.float32
    assert all(c.shape == (4000,) and c.dtype == np.float32 for c in s.clips)
    assert list(s.lengths) == [4000] * len(s)
    np.testing.assert_allclose([np.max(np.abs(c)) for c in s.clips], 1.0,
                               rtol=1e-6)
  again = audio_folder.load_fsd50k(generated_fsd, cache_dir=str(tmp_path))
  assert again.fingerprint == d.fingerprint
  batch, lengths = audio_folder.pad_clips(d.train.clips + (np.ones(10),))
  assert batch.shape == (5, 4000) and list(lengths) == [4000] * 4 + [10]
  batch, lengths = audio_folder.pad_clips(d.train.clips, length=100)
  assert batch.shape == (4, 100) and list(lengths) == [100] * 4


def _labelled(tmp_path, rows, header="fname,labels"):
  folder = tmp_path / "clips"
  folder.mkdir(exist_ok=True)
  _write(str(folder / "dog1.flac"), np.stack([_sine(300, 0.6, 44100)] * 2, 1),
         44100, fmt="FLAC")
  _write(str(folder / "cat1.wav"), _sine(700, 0.6, 16000), 16000)
  _write(str(folder / "both.wav"), _sine(500, 0.6, 22050), 22050)
  csv_path = tmp_path / "labels.csv"
  csv_path.write_text(header + "\n" + "\n".join(rows) + "\n")
  return str(folder), str(csv_path)


def test_labelled_folder(tmp_path):
  folder, csv_path = _labelled(tmp_path, [
      "dog1,Dog", "cat1.wav,Cat", 'both,"Cat,Dog"'])
  d = audio_folder.load_labelled_folder(folder, csv_path, cache=False)
  assert d.class_names == ("Cat", "Dog") and list(d.splits) == ["all"]
  s = d.split("all")
  assert s.fnames == ("dog1", "cat1.wav", "both")
  np.testing.assert_array_equal(s.labels, [[0, 1], [1, 0], [1, 1]])
  assert list(s.lengths) == [4800] * 3  # 0.6 s at 8 kHz from 44.1/16/22.05.
  folder, csv_path = _labelled(tmp_path, [
      "dog1,Dog,train", "cat1,Cat,train", "both,\"Cat,Dog\",eval"],
      header="fname,labels,split")
  d = audio_folder.load_labelled_folder(
      folder, csv_path, vocabulary=["Dog", "Cat", "Bird"],
      require_all_classes=False, cache=False)
  assert sorted(d.splits) == ["test", "train"]
  np.testing.assert_array_equal(d.test.labels, [[1, 1, 0]])
  with pytest.raises(ValueError, match=r"no train examples of class\(es\) "
                     r"\['Bird'\]"):
    audio_folder.load_labelled_folder(folder, csv_path,
                                      vocabulary=["Dog", "Cat", "Bird"],
                                      cache=False)


def test_label_csv_errors_name_file_and_row(tmp_path):
  folder, csv_path = _labelled(tmp_path, ["dog1,Dog", "cat1,Kat"])
  with pytest.raises(ValueError, match=r"labels.csv, row 3: unknown label "
                     r"'Kat'"):
    audio_folder.load_labelled_folder(folder, csv_path,
                                      vocabulary=["Dog", "Cat"], cache=False)
  folder, csv_path = _labelled(tmp_path, ["dog1,Dog", "cow7,Cat"])
  with pytest.raises(FileNotFoundError, match=r"labels.csv, row 3: no audio "
                     r"file for fname 'cow7'"):
    audio_folder.load_labelled_folder(folder, csv_path, cache=False)
  folder, csv_path = _labelled(tmp_path, ["dog1,Dog"], header="file,labels")
  with pytest.raises(ValueError, match=r"no column\(s\) \['fname'\]"):
    audio_folder.load_labelled_folder(folder, csv_path, cache=False)
  folder, csv_path = _labelled(tmp_path, ["dog1,Dog"])
  with pytest.raises(AudioError, match=r"dog1.flac: 4800 samples, shorter "
                     r"than the minimum of 5000"):
    audio_folder.load_labelled_folder(folder, csv_path, min_samples=5000,
                                      cache=False)
  vocab = tmp_path / "vocabulary.csv"
  vocab.write_text("0,Dog,/m/1\n2,Cat,/m/2\n")
  with pytest.raises(ValueError, match=r"vocabulary.csv, row 2: index 2, "
                     r"expected 1"):
    audio_folder.load_labelled_folder(folder, csv_path, vocabulary=str(vocab))


def test_fsd50k_errors(generated_fsd, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  root = str(tmp_path / "fsd")
  shutil.copytree(generated_fsd, root)
  dev = os.path.join(root, "FSD50K.ground_truth", "dev.csv")
  with open(dev) as f:
    text = f.read()
  with open(dev, "w") as f:
    f.write(text.replace(",train\n", ",training\n", 1))
  with pytest.raises(ValueError, match=r"dev.csv, row 2: split 'training'"):
    audio_folder.load_fsd50k(root, cache=False)
  with open(dev, "w") as f:
    f.write(text)
  first = text.splitlines()[1].split(",")[0]
  os.remove(os.path.join(root, "FSD50K.dev_audio", first + ".wav"))
  with pytest.raises(FileNotFoundError, match=rf"dev.csv, row 2: no audio "
                     rf"file for fname '{first}'"):
    audio_folder.load_fsd50k(root, cache=False)
  os.remove(os.path.join(root, "FSD50K.ground_truth", "vocabulary.csv"))
  with pytest.raises(FileNotFoundError, match="vocabulary.csv"):
    audio_folder.load_fsd50k(root, cache=False)
