"""Mean top-k magnitude-squared coherence of an input and its sonification.

The sonification paper's Eq. 3 (Sec. 4.2.1, Fig. 7): for a clip x and the
sonification s of a feature map, the magnitude-squared coherence
  C_xs(f) = |P_xs(f)|^2 / (P_xx(f) P_ss(f))
(Welch estimates, as scipy.signal.coherence), and the mean of its k = 5
largest values; Fig. 7 averages that over a data set, per layer.

- `mean_topk_coherence(x, s, fs, k=5)`: one pair, through
  scipy.signal.coherence itself, with its defaults (checked in scipy 1.17's
  source): window 'hann' (periodic; scipy >= 1.17 names it 'hann_periodic',
  the same window), nperseg 256, noverlap nperseg // 2, nfft nperseg,
  detrend 'constant' (each segment's mean removed), one-sided spectra,
  segments averaged by their mean, no boundary extension or padding.
- `mean_topk_coherence_batch(x, s, fs, k=5)`: the same measure for a whole
  data set, (N, T) and (N, T) -> (N,), in JAX (jit, vmap over clips).
- `mean_top_peaks_coherence(x, s, fs, k=5)`: the authors' notebook
  (paper1517/sonifications-paper1517, nbs_2/Coherence Test-*.ipynb;
  docs/methods.md, B4): nperseg 160, noverlap 80 (20 and 10 ms at 8 kHz), nfft
  512, and the mean of the k highest *peaks* of C_xs (scipy.signal.find_peaks,
  distance=2), not of the k largest values: one value per local maximum,
  so a broad coherent band counts once.

Checks (ValueError naming the problem): x and s of different lengths,
signals shorter than nperseg (scipy would silently shorten nperseg),
NaN/Inf, k outside 1..number of frequencies, bad Welch settings.

Silent signals. Coherence is undefined (0/0) at a frequency where x or s
has no power; a silent signal (all zeros, or constant within every segment,
so nothing is left after detrending) has none anywhere. The deconvnet gives
exactly zeros for a silent feature map (docs/methods.md, B3), so this does
happen. Here frequencies where coherence is undefined are left out of the
ranking (scipy gives NaN there), and a pair is *undefined* when fewer than k
frequencies remain (always the case for a silent x or s); for the notebook
variant, when any frequency is undefined or C_xs has fewer than k peaks (the
notebook skips such a clip). An undefined pair raises `UndefinedCoherenceError`
(a ValueError) by default; with `on_undefined='nan'` it gives NaN instead, so
a data-set loop can mark silent maps: NaN never means anything else, since
NaN inputs are refused. Average with np.nanmean and report the count of
NaN (silent) clips beside it. "No power" means exactly zero: a nearly
silent signal gives a (numerically noisy) coherence.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from recon_jax.ops import checks

NPERSEG = 256  # scipy.signal.coherence's default
NOTEBOOK_NPERSEG = 160
NOTEBOOK_NOVERLAP = 80
NOTEBOOK_NFFT = 512
NOTEBOOK_PEAK_DISTANCE = 2
ON_UNDEFINED = ("raise", "nan")
DETRENDS = ("constant", False)


class UndefinedCoherenceError(ValueError):
  """The coherence of a pair is undefined (a silent signal, see module)."""


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(
      v, (bool, np.bool_))


def _welch_settings(nperseg, noverlap, nfft, detrend, on_undefined,
                    detrends=None):
  """Checked (nperseg, noverlap, nfft) with scipy's defaults filled in."""
  if not (_is_int(nperseg) and nperseg >= 1):
    raise ValueError(f"nperseg must be an integer >= 1, got {nperseg!r}")
  noverlap = nperseg // 2 if noverlap is None else noverlap
  nfft = nperseg if nfft is None else nfft
  if not (_is_int(noverlap) and 0 <= noverlap < nperseg):
    raise ValueError(f"noverlap must be an integer in [0, nperseg={nperseg}), "
                     f"got {noverlap!r}")
  if not (_is_int(nfft) and nfft >= nperseg):
    raise ValueError(f"nfft must be an integer >= nperseg={nperseg}, got "
                     f"{nfft!r}")
  if detrends is not None and not any(
      detrend is d or detrend == d for d in detrends):
    raise ValueError(f"detrend must be one of {detrends}, got {detrend!r}")
  if on_undefined not in ON_UNDEFINED:
    raise ValueError(f"on_undefined must be one of {ON_UNDEFINED}, got "
                     f"{on_undefined!r}")
  return int(nperseg), int(noverlap), int(nfft)


