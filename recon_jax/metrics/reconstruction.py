"""Reconstruction measures of the thesis (docs/methods.md, A4; thesis 7).

Spectrograms are the network's inputs: (N, F, T) magnitudes minus the
training mean spectrogram (F, T). Waveforms are (N, L) phone signals (zero
padded to the common length), from which the spectrograms were made with the
STFT of `recon_jax.ops.stft` (thesis defaults; pass window_length / hop /
n_fft / window, e.g. `**recon_jax.data.stft_settings(data)`, to match another
STFT). A waveform's length must give the spectrograms' frame count.
  - euclidean_error: R = ||X* - X|| per example.
  - spectrogram_mxcorr: mxcorr2, max over lags of the normalised xcorr of
    the vectorised spectrograms, vectorised as MATLAB's X(:) (column-major:
    frequency fastest, one time frame after another), so a lag of k is a
    shift by k frequency bins, and one of F bins a shift by one frame.
  - waveform_mxcorr: mxcorr of the original waveform and the Griffin-Lim
    waveform of the reconstruction (mean spectrogram added back, magnitudes
    clipped at 0).
  - stft_round_trip_mxcorr: the same for the TRUE magnitude: the ceiling
    phase recovery puts on waveform mxcorr (thesis ~0.7).
  - waveform_mxcorr_threshold: mean mxcorr of the Griffin-Lim waveform of the
    mean spectrogram against phone waveforms (thesis 0.12): a reconstruction
    below it is worse than the average spectrogram.
"""
import jax
import jax.numpy as jnp
import numpy as np

from recon_jax import ops
from recon_jax.metrics.xcorr import max_xcorr
from recon_jax.ops import checks


def _pair_check(a, b, name_a, name_b):
  if np.shape(a) != np.shape(b):
    raise ValueError(f"{name_a} {np.shape(a)} and {name_b} {np.shape(b)} must "
                     "have the same shape")
  checks.check_min_rank(a, 2, name_a, "(N, ...)")
  checks.check_finite(a, name_a)
  checks.check_finite(b, name_b)


def euclidean_error(originals, reconstructions) -> jax.Array:
  """R = sqrt(sum (X* - X)^2) over all but the first axis: (N,)."""
  _pair_check(originals, reconstructions, "originals", "reconstructions")
  d = (jnp.asarray(originals, jnp.float32)
       - jnp.asarray(reconstructions, jnp.float32))
  return jnp.sqrt(jnp.sum(d.reshape((d.shape[0], -1))**2, axis=-1))


def spectrogram_mxcorr(originals, reconstructions) -> jax.Array:
  """mxcorr2 of each pair of spectrograms (N, F, T): (N,) in [-1, 1].

  Each (F, T) spectrogram is flattened column-major (frequency fastest), as
  the thesis's MATLAB X(:).
  """
  _pair_check(originals, reconstructions, "originals", "reconstructions")
  checks.check_rank(originals, (3,), "spectrograms", "(N, freq, frames)")
  return max_xcorr(originals, reconstructions, batch_ndim=1, order="F")


def _stft_sizes(stft_params):
  unknown = set(stft_params) - {"window_length", "hop", "n_fft", "window"}
  if unknown:
    raise ValueError(f"unknown STFT settings {sorted(unknown)}; want "
                     "window_length, hop, n_fft, window")
  return (stft_params.get("window_length", ops.spectral.WINDOW_LENGTH),
          stft_params.get("hop", ops.spectral.HOP),
          stft_params.get("n_fft", ops.spectral.N_FFT))


def _check_waveforms_fit(length, spec_shape, stft_params, what):
  """A waveform of `length` samples must give `spec_shape`'s (F, T)."""
  window_length, hop, n_fft = _stft_sizes(stft_params)
  freq, frames = spec_shape[-2:]
  if freq != n_fft // 2 + 1:
    raise ValueError(f"{what} {tuple(spec_shape)} have {freq} frequency bins; "
                     f"n_fft={n_fft} gives {n_fft // 2 + 1}")
  fits = (length >= window_length and
          ops.stft_num_frames(length, window_length, hop) == frames)
  if not fits:
    lo = window_length + (frames - 1) * hop
    raise ValueError(
        f"waveforms of {length} samples do not fit {what} of {frames} frames "
        f"(window {window_length}, hop {hop}: {frames} frames need "
        f"{lo}..{lo + hop - 1} samples); pass the waveforms the spectrograms "
        "were made from, or their STFT settings")


