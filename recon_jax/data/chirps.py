"""Chirp control stimuli: frequency sweeps through the phones' STFT.

Each chirp sweeps from a random start to a random end frequency (linear or
logarithmic), lasts a phone's length and is zero-padded like the phones, so
its spectrogram has the network's input shape. Give the chirps the phones'
level (`rms=`, e.g. the mean of `signal_rms` over the phones compared), so
that R and the spectrogram measures compare like with like.
"""
import numbers

import numpy as np
import scipy.signal

from recon_jax.data import features
from recon_jax.data import sampling
from recon_jax.ops.spectral import HOP
from recon_jax.ops.spectral import N_FFT
from recon_jax.ops.spectral import WINDOW
from recon_jax.ops.spectral import WINDOW_LENGTH

DEFAULT_AMPLITUDE = 0.1


def signal_rms(waveforms, lengths) -> np.ndarray:
  """RMS of each zero-padded waveform over its own samples: float64 (N,).

  Args:
    waveforms: (N, L) padded signals (e.g. `data.test.waveforms[picks]`).
    lengths: int (N,) samples before the padding (`data.test.lengths`).
  """
  waveforms = np.asarray(waveforms)
  lengths = np.asarray(lengths)
  if waveforms.ndim != 2 or lengths.shape != waveforms.shape[:1]:
    raise ValueError(f"signal_rms: want waveforms (N, L) and lengths (N,), got "
                     f"{waveforms.shape} and {lengths.shape}")
  if lengths.size and (lengths.min() < 1 or lengths.max() > waveforms.shape[1]):
    raise ValueError(f"signal_rms: lengths span [{lengths.min()}, "
                     f"{lengths.max()}], outside [1, {waveforms.shape[1]}]")
  return np.array([np.sqrt(np.mean(np.square(w[:n], dtype=np.float64)))
                   for w, n in zip(waveforms, lengths)], np.float64)


