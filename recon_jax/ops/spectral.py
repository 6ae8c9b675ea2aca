"""Short-time Fourier transform, its inverse and Griffin-Lim, in JAX.

Conventions follow `scipy.signal.stft/istft` with `boundary=None/False,
padded=False`. Defaults are the thesis's settings (docs/methods.md, A1): 16.7 ms
window (267 samples at 16 kHz), 7.6 ms overlap (hop 145), 400-point FFT; a
2554-sample phone gives a 201 x 16 (freq x time) spectrogram.

Window: the thesis's spectrograms came from MATLAB's `spectrogram`, which
given an integer window length uses `hamming(N)`, MATLAB's SYMMETRIC Hamming
window: that is the default here (`window="hamming"`). Names follow MATLAB
(symmetric); "periodic_hann" / "periodic_hamming" are scipy.signal's
get_window defaults (DFT-even; "periodic_hann" was this package's window
before, and is scipy.signal.stft's). An explicit 1-D array of
`window_length` values is accepted too. istft and griffin_lim must use the
window that made the spectrogram.

Scaling: `scaling="none"` (the default) is the plain DFT of each windowed
frame, as MATLAB's `spectrogram` (which the thesis used) and
`scipy.signal.ShortTimeFFT(..., scale_to=None)` compute it; its intensities
are what the thesis's network saw and its annealing step r = 0.05 was sized
for. `scaling="spectrum"` divides by the window's sum, as
`scipy.signal.stft`'s default. A spectrogram must be inverted (istft,
griffin_lim, spectral_convergence) with the scaling that made it.

Shapes: signals (..., L); spectrograms (..., n_fft // 2 + 1, frames).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from recon_jax.ops import checks

WINDOW_LENGTH = 267
HOP = 145
N_FFT = 400
WINDOW = "hamming"  # MATLAB spectrogram's window for an integer length.
# name -> (scipy.signal.get_window name, fftbins): MATLAB's hamming(N) and
# hann(N) are symmetric; the periodic ones are scipy's get_window defaults.
WINDOWS = {
    "hamming": ("hamming", False),
    "hann": ("hann", False),
    "periodic_hamming": ("hamming", True),
    "periodic_hann": ("hann", True),
}


def stft_num_frames(length: int, window_length: int = WINDOW_LENGTH,
                    hop: int = HOP) -> int:
  """Number of frames of a `length`-sample signal (no boundary padding)."""
  if window_length > length:
    raise ValueError(f"STFT window ({window_length} samples) is longer than "
                     f"the signal ({length} samples)")
  return 1 + (length - window_length) // hop


def hann_window(window_length: int) -> np.ndarray:
  """Periodic Hann window, as scipy.signal.get_window('hann', n)."""
  n = np.arange(window_length)
  return (0.5 - 0.5 * np.cos(2 * np.pi * n / window_length)).astype(np.float32)


def window_key(window, window_length: int):
  """A checked, hashable form of `window`: a name, or a tuple of floats.

  Args:
    window: a name in WINDOWS, or a real 1-D array-like of `window_length`
      finite values, not all zero.
    window_length: the frame length the window is for.

  Raises:
    ValueError naming the problem (unknown name, wrong length, NaN, ...).
  """
  if isinstance(window, str):
    if window not in WINDOWS:
      raise ValueError(f"unknown STFT window {window!r}; want one of "
                       f"{tuple(WINDOWS)} or an array of {window_length} "
                       "values")
    return window
  if isinstance(window, jax.core.Tracer):
    raise ValueError("the STFT window must be concrete (a name or a NumPy "
                     "array), not a traced value")
  arr = np.asarray(window)
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or
                                 np.issubdtype(arr.dtype, np.integer)):
    raise ValueError(f"STFT window must be a name or real numbers, got dtype "
                     f"{arr.dtype}")
  if arr.shape != (window_length,):
    raise ValueError(f"STFT window array has shape {arr.shape}, want "
                     f"({window_length},) for window_length={window_length}")
  if not np.all(np.isfinite(arr)) or not np.any(arr):
    raise ValueError("STFT window array must be finite and not all zero")
  return tuple(float(v) for v in arr.astype(np.float64))


@functools.lru_cache(maxsize=64)
def _window_values(window, window_length: int) -> np.ndarray:
  """float64 (window_length,) values of a `window_key` result."""
  if isinstance(window, str):
    name, fftbins = WINDOWS[window]
    return scipy.signal.get_window(name, window_length, fftbins=fftbins)
  return np.asarray(window, np.float64)


def stft_window(window=WINDOW, window_length: int = WINDOW_LENGTH
                ) -> np.ndarray:
  """The analysis window's values, float32 (window_length,)."""
  return _window_values(window_key(window, window_length),
                        int(window_length)).astype(np.float32)


