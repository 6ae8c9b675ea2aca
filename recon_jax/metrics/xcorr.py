"""Maximum normalised cross-correlation (the thesis's mxcorr / mxcorr2)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.ops import checks


@functools.partial(jax.jit, static_argnames=("n_fft",))
def _max_xcorr_flat(a, b, n_fft):
  """a (B, La), b (B, Lb) -> (B,) max over lags of the normalised xcorr."""
  fa = jnp.fft.rfft(a, n=n_fft, axis=-1)
  fb = jnp.fft.rfft(b, n=n_fft, axis=-1)
  # Circular correlation with n_fft >= La + Lb - 1 holds every linear lag.
  corr = jnp.fft.irfft(jnp.conj(fa) * fb, n=n_fft, axis=-1)
  norm = jnp.sqrt(jnp.sum(a * a, -1) * jnp.sum(b * b, -1))
  peak = jnp.max(corr, axis=-1)
  return jnp.where(norm > 0, peak / jnp.where(norm > 0, norm, 1.0), 0.0)


def _flatten(x, batch_ndim, order):
  """(*batch, ...) -> (prod(batch), -1), each example flattened in `order`."""
  x = jnp.asarray(x, jnp.float32)
  if order == "F":  # Fortran order = C order of the reversed example axes.
    x = jnp.transpose(x, tuple(range(batch_ndim)) +
                      tuple(range(x.ndim - 1, batch_ndim - 1, -1)))
  return jnp.reshape(x, (int(np.prod(x.shape[:batch_ndim])), -1))


def max_xcorr(a: jax.Array, b: jax.Array, batch_ndim: int = 0,
              order: str = "C") -> jax.Array:
  """Maximum over all lags of the normalised cross-correlation of a and b.

  Both inputs are flattened (after their first `batch_ndim` axes) and
  correlated at every lag of the full linear correlation, normalised as
  MATLAB's xcorr(a, b, 'coeff') (no mean removal): a signal with itself
  peaks at 1 at lag 0. Invariant to positive scaling of either input and to
  shifting a zero-padded signal. An all-zero input gives 0 (no similarity).

  Args:
    a, b: (*batch, ...) arrays; the flattened sizes may differ.
    batch_ndim: leading axes that index separate pairs.
    order: how each example is flattened: "C" (last axis fastest, NumPy's
      ravel) or "F" (first axis fastest, MATLAB's X(:)). For more than one
      axis per example, a lag shifts along a different axis in each.

  Returns:
    float32 array of shape `batch`.
  """
  if order not in ("C", "F"):
    raise ValueError(f"max_xcorr: order must be 'C' or 'F', got {order!r}")
  shape_a, shape_b = np.shape(a), np.shape(b)
  if batch_ndim < 0 or batch_ndim > min(len(shape_a), len(shape_b)):
    raise ValueError(f"max_xcorr: batch_ndim={batch_ndim} does not fit shapes "
                     f"{shape_a} and {shape_b}")
  batch = shape_a[:batch_ndim]
  if batch != shape_b[:batch_ndim]:
    raise ValueError(f"max_xcorr: batch shapes differ: {batch} vs "
                     f"{shape_b[:batch_ndim]}")
  if 0 in batch:
    raise ValueError(f"max_xcorr: empty batch (shapes {shape_a} and "
                     f"{shape_b}); nothing to compare")
  if not np.prod(shape_a[batch_ndim:]) or not np.prod(shape_b[batch_ndim:]):
    raise ValueError(f"max_xcorr: inputs must not be empty (shapes {shape_a} "
                     f"and {shape_b})")
  checks.check_finite(a, "max_xcorr first input")
  checks.check_finite(b, "max_xcorr second input")
  a = _flatten(a, batch_ndim, order)
  b = _flatten(b, batch_ndim, order)
  n_fft = 1 << int(np.ceil(np.log2(a.shape[-1] + b.shape[-1] - 1)))
  return _max_xcorr_flat(a, b, n_fft).reshape(batch)
