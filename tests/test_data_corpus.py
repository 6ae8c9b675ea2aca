"""The espeak-ng corpus generator and the feature pipeline on a tiny corpus."""
import glob
import hashlib
import os
import shutil

import numpy as np
import pytest
import scipy.signal

from recon_jax import data
from recon_jax.data import corpus
from recon_jax.data import espeak
from recon_jax.data import phones
from recon_jax.data import sphere
from recon_jax.data import timit
from recon_jax.data.errors import CorpusError


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
  """One tiny generated corpus per session: (root, summary)."""
  root = str(tmp_path_factory.mktemp("corpus") / "timit")
  summary = data.make_timit_corpus(root, corpus.get_config("tiny"), seed=0)
  return root, summary


@pytest.fixture(scope="session")
def tiny_features(tiny_corpus, tmp_path_factory):
  cache_dir = str(tmp_path_factory.mktemp("cache"))
  return data.load_phone_data(tiny_corpus[0], cache_dir=cache_dir), cache_dir


def _digest(root):
  h = hashlib.sha256()
  for path in sorted(glob.glob(os.path.join(root, "*", "*", "*", "*"))):
    h.update(os.path.relpath(path, root).encode())
    with open(path, "rb") as f:
      h.update(f.read())
  return h.hexdigest()


# --- espeak-ng through ctypes ------------------------------------------------


def test_espeak_phoneme_events_index_the_audio():
  samples, events = espeak.synthesize("Judge the chess.", "en-us")
  assert samples.dtype == np.int16 and len(samples) > 5000
  sample_pos = [e[1] for e in events if e[0] == "phoneme"]
  names = [e[2].lstrip("',") for e in events if e[0] == "phoneme"]
  assert sample_pos == sorted(sample_pos)
  assert 0 <= sample_pos[0] and sample_pos[-1] <= len(samples)
  assert names[:3] == ["dZ", "V", "dZ"]
  with pytest.raises(CorpusError, match="no voice named 'xx-nowhere'"):
    espeak.synthesize("hello", "xx-nowhere")


def test_mapping_splits_stops_and_r_coloured_vowels():
  samples, events = espeak.synthesize("The dark cart.", "en-us")
  segs = corpus.espeak_to_timit(events, samples.astype(float), "en-us")
  labels = [s[2] for s in segs]
  assert labels[0] == labels[-1] == "h#"
  for a, b in zip(segs, segs[1:]):
    assert a[1] == b[0] and a[1] > a[0]
  # "dark": dcl d aa r kcl k; "cart": kcl k aa r tcl t.
  assert "dcl d aa r kcl k" in " ".join(labels)
  assert "kcl k aa r tcl t" in " ".join(labels)
  # A voiceless closure is silent (espeak's closure precedes the burst event).
  audio = samples.astype(float)
  for start, end, label, _ in segs:
    if label == "kcl":
      assert np.sqrt(np.mean(audio[start:end]**2)) < 100
  # Non-rhotic accent: no r after the vowel of "dark".
  samples, events = espeak.synthesize("The dark cart.", "en-gb-x-rp")
  labels = [s[2] for s in corpus.espeak_to_timit(events, samples.astype(float),
                                                 "en-gb-x-rp")]
  assert "dcl d aa kcl k" in " ".join(labels)
  # Word-final schwa + n after t/d is syllabic en, here as in TIMIT.
  samples, events = espeak.synthesize("A button.", "en-gb-x-rp")
  labels = [s[2] for s in corpus.espeak_to_timit(events, samples.astype(float),
                                                 "en-gb-x-rp")]
  assert "bcl b ah tcl t en h#" in " ".join(labels)


# --- The generated corpus ----------------------------------------------------


def test_layout_speakers_and_files(tiny_corpus):
  root, summary = tiny_corpus
  speakers = {}
  for split in ("TRAIN", "TEST"):
    dialects = sorted(os.listdir(os.path.join(root, split)))
    assert dialects == [f"DR{i}" for i in range(1, 9)]
    speakers[split] = {s for d in dialects
                       for s in os.listdir(os.path.join(root, split, d))}
    for spk_dir in glob.glob(os.path.join(root, split, "DR*", "*")):
      stems = {os.path.splitext(f)[0] for f in os.listdir(spk_dir)}
      assert {"SA1", "SA2"} <= stems
      for stem in stems:
        for ext in (".WAV", ".PHN", ".WRD", ".TXT"):
          assert os.path.exists(os.path.join(spk_dir, stem + ext))
  assert not speakers["TRAIN"] & speakers["TEST"]
  assert summary["TRAIN"]["speakers"] == 8 == len(speakers["TRAIN"])