def _check_params(window_length, hop, n_fft, scaling, window=WINDOW):
  """Checks the STFT settings; returns them as (int, int, int, window key)."""
  for name, value in (("window_length", window_length), ("hop", hop),
                      ("n_fft", n_fft)):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer)):
      raise ValueError(f"{name} must be an integer, got {value!r}")
  if window_length < 1:
    raise ValueError(f"window_length must be >= 1, got {window_length}")
  if scaling not in SCALINGS:
    raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
  if hop < 1 or hop > window_length:
    raise ValueError(f"hop must be in [1, window_length={window_length}], "
                     f"got {hop}")
  if n_fft < window_length:
    raise ValueError(f"n_fft ({n_fft}) must be >= window_length "
                     f"({window_length})")
  return (int(window_length), int(hop), int(n_fft),
          window_key(window, int(window_length)))


SCALINGS = ("none", "spectrum")


def check_stft_settings(window_length: int = WINDOW_LENGTH, hop: int = HOP,
                        n_fft: int = N_FFT, window=WINDOW,
                        scaling: str = "none"):
  """Checks STFT settings before any work (ValueError naming the field).

  Returns:
    (window_length, hop, n_fft, window) with `window` in its hashable form
    (a name, or a tuple of floats for an array).
  """
  return _check_params(window_length, hop, n_fft, scaling, window)


def _scale(win, scaling):
  """Factor applied to each frame's DFT (scaling checked by _check_params)."""
  return 1.0 if scaling == "none" else 1.0 / float(win.sum())


# Framing and overlap-add cut the signal into hop-long blocks: frame f is
# blocks f .. f + r - 1 (r = ceil(window / hop)) laid end to end, so both are
# reshapes, slices and pads, with no gather or scatter (slow on XLA:CPU).


