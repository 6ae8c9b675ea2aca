"""Max-pooling with switches, switch unpooling and blind unpooling along L.

All functions pool along axis -2 of channels-last arrays (..., L, C): a batch
of 1-D signals (N, L, C), or a single one (L, C). Pooling is in floor mode
(no padding): L_out = (L - window) // stride + 1.

Ties: when several positions of a window hold the maximum, the FIRST (lowest
index) wins, both for the switch and for the gradient. This matches
`flax.linen.max_pool`, whose gradient (XLA select_and_scatter with `>=`) also
routes to the first maximum.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.ops import checks


def pooled_length(length: int, window: int, stride: int) -> int:
  """Output length of floor-mode pooling of `length` samples."""
  if window < 1 or stride < 1:
    raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
  if window > length:
    raise ValueError(f"pooling window {window} is longer than the signal "
                     f"({length} samples)")
  return (length - window) // stride + 1


def _window_slices(x, window: int, stride: int, n_out: int):
  """The k-th element of every window, for k < window: list of (..., n_out, C)."""
  return [
      jax.lax.slice_in_dim(x, k, k + (n_out - 1) * stride + 1, stride, axis=-2)
      for k in range(window)
  ]


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _place_at_offsets(values, offsets, window: int, stride: int, length: int):
  """Scatter-adds values[..., i, :] to position i*stride + offsets[..., i, :].

  The structured scatter behind unpooling: every switch lies in its own
  window, so the scatter is `window` strided pads, with no general scatter.
  `offsets` None means every offset (blind unpooling: sum over the window).
  """
  n_out = values.shape[-2]
  out = jnp.zeros(values.shape[:-2] + (length,) + values.shape[-1:],
                  values.dtype)
  pad_cfg = [(0, 0, 0)] * values.ndim
  for k in range(window):
    v = values if offsets is None else jnp.where(offsets == k, values, 0)
    high = length - (k + (n_out - 1) * stride + 1)
    pad_cfg[-2] = (k, high, stride - 1)
    out = out + jax.lax.pad(v, jnp.zeros((), values.dtype), pad_cfg)
  return out


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _max_pool(x, window, stride):
  """(..., L, C) -> maxima and their offsets in the window, (..., L_out, C)."""
  n_out = pooled_length(x.shape[-2], window, stride)
  slices = _window_slices(x, window, stride, n_out)
  best, offset = slices[0], jnp.zeros(slices[0].shape, jnp.int32)
  for k in range(1, window):
    wins = slices[k] > best  # strict: the first maximum keeps the switch
    best = jnp.where(wins, slices[k], best)
    offset = jnp.where(wins, jnp.int32(k), offset)
  return best, offset


@_max_pool.defjvp
def _max_pool_jvp(window, stride, primals, tangents):
  # The tangent is x's tangent gathered at the switches: linear, so JAX
  # transposes it for reverse mode into `window` strided pads (no
  # select_and_scatter), and forward mode (jvp, jacfwd, Hessians) works too.
  (x,), (t_x,) = primals, tangents
  best, offset = _max_pool(x, window, stride)
  t_slices = _window_slices(t_x, window, stride, best.shape[-2])
  t_best = t_slices[0]
  for k in range(1, window):
    t_best = jnp.where(offset == k, t_slices[k], t_best)
  t_offset = np.zeros(offset.shape, jax.dtypes.float0)
  return (best, offset), (t_best, t_offset)


def max_pool_with_argmax(x: jax.Array, window: int, stride: int):
  """Max-pools along L and records where each maximum came from.

  Args:
    x: (..., L, C) float array.
    window: pooling window (samples).
    stride: step between windows.

  Returns:
    (y, switches): y (..., L_out, C) the window maxima; switches int32 of the
    same shape, the index into L of each maximum (first one on ties).
    Differentiable in x (the gradient goes to the switch position).
  """
  checks.check_min_rank(x, 2, "max_pool_with_argmax input", "(..., L, C)")
  checks.check_finite(x, "max_pool_with_argmax input")
  return _max_pool_with_argmax(jnp.asarray(x), int(window), int(stride))


# Jitted so that eager calls run one compiled program, not op by op.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _max_pool_with_argmax(x, window, stride):
  y, offset = _max_pool(x, window, stride)
  n_out = y.shape[-2]
  starts = (jnp.arange(n_out, dtype=jnp.int32) * stride)[:, None]
  return y, jax.lax.stop_gradient(offset + starts)


def max_pool_switch_offsets(x: jax.Array, window: int, stride: int):
  """Like max_pool_with_argmax but the switches are offsets in [0, window).

  A compact form for code that unpools what it pooled (a deconvnet):
  `unpool_at_offsets` puts the values back with strided pads instead of a
  general scatter (about 2.5x `max_unpool` at CNN12 size, see
  benchmarks/RESULTS.md).
  """
  checks.check_min_rank(x, 2, "max_pool_switch_offsets input", "(..., L, C)")
  checks.check_finite(x, "max_pool_switch_offsets input")
  y, offset = _max_pool(jnp.asarray(x), int(window), int(stride))
  return y, jax.lax.stop_gradient(offset)


def unpool_at_offsets(y, offsets, window: int, stride: int, length: int):
  """max_unpool for switches given as window offsets (see above).

  Args: y, offsets (..., L_out, C), offsets int in [0, window); returns
  (..., length, C).
  """
  checks.check_min_rank(y, 2, "unpool_at_offsets input", "(..., L_out, C)")
  if np.shape(y) != np.shape(offsets):
    raise ValueError(f"unpool_at_offsets: values {np.shape(y)} and offsets "
                     f"{np.shape(offsets)} must have the same shape")
  checks.check_finite(y, "unpool_at_offsets input")
  window, stride, length = _check_window_stride(window, stride, length)
  offset_dtype = getattr(offsets, "dtype", None) or np.asarray(offsets).dtype
  if not np.issubdtype(offset_dtype, np.integer):
    raise ValueError("unpool_at_offsets: offsets must be integers in "
                     f"[0, window), got dtype {offset_dtype}")
  if checks.is_concrete(offsets):
    off = np.asarray(offsets)
    if off.size and (off.min() < 0 or off.max() >= window):
      raise ValueError(f"unpool_at_offsets: offsets span [{off.min()}, "
                       f"{off.max()}], outside the window [0, {window})")
  _check_unpool_length(np.shape(y)[-2], window, stride, length)
  return _place_at_offsets(jnp.asarray(y), jnp.asarray(offsets), window,
                           stride, length)


def _check_window_stride(window, stride, length):
  """window, stride, length as ints; each must be an integer >= 1."""
  for name, value in (("window", window), ("stride", stride),
                      ("length", length)):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer)) or value < 1:
      raise ValueError(f"unpooling {name} must be an integer >= 1, got "
                       f"{value!r}")
  return int(window), int(stride), int(length)


def _check_unpool_length(n_out, window, stride, length):
  if length < (n_out - 1) * stride + window:
    raise ValueError(
        f"unpooling {n_out} windows (window {window}, stride {stride}) needs "
        f"length >= {(n_out - 1) * stride + window}, got {length}")


def max_unpool(y: jax.Array, switches: jax.Array, length: int) -> jax.Array:
  """Puts each pooled value back at its switch; zeros elsewhere.

  The exact transpose (adjoint) of gathering x at the switches: where two
  windows recorded the same switch (overlapping windows), their values add.

  Args:
    y: (..., L_out, C) pooled values.
    switches: int (..., L_out, C), indices into L (from max_pool_with_argmax).
    length: L of the result.

  Returns:
    (..., length, C).
  """
  checks.check_min_rank(y, 2, "max_unpool input", "(..., L_out, C)")
  if np.shape(y) != np.shape(switches):
    raise ValueError(f"max_unpool: values {np.shape(y)} and switches "
                     f"{np.shape(switches)} must have the same shape")
  checks.check_finite(y, "max_unpool input")
  if isinstance(length, (bool, np.bool_)) or not isinstance(
      length, (int, np.integer)) or length < 1:
    raise ValueError(f"max_unpool length must be an integer >= 1, got "
                     f"{length!r}")
  switch_dtype = getattr(switches, "dtype", None) or np.asarray(switches).dtype
  if not np.issubdtype(switch_dtype, np.integer):
    raise ValueError("max_unpool: switches must be integer indices into L, "
                     f"got dtype {switch_dtype}")
  if checks.is_concrete(switches):
    sw = np.asarray(switches)
    if sw.size and (sw.min() < 0 or sw.max() >= length):
      raise ValueError(f"max_unpool: switches span [{sw.min()}, {sw.max()}], "
                       f"outside [0, {length}) for length {length}")
  return _max_unpool(jnp.asarray(y), jnp.asarray(switches, jnp.int32),
                     int(length))


@functools.partial(jax.jit, static_argnums=2)
def _max_unpool(y, switches, length):
  lead = y.shape[:-2]
  n_out, c = y.shape[-2:]
  sw = switches.reshape((-1, n_out, c))
  size = sw.shape[0] * length * c
  # One flat index per value: XLA:CPU scatters ~2x faster than with three
  # index arrays. Under jit (no eager range check) a switch outside
  # [0, length) is dropped rather than spilling into a neighbouring row.
  flat = ((jnp.arange(sw.shape[0])[:, None, None] * length + sw) * c +
          jnp.arange(c))
  flat = jnp.where((sw >= 0) & (sw < length), flat, size)
  out = jnp.zeros((size,), y.dtype).at[flat.ravel()].add(y.ravel(),
                                                          mode="drop")
  return out.reshape(lead + (length, c))


def blind_unpool(y: jax.Array, window: int, stride: int,
                 length: int) -> jax.Array:
  """Copies each pooled value to every position of its window.

  Where windows overlap, a position gets the mean of the values landing on
  it. Positions that no window covers (the tail floor-mode pooling dropped,
  gaps when stride > window) get 0. Uses no switches, so it carries no information about the input.

  Args:
    y: (..., L_out, C) pooled values.
    window, stride: the pooling that produced y.
    length: L of the result, >= (L_out - 1) * stride + window.

  Returns:
    (..., length, C).
  """
  checks.check_min_rank(y, 2, "blind_unpool input", "(..., L_out, C)")
  checks.check_finite(y, "blind_unpool input")
  window, stride, length = _check_window_stride(window, stride, length)
  y = jnp.asarray(y)
  _check_unpool_length(y.shape[-2], window, stride, length)
  return _blind_unpool(y, window, stride, length)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _blind_unpool(y, window, stride, length):
  n_out = y.shape[-2]
  count = np.zeros((length, 1), np.float32)
  for i in range(n_out):
    count[i * stride:i * stride + window] += 1
  total = _place_at_offsets(y, None, window, stride, length)
  return total / np.maximum(count, 1).astype(y.dtype)