def test_every_class_in_both_splits(tiny_corpus):
  _, summary = tiny_corpus
  for split in ("TRAIN", "TEST"):
    counts = summary[split]["class_counts"]
    assert sorted(counts) == sorted(phones.phones48())
    assert min(counts.values()) > 0, split
    assert summary[split]["phones"] > 500


def test_files_are_timit_like(tiny_corpus):
  root, _ = tiny_corpus
  wavs = sorted(glob.glob(os.path.join(root, "TRAIN", "DR1", "*", "*.WAV")))
  for wav in wavs:
    stem = wav[:-4]
    samples, rate = sphere.read_sphere(wav)
    assert rate == 16000 and np.abs(samples).max() > 1000
    segs = phones.read_phn(stem + ".PHN", len(samples))
    assert segs[0][0] == 0 and segs[-1][1] == len(samples)
    assert segs[0][2] == segs[-1][2] == "h#"
    assert all(a[1] == b[0] for a, b in zip(segs, segs[1:]))
    with open(stem + ".TXT") as f:
      start, end, text = f.read().split(" ", 2)
    assert (int(start), int(end)) == (0, len(samples))
    with open(stem + ".WRD") as f:
      words = [l.split() for l in f]
    assert len(words) == len(text.split())
    assert all(0 <= int(a) < int(b) <= len(samples) for a, b, _ in words)
  sa1 = [w for w in wavs if w.endswith("SA1.WAV")][0]
  with open(sa1[:-4] + ".WRD") as f:
    assert [l.split()[2] for l in f][:3] == ["she", "had", "your"]


def test_same_seed_same_bytes_any_worker_count(tiny_corpus, tmp_path):
  root, _ = tiny_corpus
  config = corpus.get_config("tiny")
  config.num_workers = 2
  again = str(tmp_path / "again")
  data.make_timit_corpus(again, config, seed=0)
  assert _digest(again) == _digest(root)
  other = str(tmp_path / "other")
  data.make_timit_corpus(other, corpus.get_config("tiny"), seed=1)
  assert _digest(other) != _digest(root)
  with pytest.raises(CorpusError, match="already exists"):
    data.make_timit_corpus(other, corpus.get_config("tiny"), seed=1)


def test_resampled_positions_follow_the_audio():
  config = corpus.get_config("tiny")
  config.dither_std = 0.0
  config.edge_silence_ms = (0, 0)
  speaker = dict(accent="en-us", variant="m3", rate=175, pitch=50,
                 pitch_spread=50)
  samples, segs, _ = corpus.synthesize_utterance(
      "Sister", speaker, config, np.random.default_rng(0))
  raw, _ = espeak.synthesize("Sister", "en-us+m3", 175, 50, 50)
  assert abs(len(samples) - len(raw) * 16000 / 22050) <= 1
  assert segs[-1][1] == len(samples)


# --- Features ------------------------------------------------------------------


def test_features_shapes_cut_and_padding(tiny_corpus, tiny_features):
  root, _ = tiny_corpus
  feats, _ = tiny_features
  fold = phones.fold_61_to_48()
  lengths = {}
  for split in ("TRAIN", "TEST"):
    lengths[split] = np.array([
        end - start
        for u in data.list_utterances(root, split)
        for start, end, label in phones.read_phn(u["phn"]) if fold[label]])
  cut = np.percentile(lengths["TRAIN"], 95)
  assert feats.length_cut == pytest.approx(cut)
  expect_max = max(l[l <= cut].max() for l in lengths.values())
  assert feats.max_length == expect_max
  frames = 1 + (expect_max - 267) // 145
  for split, s in (("TRAIN", feats.train), ("TEST", feats.test)):
    n = int(np.sum(lengths[split] <= cut))
    assert s.waveforms.shape == (n, expect_max)
    assert s.spectrograms.shape == (n, 201, frames)
    assert s.labels48.shape == s.labels39.shape == s.lengths.shape == (n,)
    assert s.spectrograms.dtype == np.float32
    # Zero after each phone's end.
    mask = np.arange(expect_max)[None] >= s.lengths[:, None]
    assert not np.any(s.waveforms[mask])
  assert feats.mean_spectrogram.shape == (201, frames)
  np.testing.assert_allclose(feats.mean_spectrogram,
                             feats.train.spectrograms.mean(0), rtol=1e-5,
                             atol=1e-8)
  np.testing.assert_array_equal(
      feats.train.labels39, phones.class_ids_48_to_39()[feats.train.labels48])
  x = data.network_inputs(feats, "train")
  assert x.shape == feats.train.spectrograms.shape