def _check_fs(fs):
  if isinstance(fs, (bool, np.bool_)) or not np.isscalar(fs) or not (
      np.isfinite(fs) and fs > 0):
    raise ValueError(f"fs must be a sampling rate > 0, got {fs!r}")


def _check_k(k, nfft):
  num_freqs = nfft // 2 + 1
  if not (_is_int(k) and 1 <= k <= num_freqs):
    raise ValueError(f"k={k!r} is out of range: want an integer in 1.."
                     f"{num_freqs} (the {num_freqs} one-sided frequencies of "
                     f"nfft={nfft})")
  return int(k)


def _check_pair(x, s, nperseg, ndim):
  """Float64 host copies of x and s; shape, length and value checks."""
  layout = "(T,)" if ndim == 1 else "(N, T)"
  out = []
  for name, v in (("x", x), ("s", s)):
    if np.ndim(v) != ndim:
      raise ValueError(f"{name} must be {layout}, got shape {np.shape(v)}")
    a = np.asarray(v)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(
        a.dtype, np.integer)):
      raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    checks.check_finite(a, f"coherence input {name}")
    out.append(a)
  x, s = out
  if x.shape != s.shape:
    raise ValueError(f"x and s have different shapes {x.shape} and {s.shape}:"
                     " coherence compares a clip with its sonification, which "
                     "has the clip's length")
  if x.shape[-1] < nperseg:
    raise ValueError(f"signals of {x.shape[-1]} samples are too short for "
                     f"nperseg={nperseg} (one Welch segment); pass a smaller "
                     "nperseg")
  return x, s


def _undefined(message, on_undefined):
  if on_undefined == "raise":
    raise UndefinedCoherenceError(
        message + "; pass on_undefined='nan' to get NaN for such pairs and "
        "mark them (e.g. silent feature maps)")
  return float("nan")


def _silence(x, s, fs, nperseg, noverlap, nfft, window, detrend,
             otherwise="x and s have power in common at too few "
             "frequencies"):
  """Which of x, s has no power at any frequency (for messages)."""
  silent = []
  for name, v in (("x", x), ("s", s)):
    _, p = scipy.signal.welch(v, fs, window=window, nperseg=nperseg,
                              noverlap=noverlap, nfft=nfft, detrend=detrend)
    if not np.any(p > 0):
      silent.append(name)
  if not silent:
    return otherwise
  return (" and ".join(silent) + (" is" if len(silent) == 1 else " are") +
          " silent (no power at any frequency once detrended)")


