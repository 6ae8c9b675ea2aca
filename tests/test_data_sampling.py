"""Class-balanced epoch resampling (thesis 3.3) and chirp controls."""
import numpy as np
import pytest

from recon_jax import data
from recon_jax.data.errors import CorpusError

# Class 0 scarce (3 < 500), class 1 has exactly 500, class 2 plenty (1200).
LABELS = np.repeat(np.arange(3), [3, 500, 1200])
np.random.default_rng(0).shuffle(LABELS)


def test_balanced_counts_and_two_steps():
  idx = data.balanced_indices(LABELS, 500, np.random.default_rng(0))
  assert idx.shape == (1500,)
  np.testing.assert_array_equal(np.bincount(LABELS[idx]), [500, 500, 500])
  # Scarce class: every member 166 times (498), then 2 more distinct members.
  scarce = np.bincount(idx[LABELS[idx] == 0], minlength=len(LABELS))
  members = np.flatnonzero(LABELS == 0)
  assert sorted(scarce[members]) == [166, 167, 167]
  # Exactly the class size: each member once.
  exact = np.bincount(idx[LABELS[idx] == 1], minlength=len(LABELS))
  assert set(exact[LABELS == 1]) == {1}
  # Plenty: 500 distinct members, without replacement.
  plenty = idx[LABELS[idx] == 2]
  assert len(np.unique(plenty)) == 500


def test_balanced_is_shuffled_and_deterministic():
  a = data.balanced_indices(LABELS, 200, 7)
  b = data.balanced_indices(LABELS, 200, 7)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, data.balanced_indices(LABELS, 200, 8))
  # Shuffled across classes, not grouped.
  assert len(np.unique(LABELS[a[:30]])) > 1


def test_epoch_batches():
  batches = list(data.epoch_batches(LABELS, 500, seed=1, epoch=0))
  assert [len(b) for b in batches] == [128] * 11 + [1500 - 11 * 128]
  again = list(data.epoch_batches(LABELS, 500, seed=1, epoch=0))
  np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(again))
  other = np.concatenate(list(data.epoch_batches(LABELS, 500, seed=1, epoch=1)))
  assert not np.array_equal(np.concatenate(batches), other)
  dropped = list(data.epoch_batches(LABELS, 500, 1, 0, drop_remainder=True))
  assert [len(b) for b in dropped] == [128] * 11


def test_empty_class_is_an_error():
  with pytest.raises(CorpusError, match="class 3 has no examples"):
    data.balanced_indices(LABELS, 10, 0, num_classes=4)


@pytest.mark.parametrize("method", ["linear", "logarithmic"])
def test_chirps(method):
  c = data.make_chirps(8, 2554, seed=0, method=method,
                       lengths=np.array([1000, 2000, 2554]))
  assert c["waveforms"].shape == (8, 2554)
  assert c["spectrograms"].shape[:2] == (8, 201)
  assert set(c["lengths"]) <= {1000, 2000, 2554}
  for w, n in zip(c["waveforms"], c["lengths"]):
    assert not np.any(w[n:]) and np.abs(w[:n]).max() > 0.09
  again = data.make_chirps(8, 2554, seed=0, method=method,
                           lengths=np.array([1000, 2000, 2554]))
  np.testing.assert_array_equal(c["waveforms"], again["waveforms"])
  # The first frame peaks at the sweep's frequency at the frame's centre
  # (40 Hz bins at 400 points and 16 kHz).
  for spec, f0, f1, n in zip(c["spectrograms"], c["start_hz"], c["end_hz"],
                             c["lengths"]):
    frac = 133 / (n - 1)
    f = f0 + (f1 - f0) * frac if method == "linear" else f0 * (f1 / f0)**frac
    assert abs(np.argmax(spec[:, 0]) * 40.0 - f) < 150.0
  with pytest.raises(ValueError, match="'linear' or 'logarithmic'"):
    data.make_chirps(1, 2554, 0, method="cubic")