def test_features_match_a_plain_scipy_loop(tiny_corpus, tiny_features):
  root, _ = tiny_corpus
  feats, _ = tiny_features
  utt = data.list_utterances(root, "TEST")[0]
  samples = sphere.read_audio(utt["wav"])
  segs = [s for s in phones.read_phn(utt["phn"]) if s[2] != "q"]
  start, end, _ = segs[1]
  x = np.zeros(feats.max_length, np.float32)
  x[:end - start] = samples[start:end] / 32768.0
  np.testing.assert_array_equal(feats.test.waveforms[1], x)
  # The thesis's (MATLAB) spectrogram: symmetric Hamming window, and
  # scaling = scipy's 'spectrum' times the window's sum.
  hamming = scipy.signal.get_window("hamming", 267, fftbins=False)
  _, _, z = scipy.signal.stft(x, nperseg=267, noverlap=122, nfft=400,
                              boundary=None, padded=False, window=hamming)
  ref = np.abs(z) * hamming.sum()
  np.testing.assert_allclose(feats.test.spectrograms[1], ref, rtol=1e-4,
                             atol=1e-7 * ref.max())
  assert data.stft_settings(feats) == dict(window_length=267, hop=145,
                                           n_fft=400, window="hamming")


def test_feature_cache_hit_and_invalidation(tiny_corpus, tiny_features,
                                            monkeypatch, tmp_path):
  root, _ = tiny_corpus
  feats, cache_dir = tiny_features
  assert len(os.listdir(cache_dir)) == 1

  def fail(*args, **kwargs):
    raise AssertionError("cache miss: the corpus was read again")

  monkeypatch.setattr(timit, "read_phones", fail)
  again = data.load_phone_data(root, cache_dir=cache_dir)
  np.testing.assert_array_equal(again.train.spectrograms,
                                feats.train.spectrograms)
  assert again.max_length == feats.max_length
  assert again.phones48 == feats.phones48
  assert again.fingerprint == feats.fingerprint
  # Other settings, other key.
  with pytest.raises(AssertionError, match="cache miss"):
    data.load_phone_data(root, cache_dir=cache_dir, percentile=90.0)
  with pytest.raises(AssertionError, match="cache miss"):
    data.load_phone_data(root, cache_dir=cache_dir, window="periodic_hann")
  # A changed corpus file, other key.
  copy = str(tmp_path / "copy")
  shutil.copytree(root, copy)
  data.load_phone_data(copy, cache_dir=cache_dir)  # Same listing: a hit.
  phn = data.list_utterances(copy, "TEST")[0]["phn"]
  with open(phn, "a") as f:
    f.write("\n")
  with pytest.raises(AssertionError, match="cache miss"):
    data.load_phone_data(copy, cache_dir=cache_dir)
  # A corrupt cache file is recomputed, not trusted.
  monkeypatch.undo()
  (path,) = [os.path.join(cache_dir, f) for f in os.listdir(cache_dir)
             if f.endswith(".npz")][:1]
  with open(path, "wb") as f:
    f.write(b"not an npz")
  again = data.load_phone_data(root, cache_dir=cache_dir)
  np.testing.assert_array_equal(again.test.labels48, feats.test.labels48)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_riff_copy_reads_the_same(tiny_corpus, tiny_features, tmp_path,
                                  subtype):
  import soundfile  # pylint: disable=g-import-not-at-top
  root, _ = tiny_corpus
  feats, _ = tiny_features
  copy = str(tmp_path / "riff")
  shutil.copytree(root, copy)
  for wav in glob.glob(os.path.join(copy, "*", "*", "*", "*.WAV")):
    samples, _ = sphere.read_sphere(wav)
    os.remove(wav)
    if subtype == "FLOAT":  # a float WAV holds samples / 32768
      samples = samples / 32768.0
    soundfile.write(wav[:-4] + ".wav", samples, 16000, subtype=subtype)
  riff = data.load_phone_data(copy, cache=False)
  np.testing.assert_array_equal(riff.test.waveforms, feats.test.waveforms)
  np.testing.assert_array_equal(riff.test.spectrograms, feats.test.spectrograms)
  np.testing.assert_array_equal(riff.train.labels48, feats.train.labels48)
  assert riff.fingerprint == feats.fingerprint


def test_class_missing_from_a_split(tiny_corpus, tmp_path):
  root, _ = tiny_corpus
  copy = str(tmp_path / "no_zh")
  shutil.copytree(root, copy)
  for phn in glob.glob(os.path.join(copy, "TEST", "*", "*", "*.PHN")):
    with open(phn) as f:
      text = f.read().replace(" zh\n", " sh\n")
    with open(phn, "w") as f:
      f.write(text)
  with pytest.raises(CorpusError, match=r"TEST: no examples of class\(es\) "
                     r"\['zh'\]"):
    data.load_phone_data(copy, cache=False)