def spectrogram_to_waveform(spectrograms, mean_spectrogram, key: jax.Array,
                            n_iter: int = 100, length: int | None = None,
                            **stft_params) -> jax.Array:
  """Griffin-Lim waveforms of network-input spectrograms.

  Args:
    spectrograms: (N, F, T) mean-subtracted magnitudes (network inputs or
      reconstructions of them).
    mean_spectrogram: (F, T) the training mean added back (zeros if the
      spectrograms are plain magnitudes).
    key: PRNG key of Griffin-Lim's initial phase.
    n_iter: Griffin-Lim iterations.
    length: output samples (default: what the frames cover).
    **stft_params: window_length, hop, n_fft, window of the STFT.

  Returns:
    (N, length) float32 waveforms.
  """
  checks.check_rank(spectrograms, (3,), "spectrograms", "(N, freq, frames)")
  checks.check_finite(spectrograms, "spectrograms")
  checks.check_finite(mean_spectrogram, "mean spectrogram")
  if np.shape(mean_spectrogram) != np.shape(spectrograms)[1:]:
    raise ValueError(f"mean spectrogram {np.shape(mean_spectrogram)} does not "
                     f"match spectrograms {np.shape(spectrograms)}")
  _stft_sizes(stft_params)
  magnitude = jnp.maximum(jnp.asarray(spectrograms, jnp.float32)
                          + jnp.asarray(mean_spectrogram, jnp.float32), 0.0)
  return ops.griffin_lim(magnitude, key, n_iter=n_iter, length=length,
                         **stft_params)


def waveform_mxcorr(waveforms, spectrograms, mean_spectrogram,
                    key: jax.Array, n_iter: int = 100,
                    **stft_params) -> jax.Array:
  """mxcorr of original waveforms (N, L) with GL waveforms of (N, F, T): (N,).

  L must give T frames with the STFT settings (the waveforms the
  spectrograms were made from).
  """
  checks.check_rank(waveforms, (2,), "waveforms", "(N, samples)")
  checks.check_rank(spectrograms, (3,), "spectrograms", "(N, freq, frames)")
  if np.shape(waveforms)[0] != np.shape(spectrograms)[0]:
    raise ValueError(f"{np.shape(waveforms)[0]} waveforms but "
                     f"{np.shape(spectrograms)[0]} spectrograms")
  if np.shape(waveforms)[0] == 0:
    raise ValueError("waveform_mxcorr: no waveforms (empty batch)")
  checks.check_finite(waveforms, "waveforms")
  _check_waveforms_fit(np.shape(waveforms)[1], np.shape(spectrograms),
                       stft_params, "spectrograms")
  rebuilt = spectrogram_to_waveform(spectrograms, mean_spectrogram, key,
                                    n_iter, np.shape(waveforms)[1],
                                    **stft_params)
  return max_xcorr(waveforms, rebuilt, batch_ndim=1)


def stft_round_trip_mxcorr(waveforms, key: jax.Array, n_iter: int = 100,
                           **stft_params) -> jax.Array:
  """mxcorr of waveforms (N, L) with GL of their own STFT magnitude: (N,)."""
  checks.check_rank(waveforms, (2,), "waveforms", "(N, samples)")
  checks.check_finite(waveforms, "waveforms")
  _stft_sizes(stft_params)
  magnitude = jnp.abs(ops.stft(waveforms, **stft_params))
  return waveform_mxcorr(waveforms, magnitude, jnp.zeros(magnitude.shape[1:]),
                         key, n_iter, **stft_params)


def waveform_mxcorr_threshold(mean_spectrogram, waveforms, key: jax.Array,
                              n_iter: int = 100, **stft_params) -> float:
  """Mean mxcorr of the mean spectrogram's GL waveform with each waveform.

  Args:
    mean_spectrogram: (F, T) training mean magnitude.
    waveforms: (N, L) phone waveforms.

  Returns:
    The threshold, a float (thesis: 0.12).
  """
  checks.check_rank(waveforms, (2,), "waveforms", "(N, samples)")
  checks.check_rank(mean_spectrogram, (2,), "mean spectrogram",
                    "(freq, frames)")
  if np.shape(waveforms)[0] == 0:
    raise ValueError("waveform_mxcorr_threshold: no waveforms (empty batch)")
  checks.check_finite(waveforms, "waveforms")
  _check_waveforms_fit(np.shape(waveforms)[1], np.shape(mean_spectrogram),
                       stft_params, "the mean spectrogram")
  average = spectrogram_to_waveform(
      jnp.zeros((1,) + np.shape(mean_spectrogram)), mean_spectrogram, key,
      n_iter, np.shape(waveforms)[1], **stft_params)
  scores = max_xcorr(waveforms, jnp.broadcast_to(average, np.shape(waveforms)),
                     batch_ndim=1)
  return float(jnp.mean(scores))


def reconstruction_measures(originals, reconstructions, waveforms,
                            mean_spectrogram, key: jax.Array,
                            n_iter: int = 100, **stft_params) -> dict:
  """The thesis's three measures per example (Fig. 9).

  Args:
    originals, reconstructions: (N, F, T) network inputs X* and X.
    waveforms: (N, L) the originals' waveforms.
    mean_spectrogram: (F, T) the training mean, added back before
      Griffin-Lim.
    key: Griffin-Lim's PRNG key.

  Returns:
    {'euclidean_error', 'spectrogram_mxcorr', 'waveform_mxcorr'}: (N,)
    NumPy arrays.
  """
  return {
      "euclidean_error": np.asarray(euclidean_error(originals,
                                                    reconstructions)),
      "spectrogram_mxcorr": np.asarray(spectrogram_mxcorr(originals,
                                                          reconstructions)),
      "waveform_mxcorr": np.asarray(waveform_mxcorr(
          waveforms, reconstructions, mean_spectrogram, key, n_iter,
          **stft_params)),
  }