def _frames(x, n_frames: int, window_length: int, hop: int):
  """(..., L) -> (..., n_frames, window_length), frame f = x[f * hop:][:window]."""
  r = -(-window_length // hop)
  n = (n_frames + r - 1) * hop
  lead = [(0, 0)] * (x.ndim - 1)
  x = jnp.pad(x, lead + [(0, max(n - x.shape[-1], 0))])[..., :n]
  blocks = x.reshape(x.shape[:-1] + (n_frames + r - 1, hop))
  frames = jnp.stack([blocks[..., k:k + n_frames, :] for k in range(r)], -2)
  return frames.reshape(frames.shape[:-2] + (r * hop,))[..., :window_length]


def _overlap_add(frames, hop: int):
  """(..., n_frames, window) -> (..., (n_frames - 1) * hop + window) sums."""
  n_frames, window_length = frames.shape[-2:]
  r = -(-window_length // hop)
  lead = [(0, 0)] * (frames.ndim - 2)
  frames = jnp.pad(frames, lead + [(0, 0), (0, r * hop - window_length)])
  frames = frames.reshape(frames.shape[:-1] + (r, hop))
  out = sum(jnp.pad(frames[..., k, :], lead + [(k, r - 1 - k), (0, 0)])
            for k in range(r))
  out = out.reshape(out.shape[:-2] + (-1,))
  return out[..., :(n_frames - 1) * hop + window_length]


def _window_energy(n_frames: int, window_length: int, hop: int,
                   window) -> np.ndarray:
  """Summed squared windows over each output sample, float64."""
  win = _window_values(window, window_length).astype(np.float32).astype(
      np.float64)
  norm = np.zeros((n_frames - 1) * hop + window_length)
  # (np.add.at with a broadcast operand is wrong for float32 in numpy 2.4.)
  for f in range(n_frames):
    norm[f * hop:f * hop + window_length] += win**2
  return norm


def _stft_t(x, window_length, hop, n_fft, scaling, window):
  """STFT, time-major: (..., L) -> complex (..., frames, n_fft // 2 + 1)."""
  n_frames = stft_num_frames(x.shape[-1], window_length, hop)
  win = _window_values(window, window_length).astype(np.float32)
  analysis = (win * _scale(win, scaling)).astype(np.float32)
  frames = _frames(x, n_frames, window_length, hop) * analysis
  return jnp.fft.rfft(frames, n=n_fft, axis=-1)


def _istft_t(spec_t, window_length, hop, n_fft, scaling, min_energy, window):
  """Inverse of _stft_t: (..., frames, freq) -> (..., covered length)."""
  win = _window_values(window, window_length).astype(np.float32)
  synthesis = (win / _scale(win, scaling)).astype(np.float32)
  frames = jnp.fft.irfft(spec_t, n=n_fft, axis=-1)[..., :window_length]
  norm = _window_energy(spec_t.shape[-2], window_length, hop, window)
  if min_energy is None:
    # Where the windows' energy vanishes (e.g. the periodic Hann window's
    # zero at sample 0) the signal cannot be recovered; scipy leaves it
    # unnormalised, as here.
    denom = np.where(norm > 1e-10, norm, 1.0)
  else:
    denom = np.maximum(norm, min_energy * norm.max())
  return _overlap_add(frames * synthesis, hop) / denom.astype(np.float32)


@functools.partial(jax.jit,
                   static_argnames=("window_length", "hop", "n_fft", "scaling",
                                    "window"))
def _stft(x, window_length, hop, n_fft, scaling="none", window=WINDOW):
  spec = _stft_t(x, window_length, hop, n_fft, scaling, window)
  return jnp.swapaxes(spec, -1, -2).astype(jnp.complex64)


def stft(x: jax.Array, window_length: int = WINDOW_LENGTH, hop: int = HOP,
         n_fft: int = N_FFT, scaling: str = "none",
         window=WINDOW) -> jax.Array:
  """Complex STFT of real signals.

  Args:
    x: (..., L) real signals.
    window_length, hop, n_fft: frame length, frame step and FFT size.
    scaling: "none" (MATLAB spectrogram, the thesis) or "spectrum" (scipy).
    window: a name in WINDOWS (default MATLAB's symmetric Hamming) or an
      array of `window_length` values.

  Returns:
    complex64 (..., n_fft // 2 + 1, frames), frames = 1 + (L - window) // hop.
    With scaling="spectrum" it equals scipy.signal.stft(x,
    nperseg=window_length, noverlap=window_length - hop, nfft=n_fft,
    boundary=None, padded=False, window=stft_window(window, window_length))[2];
    "none" is that times the window's sum.
  """
  checks.check_min_rank(x, 1, "stft input", "(..., L)")
  _check_real(x, "stft input")
  checks.check_finite(x, "stft input")
  window_length, hop, n_fft, window = _check_params(window_length, hop, n_fft,
                                                    scaling, window)
  x = jnp.asarray(x, jnp.float32)
  return _stft(x, window_length, hop, n_fft, scaling, window)


def _check_real(x, name):
  if np.iscomplexobj(x):
    raise ValueError(f"{name} is complex (dtype {x.dtype}); the STFT takes "
                     "real signals (pass the waveform, not a spectrogram)")


# Griffin-Lim's output floors the window energy at this fraction of its peak
# (see griffin_lim).
GL_MIN_WINDOW_ENERGY = 1e-2


@functools.partial(
    jax.jit,
    static_argnames=("window_length", "hop", "n_fft", "length", "scaling",
                     "min_energy", "window"))
def _istft(spec, window_length, hop, n_fft, length, scaling="none",
           min_energy=None, window=WINDOW):
  signal = _istft_t(jnp.swapaxes(spec, -1, -2), window_length, hop, n_fft,
                    scaling, min_energy, window)
  out_len, lead = signal.shape[-1], signal.shape[:-1]
  if length is not None:
    if length >= out_len:
      signal = jnp.pad(signal, [(0, 0)] * len(lead) + [(0, length - out_len)])
    else:
      signal = signal[..., :length]
  return signal.astype(jnp.float32)


def _check_length(length):
  if length is None:
    return None
  if isinstance(length, (bool, np.bool_)) or not isinstance(
      length, (int, np.integer)) or length < 1:
    raise ValueError(f"length must be a positive integer or None, got "
                     f"{length!r}")
  return int(length)


def istft(spec: jax.Array, window_length: int = WINDOW_LENGTH, hop: int = HOP,
          n_fft: int = N_FFT, length: int | None = None,
          scaling: str = "none", window=WINDOW) -> jax.Array:
  """Inverse STFT by weighted overlap-add (as scipy.signal.istft).

  Args:
    spec: complex (..., n_fft // 2 + 1, frames), made with `scaling` and
      `window`.
    length: if given, the output is zero-padded or cut to this many samples;
      else it has (frames - 1) * hop + window_length samples.

  Returns:
    float32 (..., length).

  Like scipy, each sample is divided by the summed squared windows over it,
  which is smallest at both ends of the signal: for a spectrogram that is not
  the STFT of any signal (a modified one) the first and last few samples can
  blow up. griffin_lim's output floors that energy (see there). For the true
  STFT of a signal the round trip is exact wherever that energy is not 0.
  """
  checks.check_min_rank(spec, 2, "istft input", "(..., freq, frames)")
  checks.check_finite(spec, "istft input")
  window_length, hop, n_fft, window = _check_params(window_length, hop, n_fft,
                                                    scaling, window)
  length = _check_length(length)
  if spec.shape[-2] != n_fft // 2 + 1:
    raise ValueError(f"istft: spectrogram has {spec.shape[-2]} frequency bins,"
                     f" n_fft={n_fft} needs {n_fft // 2 + 1}")
  if spec.shape[-1] < 1:
    raise ValueError(f"istft: spectrogram {spec.shape} has no frames")
  return _istft(jnp.asarray(spec, jnp.complex64), window_length, hop, n_fft,
                length, scaling, window=window)


def spectral_convergence(magnitude, x, window_length: int = WINDOW_LENGTH,
                         hop: int = HOP, n_fft: int = N_FFT,
                         scaling: str = "none", window=WINDOW):
  """|| |STFT(x)| - M ||_F / ||M||_F per signal: (...,)."""
  window_length, hop, n_fft, window = _check_params(window_length, hop, n_fft,
                                                    scaling, window)
  _check_real(x, "spectral_convergence signal")
  checks.check_finite(magnitude, "spectral_convergence magnitude")
  checks.check_finite(x, "spectral_convergence signal")
  est = jnp.abs(_stft(jnp.asarray(x, jnp.float32), window_length, hop, n_fft,
                      scaling, window))
  if est.shape != np.shape(magnitude):
    raise ValueError(f"spectral_convergence: magnitude {np.shape(magnitude)} "
                     f"does not match the STFT of the signal {est.shape}")
  num = jnp.sqrt(jnp.sum((est - magnitude)**2, axis=(-2, -1)))
  den = jnp.sqrt(jnp.sum(magnitude**2, axis=(-2, -1)))
  return num / jnp.maximum(den, 1e-20)


@functools.partial(
    jax.jit,
    static_argnames=("n_iter", "window_length", "hop", "n_fft", "length",
                     "scaling", "window"))
def _griffin_lim(magnitude, key, n_iter, momentum, window_length, hop, n_fft,
                 length, scaling, window):
  phase0 = jnp.exp(2j * jnp.pi * jax.random.uniform(key, magnitude.shape))
  # The loop runs time-major (..., frames, freq), as the FFTs want it.
  magnitude = jnp.swapaxes(magnitude, -1, -2)
  angles0 = jnp.swapaxes(phase0, -1, -2)

  def step(carry, _):
    angles, prev = carry
    signal = _istft_t(magnitude * angles, window_length, hop, n_fft, scaling,
                      None, window)
    rebuilt = _stft_t(signal, window_length, hop, n_fft, scaling, window)
    # Fast Griffin-Lim (Perraudin et al. 2013), as librosa.griffinlim.
    accel = rebuilt - (momentum / (1 + momentum)) * prev
    angles = accel / (jnp.abs(accel) + 1e-16)
    return (angles, rebuilt), None

  (angles, _), _ = jax.lax.scan(step, (angles0, jnp.zeros_like(angles0)),
                                None, length=n_iter)
  return _istft(jnp.swapaxes(magnitude * angles, -1, -2), window_length, hop,
                n_fft, length, scaling, min_energy=GL_MIN_WINDOW_ENERGY,
                window=window)


def griffin_lim(magnitude: jax.Array, key: jax.Array, n_iter: int = 100,
                momentum: float = 0.99, window_length: int = WINDOW_LENGTH,
                hop: int = HOP, n_fft: int = N_FFT,
                length: int | None = None, scaling: str = "none",
                window=WINDOW) -> jax.Array:
  """Recovers a waveform whose STFT magnitude approximates `magnitude`.

  Fast Griffin-Lim (momentum 0.99, librosa's default; 0 gives the classic
  algorithm) from a random phase drawn with `key`.

  The final overlap-add divides by the windows' summed energy floored at
  GL_MIN_WINDOW_ENERGY of its peak. Without boundary padding that energy
  falls towards 0 at both ends (to exactly 0 for the periodic Hann window;
  the first and last ~27 samples are below the floor with it) and an
  inconsistent spectrogram's frames, divided by it as scipy's istft does,
  blow up there to hundreds of times the signal, which ruins any normalised
  measure (max_xcorr against the phone drops from ~0.8 to ~0.07). The floor
  tapers those samples instead; every other sample is the exact
  least-squares overlap-add.

  Args:
    magnitude: (..., n_fft // 2 + 1, frames) real, non-negative.
    key: PRNG key for the initial phase.
    n_iter: iterations.
    length: output length (see istft).
    scaling, window: those `magnitude` was made with (see stft).

  Returns:
    float32 (..., length) waveforms.
  """
  checks.check_min_rank(magnitude, 2, "griffin_lim input", "(..., freq, frames)")
  if np.iscomplexobj(magnitude):
    raise ValueError("griffin_lim takes STFT magnitudes, got a complex array "
                     "(pass its abs)")
  checks.check_finite(magnitude, "griffin_lim input")
  if checks.is_concrete(magnitude):
    low = np.min(np.asarray(magnitude)) if np.size(magnitude) else 0.0
    if low < 0:
      raise ValueError(f"griffin_lim input holds negative magnitudes (min "
                       f"{low:.4g}); clip at 0 or add the mean spectrogram "
                       "back first")
  window_length, hop, n_fft, window = _check_params(window_length, hop, n_fft,
                                                    scaling, window)
  length = _check_length(length)
  if n_iter < 0:
    raise ValueError(f"n_iter must be >= 0, got {n_iter}")
  if magnitude.shape[-2] != n_fft // 2 + 1:
    raise ValueError(f"griffin_lim: {magnitude.shape[-2]} frequency bins, "
                     f"n_fft={n_fft} needs {n_fft // 2 + 1}")
  if magnitude.shape[-1] < 1:
    raise ValueError(f"griffin_lim: magnitude {magnitude.shape} has no frames")
  return _griffin_lim(jnp.asarray(magnitude, jnp.float32), key, int(n_iter),
                      float(momentum), window_length, hop, n_fft, length,
                      scaling, window)