def test_chirps_through_the_same_stft(tiny_features):
  feats, _ = tiny_features
  c = data.make_chirps(6, feats.max_length, seed=3, method="logarithmic",
                       lengths=feats.train.lengths)
  assert c["spectrograms"].shape == (6,) + feats.train.spectrograms.shape[1:]
  assert set(c["lengths"]) <= set(feats.train.lengths)


def test_fingerprint_identifies_the_data(tiny_corpus, tiny_features, tmp_path):
  root, _ = tiny_corpus
  feats, _ = tiny_features
  assert isinstance(feats.fingerprint, str) and len(feats.fingerprint) == 16
  # The same phones wherever the corpus lies (a copy has other mtimes), and
  # with or without the cache.
  copy = str(tmp_path / "copy")
  shutil.copytree(root, copy)
  assert data.load_phone_data(copy, cache=False).fingerprint == \
      feats.fingerprint
  # Every setting changes it: the window, the percentile, the scale.
  others = [data.load_phone_data(root, cache=False, **kw)
            for kw in (dict(window="periodic_hann"), dict(percentile=90.0),
                       dict(waveform_scale=1.0 / 16384))]
  prints = {feats.fingerprint} | {o.fingerprint for o in others}
  assert len(prints) == 4
  hann = others[0]
  assert data.stft_settings(hann)["window"] == "periodic_hann"
  assert not np.allclose(hann.train.spectrograms, feats.train.spectrograms)
  # And so does a change to one phone's samples.
  utt = data.list_utterances(copy, "TRAIN")[0]
  samples, rate = sphere.read_sphere(utt["wav"])
  start, end, _ = [seg for seg in phones.read_phn(utt["phn"])
                   if seg[1] - seg[0] <= feats.length_cut][1]
  samples[(start + end) // 2] += 1
  wav = utt["wav"]
  sphere.write_sphere(wav, samples, rate)
  assert data.load_phone_data(copy, cache=False).fingerprint != \
      feats.fingerprint


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(percentile=0), r"percentile=0: must be in \(0, 100\]"),
    (dict(percentile=-5.0), r"percentile=-5.0: must be in \(0, 100\]"),
    (dict(percentile=100.5), r"percentile=100.5: must be in \(0, 100\]"),
    (dict(window="hamm"), "unknown STFT window 'hamm'"),
    (dict(window=np.ones(200)), r"shape \(200,\), want \(267,\)"),
    (dict(hop=0), "hop must be in"),
    (dict(waveform_scale=0.0), "waveform_scale=0.0: must be a finite"),
    (dict(sample_rate=-16000), "sample_rate=-16000"),
])
def test_bad_feature_settings_fail_before_reading(kwargs, pattern,
                                                  monkeypatch):
  def fail(*args, **kw):
    raise AssertionError("the corpus was read")

  monkeypatch.setattr(timit, "list_utterances", fail)
  with pytest.raises(ValueError, match=pattern):
    data.load_phone_data("/nonexistent/corpus", **kwargs)


def test_chirps_at_the_phones_level_through_the_same_stft(tiny_features):
  feats, _ = tiny_features
  picks = np.arange(0, len(feats.test), max(1, len(feats.test) // 20))
  rms = data.signal_rms(feats.test.waveforms[picks], feats.test.lengths[picks])
  want = [np.sqrt(np.mean(w[:n].astype(np.float64)**2)) for w, n in
          zip(feats.test.waveforms[picks], feats.test.lengths[picks])]
  np.testing.assert_allclose(rms, want, rtol=1e-12)
  level = float(np.mean(rms))
  settings = data.stft_settings(feats)
  c = data.make_chirps(6, feats.max_length, seed=3, method="logarithmic",
                       lengths=feats.train.lengths, rms=level, **settings)
  got = data.signal_rms(c["waveforms"], c["lengths"])
  np.testing.assert_allclose(got, level, rtol=1e-5)
  per_chirp = np.linspace(0.01, 0.06, 6)
  c2 = data.make_chirps(6, feats.max_length, seed=3, method="logarithmic",
                        lengths=feats.train.lengths, rms=per_chirp, **settings)
  np.testing.assert_allclose(data.signal_rms(c2["waveforms"], c2["lengths"]),
                             per_chirp, rtol=1e-5)
  # Same sweeps, only the level differs; spectrograms through the data's STFT.
  np.testing.assert_allclose(c2["waveforms"][0] / per_chirp[0],
                             c["waveforms"][0] / level, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      c["spectrograms"], data.stft_magnitudes(c["waveforms"], **settings),
      rtol=1e-6)
  hann = data.make_chirps(6, feats.max_length, seed=3, method="logarithmic",
                          lengths=feats.train.lengths, rms=level,
                          window="periodic_hann")
  np.testing.assert_array_equal(hann["waveforms"], c["waveforms"])
  assert not np.allclose(hann["spectrograms"], c["spectrograms"])
