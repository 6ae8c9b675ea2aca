"""Reconstruction measures against plain NumPy references."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import metrics
from recon_jax import ops

sys.path.insert(0, os.path.dirname(__file__))
from test_inversion_fixtures import synthetic_spectrograms  # noqa: E402

ITERS = 30  # Griffin-Lim iterations: enough for the comparisons here


def _np_mxcorr(a, b, order="C"):
  a = np.ravel(a, order=order).astype(np.float64)
  b = np.ravel(b, order=order).astype(np.float64)
  return np.correlate(b, a, "full").max() / np.sqrt(a @ a * (b @ b))


@pytest.fixture(scope="module")
def phones():
  return synthetic_spectrograms(6, seed=3)  # waveforms, inputs, mean


def test_euclidean_error_and_spectrogram_mxcorr_match_numpy():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4, 201, 16)).astype(np.float32)
  b = (0.5 * a + rng.normal(size=a.shape)).astype(np.float32)
  np.testing.assert_allclose(metrics.euclidean_error(a, b),
                             np.linalg.norm((a - b).reshape(4, -1), axis=1),
                             rtol=1e-5)
  got = np.asarray(metrics.spectrogram_mxcorr(a, b))
  # MATLAB's X(:) of each (F, T) spectrogram: column-major, frequency fastest.
  np.testing.assert_allclose(
      got, [_np_mxcorr(x, y, order="F") for x, y in zip(a, b)], rtol=1e-4,
      atol=1e-5)
  # Unrelated spectrograms peak away from lag 0, where the order matters.
  c = rng.normal(size=a.shape).astype(np.float32)
  got = np.asarray(metrics.spectrogram_mxcorr(a, c))
  np.testing.assert_allclose(
      got, [_np_mxcorr(x, y, order="F") for x, y in zip(a, c)], rtol=1e-4,
      atol=1e-5)
  row_major = [_np_mxcorr(x, y) for x, y in zip(a, c)]
  assert np.min(np.abs(got - row_major)) > 1e-3
  np.testing.assert_allclose(metrics.spectrogram_mxcorr(a, 3.0 * a), 1.0,
                             rtol=1e-5)
  assert np.all(np.asarray(metrics.euclidean_error(a, a)) == 0)


def test_spectrogram_mxcorr_lags_shift_along_frequency():
  """Column-major: a spectrogram moved up one frequency bin is a lag of 1."""
  rng = np.random.default_rng(5)
  a = np.abs(rng.normal(size=(2, 201, 16))).astype(np.float32)
  a[:, -1, :] = 0.0  # nothing moves out of the top bin
  up = np.zeros_like(a)
  up[:, 1:, :] = a[:, :-1, :]
  np.testing.assert_allclose(metrics.spectrogram_mxcorr(a, up), 1.0,
                             rtol=1e-5)
  # A shift by one whole frame is a lag of F = 201 in MATLAB's X(:).
  later = np.zeros_like(a)
  a[:, :, -1] = 0.0
  later[:, :, 1:] = a[:, :, :-1]
  np.testing.assert_allclose(metrics.spectrogram_mxcorr(a, later), 1.0,
                             rtol=1e-5)


def test_waveform_mxcorr_adds_the_mean_clips_and_runs_griffin_lim(phones):
  waves, inputs, mean = phones
  recon = inputs + np.random.default_rng(1).normal(
      0, 0.2 * inputs.std(), inputs.shape).astype(np.float32)
  key = jax.random.key(7)
  got = np.asarray(metrics.waveform_mxcorr(waves, recon, mean, key, ITERS))
  magnitude = np.maximum(recon + mean, 0.0)
  assert np.any(recon + mean < 0)  # the clipping matters here
  rebuilt = np.asarray(ops.griffin_lim(jnp.asarray(magnitude), key,
                                       n_iter=ITERS, length=waves.shape[1]))
  want = [_np_mxcorr(w, r) for w, r in zip(waves, rebuilt)]
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(
      metrics.spectrogram_to_waveform(recon, mean, key, ITERS, waves.shape[1]),
      rebuilt, rtol=1e-5, atol=1e-6)
  measures = metrics.reconstruction_measures(inputs, recon, waves, mean, key,
                                             ITERS)
  np.testing.assert_allclose(measures["waveform_mxcorr"], got, rtol=1e-6)
  np.testing.assert_allclose(measures["spectrogram_mxcorr"],
                             metrics.spectrogram_mxcorr(inputs, recon))
  np.testing.assert_allclose(measures["euclidean_error"],
                             metrics.euclidean_error(inputs, recon))


def test_round_trip_beats_the_mean_spectrogram_threshold(phones):
  waves, inputs, mean = phones
  key = jax.random.key(0)
  trip = np.asarray(metrics.stft_round_trip_mxcorr(waves, key, ITERS))
  # The round trip is waveform_mxcorr of the true input spectrograms.
  np.testing.assert_allclose(
      trip, metrics.waveform_mxcorr(waves, inputs, mean, key, ITERS),
      rtol=1e-3, atol=1e-3)
  threshold = metrics.waveform_mxcorr_threshold(mean, waves, key, ITERS)
  average = np.asarray(ops.griffin_lim(jnp.asarray(mean)[None], key,
                                       n_iter=ITERS, length=waves.shape[1]))[0]
  assert threshold == pytest.approx(
      np.mean([_np_mxcorr(w, average) for w in waves]), rel=1e-3, abs=1e-4)
  assert isinstance(threshold, float)
  assert 0 < threshold < trip.mean() and trip.mean() > 0.3


def test_bad_inputs_raise():
  a = np.zeros((2, 201, 16), np.float32)
  with pytest.raises(ValueError, match="same shape"):
    metrics.euclidean_error(a, a[:1])
  bad = a.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.spectrogram_mxcorr(a, bad)
  with pytest.raises(ValueError, match="mean spectrogram"):
    metrics.spectrogram_to_waveform(a, np.zeros((201, 15)), jax.random.key(0))
  with pytest.raises(ValueError, match="2 spectrograms"):
    metrics.waveform_mxcorr(np.zeros((3, 2554)), a, np.zeros((201, 16)),
                            jax.random.key(0))


def test_waveform_length_must_fit_the_frames():
  a = np.zeros((2, 201, 16), np.float32)
  mean = np.ones((201, 16), np.float32)
  key = jax.random.key(0)
  # 16 frames of 267 with hop 145 need 2442..2586 samples.
  for length in (2000, 2441, 2587, 3000):
    with pytest.raises(ValueError, match=rf"waveforms of {length} samples do "
                       r"not fit spectrograms of 16 frames.*2442\.\.2586"):
      metrics.waveform_mxcorr(np.ones((2, length)), a, mean, key, 1)
    with pytest.raises(ValueError, match=rf"{length} samples do not fit the "
                       "mean spectrogram"):
      metrics.waveform_mxcorr_threshold(mean, np.ones((2, length)), key, 1)
  # Other STFT settings: 2554 samples give 17 frames with hop 137.
  with pytest.raises(ValueError, match="2554 samples do not fit"):
    metrics.waveform_mxcorr(np.ones((2, 2554)), a, mean, key, 1, hop=137)
  with pytest.raises(ValueError, match="frequency bins"):
    metrics.waveform_mxcorr(np.ones((2, 2554)), a, mean, key, 1, n_fft=512)
  with pytest.raises(ValueError, match="unknown STFT settings"):
    metrics.waveform_mxcorr(np.ones((2, 2554)), a, mean, key, 1, windw="hann")
  with pytest.raises(ValueError, match="empty batch"):
    metrics.waveform_mxcorr(np.ones((0, 2554)), a[:0], mean, key, 1)
  with pytest.raises(ValueError, match="empty batch"):
    metrics.waveform_mxcorr_threshold(mean, np.ones((0, 2554)), key, 1)
  with pytest.raises(ValueError, match="empty batch"):
    metrics.spectrogram_mxcorr(a[:0], a[:0])
