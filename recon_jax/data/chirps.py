"""Chirp control stimuli: frequency sweeps through the phones' STFT.

Each chirp sweeps from a random start to a random end frequency (linear or
logarithmic), lasts a phone's length and is zero-padded like the phones, so
its spectrogram has the network's input shape.
"""
import numpy as np
import scipy.signal

from recon_jax.data import features
from recon_jax.ops.spectral import HOP
from recon_jax.ops.spectral import N_FFT
from recon_jax.ops.spectral import WINDOW_LENGTH


def make_chirps(num, max_length, seed, method="linear", lengths=None,
                freq_range=(50.0, 7900.0), amplitude=0.1, sample_rate=16000,
                window_length=WINDOW_LENGTH, hop=HOP, n_fft=N_FFT):
  """Random chirps and their STFT magnitudes.

  Args:
    num: number of chirps.
    max_length: padded length L (the phones' `max_length`).
    seed: int; same seed, same chirps.
    method: "linear" or "logarithmic" sweep.
    lengths: phone lengths to draw each chirp's length from (e.g.
      `data.train.lengths`); default uniform in [window_length, max_length].
    freq_range: (low, high) Hz bounds for the start and end frequencies.
    amplitude: peak amplitude (the phones are int16 / 32768 by default).

  Returns:
    dict of numpy arrays: waveforms float32 (num, L), spectrograms float32
    (num, n_fft // 2 + 1, F), lengths int32 (num,), start_hz and end_hz
    float32 (num,).
  """
  if method not in ("linear", "logarithmic"):
    raise ValueError(f"chirp method must be 'linear' or 'logarithmic', got "
                     f"{method!r}")
  rng = np.random.default_rng(seed)
  if lengths is None:
    chirp_lengths = rng.integers(window_length, max_length + 1, size=num)
  else:
    chirp_lengths = rng.choice(np.asarray(lengths), size=num)
  chirp_lengths = np.clip(chirp_lengths, 2, max_length).astype(np.int32)
  lo, hi = freq_range
  if method == "logarithmic":
    start, end = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(2, num)))
  else:
    start, end = rng.uniform(lo, hi, size=(2, num))
  waveforms = np.zeros((num, max_length), np.float32)
  for i, n in enumerate(chirp_lengths):
    t = np.arange(n) / sample_rate
    waveforms[i, :n] = amplitude * scipy.signal.chirp(
        t, f0=start[i], t1=t[-1], f1=end[i], method=method)
  return dict(
      waveforms=waveforms,
      spectrograms=features.stft_magnitudes(waveforms, window_length, hop,
                                            n_fft),
      lengths=chirp_lengths, start_hz=start.astype(np.float32),
      end_hz=end.astype(np.float32))