def _check_args(num, max_length, method, lengths, freq_range, amplitude, rms,
                sample_rate, window_length):
  num = sampling.check_count(num, "make_chirps: num (number of chirps)", 0)
  max_length = sampling.check_count(max_length, "make_chirps: max_length", 1)
  if max_length < window_length:
    raise ValueError(f"make_chirps: max_length={max_length} is shorter than "
                     f"the STFT window ({window_length} samples)")
  if method not in ("linear", "logarithmic"):
    raise ValueError(f"chirp method must be 'linear' or 'logarithmic', got "
                     f"{method!r}")
  if not isinstance(sample_rate, numbers.Real) or not sample_rate > 0:
    raise ValueError(f"make_chirps: sample_rate must be > 0, got "
                     f"{sample_rate!r}")
  nyquist = sample_rate / 2
  try:
    lo, hi = (float(f) for f in freq_range)
  except (TypeError, ValueError):
    raise ValueError(f"make_chirps: freq_range must be (low, high) in Hz, got "
                     f"{freq_range!r}") from None
  if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi <= nyquist):
    raise ValueError(f"make_chirps: freq_range=({lo}, {hi}) Hz must satisfy "
                     f"0 <= low <= high <= {nyquist} (Nyquist at "
                     f"{sample_rate} Hz)")
  if method == "logarithmic" and lo <= 0:
    raise ValueError(f"make_chirps: a logarithmic sweep cannot start or end "
                     f"at {lo} Hz; freq_range's low end must be > 0")
  if lengths is not None:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not lengths.size or not np.issubdtype(
        lengths.dtype, np.integer):
      raise ValueError(f"make_chirps: lengths must be a non-empty 1-D integer "
                       f"array, got {lengths.dtype} {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > max_length:
      raise ValueError(f"make_chirps: lengths span [{lengths.min()}, "
                       f"{lengths.max()}], outside [1, max_length="
                       f"{max_length}]")
  if rms is not None:
    if amplitude is not None:
      raise ValueError("make_chirps: give amplitude or rms, not both")
    rms = np.asarray(rms, np.float64)
    if rms.ndim not in (0, 1) or (rms.ndim == 1 and rms.shape != (num,)):
      raise ValueError(f"make_chirps: rms must be a float or ({num},) per "
                       f"chirp, got shape {rms.shape}")
    if not np.all(np.isfinite(rms)) or np.any(rms <= 0):
      raise ValueError(f"make_chirps: rms must be finite and > 0, got {rms}")
    rms = np.broadcast_to(rms, (num,))
  elif amplitude is not None and not (np.isfinite(amplitude) and
                                      amplitude > 0):
    raise ValueError(f"make_chirps: amplitude must be > 0, got {amplitude!r}")
  return num, max_length, lengths, (lo, hi), rms


def make_chirps(num, max_length, seed, method="linear", lengths=None,
                freq_range=(50.0, 7900.0), amplitude=None, sample_rate=16000,
                window_length=WINDOW_LENGTH, hop=HOP, n_fft=N_FFT,
                window=WINDOW, rms=None):
  """Random chirps and their STFT magnitudes.

  Args:
    num: number of chirps (>= 0).
    max_length: padded length L (the phones' `max_length`).
    seed: int >= 0; same seed, same chirps.
    method: "linear" or "logarithmic" sweep.
    lengths: phone lengths to draw each chirp's length from (e.g.
      `data.train.lengths`), each in [1, max_length] (a chirp has at least 2
      samples); default uniform in [window_length, max_length].
    freq_range: (low, high) Hz bounds for the start and end frequencies,
      0 <= low <= high <= sample_rate / 2; low > 0 for a logarithmic sweep.
    amplitude: peak amplitude (default 0.1; the phones are int16 / 32768).
    sample_rate: Hz.
    window_length, hop, n_fft, window: the STFT (the phones' settings:
      `**recon_jax.data.stft_settings(data)`).
    rms: instead of `amplitude`, the RMS of each chirp over its own samples:
      a float (all chirps) or a (num,) array. Pass the phones' level so the
      controls compare like with like, e.g.
      `rms=float(np.mean(signal_rms(waves, lengths)))`.

  Returns:
    dict of numpy arrays: waveforms float32 (num, L), spectrograms float32
    (num, n_fft // 2 + 1, F), lengths int32 (num,), start_hz and end_hz
    float32 (num,).

  Raises:
    ValueError naming the argument for a negative count or seed, a frequency
    above Nyquist or (logarithmic) at 0 Hz, lengths outside [1, max_length],
    both amplitude and rms, or a non-positive level.
  """
  seed = sampling.check_seed(seed, "make_chirps: seed")
  num, max_length, lengths, (lo, hi), rms = _check_args(
      num, max_length, method, lengths, freq_range, amplitude, rms,
      sample_rate, window_length)
  rng = np.random.default_rng(seed)
  if lengths is None:
    chirp_lengths = rng.integers(window_length, max_length + 1, size=num)
  else:
    chirp_lengths = rng.choice(lengths, size=num)
  chirp_lengths = np.clip(chirp_lengths, 2, max_length).astype(np.int32)
  if method == "logarithmic":
    start, end = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(2, num)))
  else:
    start, end = rng.uniform(lo, hi, size=(2, num))
  waveforms = np.zeros((num, max_length), np.float32)
  for i, n in enumerate(chirp_lengths):
    t = np.arange(n) / sample_rate
    sweep = scipy.signal.chirp(t, f0=start[i], t1=t[-1], f1=end[i],
                               method=method)
    if rms is None:
      sweep = (DEFAULT_AMPLITUDE if amplitude is None else amplitude) * sweep
    else:
      sweep = sweep * (rms[i] / np.sqrt(np.mean(np.square(sweep))))
    waveforms[i, :n] = sweep
  return dict(
      waveforms=waveforms,
      spectrograms=features.stft_magnitudes(waveforms, window_length, hop,
                                            n_fft, window=window),
      lengths=chirp_lengths, start_hz=start.astype(np.float32),
      end_hz=end.astype(np.float32))