def coherence(x, s, fs, *, window="hann", nperseg=NPERSEG, noverlap=None,
              nfft=None, detrend="constant"):
  """(freqs, C_xs) of scipy.signal.coherence, with this module's checks.

  x, s: (T,) real signals of one length >= nperseg. C_xs is NaN where x or s
  has no power (as scipy gives it). Float64.
  """
  nperseg, noverlap, nfft = _welch_settings(nperseg, noverlap, nfft, detrend,
                                            "nan")
  _check_fs(fs)
  x, s = _check_pair(x, s, nperseg, ndim=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return scipy.signal.coherence(
        x.astype(np.float64), s.astype(np.float64), fs, window=window,
        nperseg=nperseg, noverlap=noverlap, nfft=nfft, detrend=detrend)


def mean_topk_coherence(x, s, fs, k: int = 5, *, window="hann",
                        nperseg: int = NPERSEG, noverlap: int | None = None,
                        nfft: int | None = None, detrend="constant",
                        on_undefined: str = "raise") -> float:
  """Mean of the k largest values of C_xs(f) (paper Eq. 3, one pair).

  Args:
    x: (T,) the input clip.
    s: (T,) its sonification (same length).
    fs: sampling rate in Hz (labels the frequencies; the values do not
      depend on it).
    k: how many of the largest values to average (5 in the paper).
    window, nperseg, noverlap, nfft, detrend: scipy.signal.coherence's
      Welch settings, its defaults (see the module docstring).
    on_undefined: 'raise' (UndefinedCoherenceError) or 'nan' for a pair whose
      coherence is defined at fewer than k frequencies (a silent x or s).

  Returns:
    A float in [0, 1] (up to rounding), or NaN (on_undefined='nan').
  """
  nperseg, noverlap, nfft = _welch_settings(nperseg, noverlap, nfft, detrend,
                                            on_undefined)
  k = _check_k(k, nfft)
  _, c = coherence(x, s, fs, window=window, nperseg=nperseg,
                   noverlap=noverlap, nfft=nfft, detrend=detrend)
  defined = c[~np.isnan(c)]
  if defined.size < k:
    why = _silence(x, s, fs, nperseg, noverlap, nfft, window, detrend)
    return _undefined(f"coherence is undefined: {why} (defined at "
                      f"{defined.size} of {c.size} frequencies, k={k})",
                      on_undefined)
  return float(np.mean(np.sort(defined)[-k:]))


def mean_top_peaks_coherence(x, s, fs, k: int = 5, *,
                             nperseg: int = NOTEBOOK_NPERSEG,
                             noverlap: int = NOTEBOOK_NOVERLAP,
                             nfft: int = NOTEBOOK_NFFT,
                             distance: int = NOTEBOOK_PEAK_DISTANCE,
                             window="hann", detrend="constant",
                             on_undefined: str = "raise") -> float:
  """The authors' notebook measure: mean of the k highest peaks of C_xs.

  Peaks are scipy.signal.find_peaks(C_xs, distance=distance) (local maxima
  at least `distance` bins apart); their heights, highest first, the k
  first averaged. The notebook (get_top_k_peaks, get_spectral_coherence)
  used nperseg=int(0.02 sr), noverlap=int(0.01 sr), nfft=512, i.e. 160/80
  at 8 kHz, the defaults here. It then averaged these over the top-5 inputs
  of each feature map and over the maps of a layer (Fig. 7): the caller's
  part.

  Args: as mean_topk_coherence, plus distance (find_peaks' minimal distance
    between peaks, in bins).

  Returns:
    A float, or NaN (on_undefined='nan') where the notebook would skip the
    clip: C_xs has fewer than k peaks, or is undefined (NaN) at any
    frequency (a silent x or s).
  """
  nperseg, noverlap, nfft = _welch_settings(nperseg, noverlap, nfft, detrend,
                                            on_undefined)
  if not (_is_int(distance) and distance >= 1):
    raise ValueError(f"distance must be an integer >= 1, got {distance!r}")
  k = _check_k(k, nfft)
  _, c = coherence(x, s, fs, window=window, nperseg=nperseg,
                   noverlap=noverlap, nfft=nfft, detrend=detrend)
  if np.isnan(c).any():
    why = _silence(x, s, fs, nperseg, noverlap, nfft, window, detrend,
                   "x or s has no power there")
    return _undefined(f"coherence is undefined at {int(np.isnan(c).sum())} "
                      f"of {c.size} frequencies: {why}", on_undefined)
  peaks, _ = scipy.signal.find_peaks(c, distance=distance)
  if peaks.size < k:
    return _undefined(f"C_xs has {peaks.size} peaks (distance={distance}), "
                      f"fewer than k={k}", on_undefined)
  return float(np.mean(np.sort(c[peaks])[-k:]))


def _pair_topk(x, s, window, *, nperseg, noverlap, nfft, k, detrend):
  """Mean top-k coherence of one pair (T,), NaN when undefined."""
  step = nperseg - noverlap
  num_segments = (x.shape[-1] - noverlap) // step
  index = (jnp.arange(num_segments)[:, None] * step +
           jnp.arange(nperseg)[None, :])

  def spectra(v):
    frames = v[index]
    if detrend == "constant":
      frames = frames - jnp.mean(frames, axis=-1, keepdims=True)
    return jnp.fft.rfft(frames * window, n=nfft, axis=-1)

  fx, fs_ = spectra(x), spectra(s)
  # Welch's scale, the one-sided doubling and the 1/segments of the mean
  # cancel in the ratio.
  pxx = jnp.sum(jnp.abs(fx)**2, axis=0)
  pss = jnp.sum(jnp.abs(fs_)**2, axis=0)
  pxs = jnp.sum(jnp.conj(fx) * fs_, axis=0)
  defined = (pxx > 0) & (pss > 0)
  c = jnp.abs(pxs)**2 / jnp.where(defined, pxx * pss, 1.0)
  top, _ = jax.lax.top_k(jnp.where(defined, c, -jnp.inf), k)
  ok = jnp.sum(defined) >= k
  return jnp.where(ok, jnp.mean(jnp.where(ok, top, 0.0)), jnp.nan)


@functools.partial(jax.jit, static_argnames=("nperseg", "noverlap", "nfft",
                                             "k", "detrend"))
def _batch_topk(x, s, window, *, nperseg, noverlap, nfft, k, detrend):
  return jax.vmap(functools.partial(
      _pair_topk, nperseg=nperseg, noverlap=noverlap, nfft=nfft, k=k,
      detrend=detrend), in_axes=(0, 0, None))(x, s, window)


def mean_topk_coherence_batch(x, s, fs, k: int = 5, *, window="hann",
                              nperseg: int = NPERSEG,
                              noverlap: int | None = None,
                              nfft: int | None = None, detrend="constant",
                              on_undefined: str = "raise",
                              batch_size: int = 64) -> np.ndarray:
  """mean_topk_coherence of every row pair: (N, T), (N, T) -> (N,).

  The Welch estimates in JAX (jit, vmap over clips), in float32 (float64
  when jax_enable_x64 is on and the inputs are float64); equal to the
  scipy version up to float32 rounding. Clips go through in chunks of
  `batch_size` (the last one padded), so memory stays bounded and one shape
  compiles. detrend: 'constant' or False (scipy's others are not
  implemented). fs: checked, does not change the values. Undefined pairs
  (a silent x or s): UndefinedCoherenceError naming the clips, or NaN with
  on_undefined='nan'.

  Returns:
    float (N,) NumPy array.
  """
  nperseg, noverlap, nfft = _welch_settings(
      nperseg, noverlap, nfft, detrend, on_undefined, detrends=DETRENDS)
  _check_fs(fs)
  x, s = _check_pair(x, s, nperseg, ndim=2)
  k = _check_k(k, nfft)
  if not (_is_int(batch_size) and batch_size >= 1):
    raise ValueError(f"batch_size must be an integer >= 1, got "
                     f"{batch_size!r}")
  wide = np.result_type(np.float32, x.dtype, s.dtype) == np.float64
  dtype = np.float64 if wide and jax.config.jax_enable_x64 else np.float32
  win = jnp.asarray(scipy.signal.get_window(window, nperseg).astype(dtype))
  n = x.shape[0]
  chunk = min(int(batch_size), max(n, 1))
  out = np.zeros(n, np.float64)
  for start in range(0, n, chunk):
    xb = np.zeros((chunk, x.shape[1]), dtype)
    sb = np.zeros((chunk, x.shape[1]), dtype)
    m = min(chunk, n - start)
    xb[:m], sb[:m] = x[start:start + m], s[start:start + m]
    out[start:start + m] = np.asarray(_batch_topk(
        xb, sb, win, nperseg=nperseg, noverlap=noverlap, nfft=nfft, k=k,
        detrend="constant" if detrend == "constant" else "none"))[:m]
  bad = np.flatnonzero(np.isnan(out))
  if bad.size and on_undefined == "raise":
    _undefined(f"coherence is undefined for {bad.size} of {n} clips (x or s "
               f"silent, or with power at fewer than k={k} common "
               f"frequencies): clips {bad[:10].tolist()}"
               f"{' ...' if bad.size > 10 else ''}", on_undefined)
  return out