@pytest.mark.parametrize("labels,kwargs,pattern", [
    (LABELS, dict(per_class=-3), "per_class .* must be >= 1, got -3"),
    (LABELS, dict(per_class=0), "per_class .* must be >= 1, got 0"),
    (LABELS, dict(per_class=2.5), "per_class .* must be an integer"),
    (LABELS.reshape(1, -1), {}, r"1-D array of class ids, got shape \(1, 1703\)"),
    (LABELS.astype(np.float32), {}, "integer class ids, got dtype float32"),
    (LABELS > 0, {}, "integer class ids, got dtype bool"),
    (np.array([], np.int32), {}, "labels are empty"),
    (LABELS, dict(rng=-1), "seed must be >= 0, got -1"),
    (LABELS, dict(rng=[3, -1]), "seed must be >= 0, got -1"),
    (LABELS, dict(num_classes=0), "num_classes must be >= 1"),
])
def test_balanced_indices_bad_input(labels, kwargs, pattern):
  args = dict(per_class=5, rng=0)
  args.update(kwargs)
  with pytest.raises(ValueError, match=pattern):
    data.balanced_indices(labels, **args)


def test_epoch_batches_bad_input_fails_at_the_call():
  with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
    data.epoch_batches(LABELS, 5, seed=0, epoch=0, batch_size=0)
  with pytest.raises(ValueError, match="seed must be >= 0, got -2"):
    data.epoch_batches(LABELS, 5, seed=-2, epoch=0)
  with pytest.raises(ValueError, match="epoch must be >= 0"):
    data.epoch_batches(LABELS, 5, seed=0, epoch=-1)
  # 3 classes x 40 = 120 < 128: no whole batch, an epoch of 0 steps.
  with pytest.raises(ValueError, match="120 examples .* smaller than one "
                     "batch of 128"):
    data.epoch_batches(LABELS, 40, seed=0, epoch=0, drop_remainder=True)
  assert [len(b) for b in data.epoch_batches(LABELS, 40, 0, 0)] == [120]
  assert [len(b) for b in data.epoch_batches(LABELS, 43, 0, 0,
                                             drop_remainder=True)] == [128]


@pytest.mark.parametrize("args,kwargs,pattern", [
    ((-2, 2554, 0), {}, r"num \(number of chirps\) must be >= 0, got -2"),
    ((2, 2554, -1), {}, "seed must be >= 0, got -1"),
    ((2, 2554, None), {}, "seed is None"),
    ((2, 200, 0), {}, "max_length=200 is shorter than the STFT window"),
    ((2, 2554, 0), dict(freq_range=(50.0, 9000.0)),
     r"high <= 8000.0 \(Nyquist"),
    ((2, 2554, 0), dict(freq_range=(50.0, 4100.0), sample_rate=8000),
     r"high <= 4000.0 \(Nyquist"),
    ((2, 2554, 0), dict(freq_range=(-10.0, 400.0)), "0 <= low"),
    ((2, 2554, 0), dict(freq_range=(3000.0, 400.0)), "low <= high"),
    ((2, 2554, 0), dict(freq_range=(0.0, 4000.0), method="logarithmic"),
     "logarithmic sweep cannot start or end at 0.0 Hz"),
    ((2, 2554, 0), dict(lengths=np.array([100, 3000])),
     r"lengths span \[100, 3000\], outside \[1, max_length=2554\]"),
    ((2, 2554, 0), dict(lengths=np.array([], np.int32)), "non-empty 1-D"),
    ((2, 2554, 0), dict(rms=0.05, amplitude=0.1), "amplitude or rms"),
    ((2, 2554, 0), dict(rms=-0.05), "finite and > 0"),
    ((2, 2554, 0), dict(rms=np.ones(3)), r"rms must be a float or \(2,\)"),
    ((2, 2554, 0), dict(amplitude=0.0), "amplitude must be > 0"),
    ((2, 2554, 0), dict(window="blackman"), "unknown STFT window"),
])
def test_chirp_arguments_are_checked(args, kwargs, pattern):
  with pytest.raises(ValueError, match=pattern):
    data.make_chirps(*args, **kwargs)


def test_zero_chirps_and_log_sweep_from_a_low_frequency():
  empty = data.make_chirps(0, 2554, 0)
  assert empty["waveforms"].shape == (0, 2554)
  assert empty["spectrograms"].shape == (0, 201, 16)
  c = data.make_chirps(2, 2554, 0, method="logarithmic",
                       freq_range=(1.0, 8000.0))
  assert np.all(c["start_hz"] >= 1.0) and np.all(c["end_hz"] <= 8000.0)
