"""Sonification by a deconvnet (sonification paper Sec. 3.2, Fig. B.2).

  sonify(model, params, x, layer, feature_map=None, *, chunk_size=None)
  sonify_pairs(model, params, x, layer, feature_maps)  -> (N, *example):
                                                        map i of example i
  silent_maps(model, params, x, layer)   -> bool (N, C): zero activation
  map_activity(model, params, x, layer)  -> (N, C) mean |activation|

Written for CNN12's blocks (the paper's case, described first); any network
of the inversion protocol runs through the same code (see "Networks").

One forward pass records every block's output and every pool's switches.
For each feature map m of block `layer` (numbered from 1, as the paper
does): keep map m of the block's output, zero the others, and for
b = layer .. 1 max-unpool with block b's switches (to the recorded pre-pool
length) if b pools, ReLU, and transposed-convolve with block b's own conv
kernel (shared, no bias). The result, of the input's length, is scaled to
unit peak times max|x| of its clip. A map whose deconvnet output is all zero
(always so for a map with zero activation, see `silent_maps`) gives zeros.

The deconvnet starts where the authors' code does (docs/methods.md, B3):
from the pooled ReLU output of blocks that pool (CNN12's 1-8), from the ReLU
output of the others (9-11). `map_activity` ranks maps as that code does:
mean |activation| of the same start point over time.

How it runs: one jitted program per (network, layer, chunk size, shapes);
every (clip, map) pair is an item, items are processed `chunk_size` at a
time inside the program (lax.map over chunks), the items of a chunk being
the batch of every convolution (channels-last, NWC). Memory is thus bounded
by the chunk, not by the number of maps. The feature maps asked for are an
argument of the program, not a constant: a new map reuses the compiled
program.

Exact shortcuts only (no approximation):
- The start is one-hot over maps, so block `layer`'s transposed conv is that
  map's kernel slice alone (k * C_in multiply-adds per sample instead of
  k * C_in * C_out), an elementwise fusion rather than a convolution.
- Max-unpooling with window = stride is a select of the upsampled values at
  the switch positions (no scatter); XLA fuses it with the ReLU into the
  producer of the next convolution's input.

Networks: any model the inversion protocol describes
(recon_jax.models.invertible: a CNN12, a PhoneCNN, a user's DeclaredNet or
InvertibleNet). The deconvnet runs back through conv, ReLU and max-pool
operations in reverse, so `layer` must lie before the first dense layer or
temporal mean. Examples are what the network takes: waveforms (T,) for
CNN12, spectrograms (F, T) (frequency the conv axis) for the phone CNN; the
sonification has the example's shape. The general operations:
- max-unpooling puts each pooled value back at its switch (zeros
  elsewhere), values from overlapping windows that share a switch summed
  (the transpose of the pool's gather), to the recorded pre-pool length
  (padding cropped): strided pads at the switch offsets, no scatter. Pools
  with window = stride and no padding take the select shortcut above.
- the transposed conv of a strided or padded conv is its exact transpose
  (the input dilated by the stride, 'full' correlation with the flipped
  kernel, the padding cropped, zeros for input samples the conv never
  read); stride-1 'VALID' convs keep the fast paths below.
"""
import dataclasses
import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.models import invertible
from recon_jax.ops import pooling

# Working memory one chunk of items may use (bytes) when chunk_size is None:
# 8 items for a 5 s clip at 8 kHz, 4 for 10 s. Speed hardly depends on the
# chunk (4..32 within 5% for CNN12 block 5 on 5 s, benchmarks/RESULTS.md).
DEFAULT_CHUNK_BYTES = 256 * 2**20
MAX_DEFAULT_CHUNK = 32


# pylint: disable-next=invalid-name
def CNN12Deconv(model) -> invertible.InvertibleNet:
  """CNN12's description for the deconvnet (kept for old callers:
  model.invertible() is the same)."""
  return invertible.describe(model)


@dataclasses.dataclass(frozen=True)
class _Layer:
  """The deconvnet's view of a layer: its number, what it is called in
  messages, its width (maps) and its ops (all conv, relu or pool)."""
  number: int
  where: str
  features: int


def _check_layer(net: invertible.InvertibleNet, layer) -> _Layer:
  number = invertible.check_layer(net, layer)
  ops = net.ops_of(number)
  flat = [op for op in ops if op.kind in ("dense", "mean")]
  convs = [op for op in ops if op.kind == "conv"]
  if flat:
    ok = [n for n in range(1, net.num_layers + 1)
          if not any(op.kind in ("dense", "mean") for op in net.ops_of(n))]
    raise ValueError(
        f"{net.unit} {number} ({net.layer_name(number)}) of {net.name} comes "
        f"after a {flat[0].kind} ({flat[0].name}): the deconvnet runs back "
        f"through conv, ReLU and pool layers only ({net.unit}s "
        f"{ok[0] if ok else '-'}..{ok[-1] if ok else '-'})")
  if not convs:
    raise ValueError(f"{net.unit} {number} of {net.name} has no conv below "
                     "it: nothing to deconvolve")
  return _Layer(number, f"{net.unit} {number}", convs[-1].features)


def _example_shape(net, x3):
  """One example's shape, (L,) or (L, C), of a batch (N, L, C)."""
  return tuple(x3.shape[1:2]) if net.waveform else tuple(x3.shape[1:])


def _prepare(model, params, x, layer, name):
  """The checked problem: (net, layer view, params, x (N, L, C) float32,
  whether x was one example)."""
  net = invertible.describe(model)
  spec = _check_layer(net, layer)
  x3, one = invertible.check_input(net, x, name)
  x3 = x3.astype(jnp.float32)
  params = invertible.unwrap_params(params)
  invertible.check_params(net, params, _example_shape(net, x3))
  return net, spec, params, x3, one


def sonify(model, params, x, layer, feature_map=None, *,
           chunk_size: int | None = None) -> jax.Array:
  """Sonifications of feature maps of layer `layer` for inputs x (Fig. B.2).

  Args:
    model: a CNN12, a PhoneCNN, or any model of the inversion protocol
      (recon_jax.models.invertible).
    params: its parameters (the 'params' collection).
    x: one example or a batch: waveforms (T,) / (N, T) for CNN12 (T at
      least its receptive field), spectrograms (F, T) / (N, F, T) for the
      phone CNN; (L, C) / (N, L, C) for a net with channels.
    layer: the network's layer number, from 1 (CNN12: blocks 1..11; phone
      CNN: thesis layers 1..9), before any dense layer.
    feature_map: map number from 1 (an int), a sequence of them, or None for
      every map of the layer.
    chunk_size: (example, map) items deconvolved at a time inside the
      compiled program (bounds memory; the result does not depend on it).
      None picks the largest up to 32 whose working memory stays under
      ~256 MB.

  Returns:
    float32 sonifications, each of an example's shape, scaled to unit peak
    times max|x| of their example (zeros for a map whose deconvnet output
    is all zero): (N, *example) / example for an int feature_map;
    (N, M, *example) / (M, *example) for a sequence of M maps or None.
  """
  net, spec, params, x3, one_clip = _prepare(model, params, x, layer,
                                             "sonify")
  maps, many = _check_maps(feature_map, spec)
  n, t = x3.shape[:2]
  chunk = _check_chunk(chunk_size, net, spec.number, t, n * maps.shape[0])
  s = _sonify_jit(net, spec.number, chunk, params, x3, jnp.asarray(maps))
  if not many:
    s = s[:, 0]
  return s[0] if one_clip else s


def sonify_pairs(model, params, x, layer, feature_maps, *,
                 chunk_size: int | None = None) -> jax.Array:
  """Sonification of one feature map per example, all in one call.

  What the residual test and the page need: clip i's own map (e.g. its
  most active one) without sonifying every map of every clip.

  Args:
    model, params, layer, chunk_size: as `sonify`.
    x: a batch, (N, T) waveforms for CNN12 ((N, L, C) for nets with
      channels).
    feature_maps: (N,) map numbers from 1, feature_maps[i] for example i.

  Returns:
    float32 (N, *example): row i equals sonify(model, params, x[i], layer,
    feature_maps[i]).
  """
  net = invertible.describe(model)
  if np.ndim(x) == net.example_rank:
    want = "waveforms (N, T)" if net.waveform else "examples (N, L, C)"
    raise ValueError(f"sonify_pairs expects {want}, got shape "
                     f"{np.shape(x)}; use sonify for one example")
  net, spec, params, x3, _ = _prepare(net, params, x, layer, "sonify_pairs")
  maps, _ = _check_maps(np.asarray(feature_maps).reshape(-1), spec)
  if np.ndim(feature_maps) != 1 or maps.shape[0] != x3.shape[0]:
    raise ValueError(f"sonify_pairs wants one map per clip: feature_maps of "
                     f"shape ({x3.shape[0]},), got {np.shape(feature_maps)}")
  n, t = x3.shape[:2]
  chunk = _check_chunk(chunk_size, net, spec.number, t, n)
  return _sonify_jit(net, spec.number, chunk, params, x3, jnp.asarray(maps),
                     True)


def silent_maps(model, params, x, layer) -> jax.Array:
  """Which maps of layer `layer` are silent (zero everywhere) per example.

  A silent map's deconvnet start is all zero, so its sonification is zeros.
  Returns bool (N, C) for a batch x, (C,) for one example.
  """
  silent, _ = _layer_stats(model, params, x, layer, "silent_maps")
  return silent


def map_activity(model, params, x, layer) -> jax.Array:
  """Mean |activation| over L of each map of layer `layer` (the authors'
  'most active' ranking; of the deconvnet's start point). (N, C) or (C,)."""
  _, activity = _layer_stats(model, params, x, layer, "map_activity")
  return activity


def _layer_stats(model, params, x, layer, name):
  net, spec, params, x3, one_clip = _prepare(model, params, x, layer, name)
  silent, activity = _stats_jit(net, spec.number, params, x3)
  if one_clip:
    return silent[0], activity[0]
  return silent, activity


@functools.partial(jax.jit, static_argnums=(0, 1))
def _stats_jit(net, layer, params, x):
  start = invertible.trace(net, params, x, layer).output.astype(jnp.float32)
  return jnp.all(start == 0, axis=-2), jnp.mean(jnp.abs(start), axis=-2)


def _check_maps(feature_map, spec: _Layer):
  """feature_map -> (0-based int32 indices (M,), whether to keep a maps
  axis)."""
  width = spec.features
  where = (f"{spec.where} has {width} feature maps, numbered 1..{width}")
  if feature_map is None:
    return np.arange(width, dtype=np.int32), True
  if isinstance(feature_map, jax.core.Tracer):
    raise ValueError("feature_map must be concrete map numbers (known before "
                     "tracing); a new map does not recompile sonify")
  if isinstance(feature_map, (bool, np.bool_)):
    raise ValueError(f"feature_map must be a map number, a sequence of them or "
                     f"None, got {feature_map!r}")
  many = not isinstance(feature_map, numbers.Integral) and np.ndim(
      feature_map) != 0
  maps = np.asarray(feature_map).reshape(-1)
  if not np.issubdtype(maps.dtype, np.integer) or maps.dtype == np.bool_:
    raise ValueError(f"feature_map must be map numbers (integers from 1), got "
                     f"{feature_map!r}")
  if np.ndim(feature_map) > 1:
    raise ValueError(f"feature_map must be an int or a flat sequence, got "
                     f"shape {np.shape(feature_map)}")
  if maps.size == 0:
    raise ValueError(f"feature_map is an empty sequence; {where}")
  bad = maps[(maps < 1) | (maps > width)]
  if bad.size:
    raise ValueError(f"feature map {int(bad[0])} does not exist: {where}")
  return (maps - 1).astype(np.int32), many


def _check_chunk(chunk_size, net, layer, length, items):
  """The static chunk size: the given one (capped at the item count), or
  the default from DEFAULT_CHUNK_BYTES; balanced so padding is minimal."""
  if chunk_size is None:
    per_item = _bytes_per_item(net, layer, length)
    chunk_size = int(max(1, min(MAX_DEFAULT_CHUNK,
                                DEFAULT_CHUNK_BYTES // per_item)))
  elif isinstance(chunk_size, (bool, np.bool_)) or not isinstance(
      chunk_size, numbers.Integral) or chunk_size < 1:
    raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
  chunk = min(int(chunk_size), items)
  return -(-items // -(-items // chunk))  # ceil(items / number of chunks)


def _bytes_per_item(net, layer, length):
  """Float32 working memory of one item: ~3 of the largest activation."""
  largest = 0
  for op in invertible.describe(net).ops_of(layer):
    if op.kind in ("conv", "pool"):
      length = invertible.output_length(op, length)
    if op.kind == "conv":
      largest = max(largest, length * op.features)
  return 3 * 4 * max(largest, 1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 6))
def _sonify_jit(net, layer, chunk, params, x, maps, paired=False):
  """(N, M, *example) sonifications of maps (M,) (0-based) of `layer` for a
  batch x ((N, T) for waveform nets, or (N, L, C)); with `paired`, maps is
  (N,), example i's map, and the result (N, *example)."""
  x = invertible._as_batch(net, x)  # pylint: disable=protected-access
  n, length = x.shape[:2]
  example = _example_shape(net, x)
  m = maps.shape[0]
  trace = invertible.trace(net, params, x, layer)
  ops = net.ops_of(layer)
  top = max(i for i, op in enumerate(ops) if op.kind == "conv")
  kernels = {i: invertible.conv_kernel(net, params, i).astype(jnp.float32)
             for i, op in enumerate(ops) if op.kind == "conv"}
  start = trace.output.astype(jnp.float32)  # (N, L, C)
  # What unpools the pools below the top conv, per example: bool masks
  # (N, L', C) (window = stride, no padding) or window offsets (N, L_out, C).
  unpool_with = {i: _unpool_data(op, trace.switches[i], trace.lengths[i],
                                 trace.pads[i])
                 for i, op in enumerate(ops[:top]) if op.kind == "pool"}
  peak_x = jnp.max(jnp.abs(x), axis=(1, 2))  # (N,)

  items = n if paired else n * m
  num_chunks = -(-items // chunk)
  pad = num_chunks * chunk - items
  if paired:
    clips, which = jnp.arange(n, dtype=jnp.int32), maps
  else:
    clips = jnp.repeat(jnp.arange(n, dtype=jnp.int32), m)
    which = jnp.tile(maps, n)
  clips = jnp.pad(clips, (0, pad)).reshape(num_chunks, chunk)
  which = jnp.pad(which, (0, pad)).reshape(num_chunks, chunk)

  def per_clip(a, c):
    # a (N, ...) gathered at the chunk's clips; a broadcast when N == 1.
    if n == 1:
      return jnp.broadcast_to(a, (c.shape[0],) + a.shape[1:])
    return a[c]

  def run(args):
    c, j = args
    # The start: map j of clip c, alone (the one-hot start's only non-zero
    # channel), (S, L, 1), back through the ops above the top conv.
    h = _take_map(start, c, j, n)[..., None]
    for i in reversed(range(top + 1, len(ops))):
      op = ops[i]
      if op.kind == "pool":
        sw = _take_map(trace.switches[i], c, j, n)[..., None]
        h = _unpool_op(h, op, _unpool_data(op, sw, trace.lengths[i],
                                           trace.pads[i]),
                       trace.lengths[i], trace.pads[i])
      else:
        h = jax.nn.relu(h)
    # The top conv's transposed conv restricted to map j's kernel slice.
    w = jnp.moveaxis(kernels[top][:, :, j], -1, 0)  # (S, k, C_in)
    h = _transposed_conv_one_channel(h, w, ops[top].stride, trace.pads[top],
                                     trace.lengths[top])
    for i in reversed(range(top)):
      op = ops[i]
      if op.kind == "pool":
        h = _unpool_op(h, op, per_clip(unpool_with[i], c), trace.lengths[i],
                       trace.pads[i])
      elif op.kind == "relu":
        h = jax.nn.relu(h)
      else:
        h = _transposed_conv(h, kernels[i], op.stride, trace.pads[i],
                             trace.lengths[i])
    s = h[..., 0] if net.waveform else h  # (S, *example)
    axes = tuple(range(1, s.ndim))
    peak = jnp.max(jnp.abs(s), axis=axes, keepdims=True)
    scale = peak_x[c].reshape((-1,) + (1,) * len(axes))
    safe = jnp.where(peak > 0, peak, 1)
    return jnp.where(peak > 0, s / safe * scale, 0)

  if num_chunks == 1:
    out = run((clips[0], which[0]))[None]
  else:
    out = jax.lax.map(run, (clips, which))
  out = out.reshape((num_chunks * chunk,) + example)[:items]
  return out if paired else out.reshape((n, m) + example)


def _fast_unpool(op, pad):
  """Window = stride without padding: unpool by a select (see above)."""
  return op.window == op.stride and tuple(pad) == (0, 0)


def _unpool_data(op, switches, length, pad):
  """Switches (..., L_out, C) (indices into the padded pre-pool signal) ->
  a bool mask (..., length, C) for the fast unpool, else int32 window
  offsets (..., L_out, C)."""
  if _fast_unpool(op, pad):
    return _switch_mask(switches, op.window, length)
  n_out = switches.shape[-2]
  starts = (jnp.arange(n_out, dtype=switches.dtype) * op.stride)[:, None]
  return (switches - starts).astype(jnp.int32)


def _unpool_op(h, op, data, length, pad):
  """Max-unpools h (S, L_out, C) to (S, length, C) with `data` from
  _unpool_data: each value at its switch, values of overlapping windows
  that share a switch summed, the padding cropped."""
  if _fast_unpool(op, pad):
    return _unpool(h, data)
  lo, hi = pad
  full = pooling._place_at_offsets(  # pylint: disable=protected-access
      h, data, op.window, op.stride, length + lo + hi)
  return full[..., lo:lo + length, :]


def _take_map(a, c, j, n):
  """a (N, L, C) -> (S, L): clip c[i]'s map j[i] for each item i."""
  if n == 1:
    return jnp.take(a[0], j, axis=-1).T
  return a[c, :, j]


def _switch_mask(switches, window, length):
  """Switches (..., L_out, C) (indices into L') -> bool (..., length, C),
  True where a pooled maximum came from (pooling with window = stride)."""
  n_out = switches.shape[-2]
  starts = (jnp.arange(n_out, dtype=switches.dtype) * window)[:, None]
  offset = switches - starts
  mask = jnp.stack([offset == k for k in range(window)], axis=-2)
  mask = mask.reshape(mask.shape[:-3] + (n_out * window,) + mask.shape[-1:])
  tail = length - n_out * window
  widths = [(0, 0)] * (mask.ndim - 2) + [(0, tail), (0, 0)]
  return jnp.pad(mask, widths)


def _unpool(h, mask):
  """Max-unpools h (S, L_out, C) to mask's (S, L', C): each value at its
  switch, zeros elsewhere (window = stride: one switch per window)."""
  window = mask.shape[-2] // h.shape[-2]
  up = jnp.repeat(h, window, axis=-2)
  tail = mask.shape[-2] - up.shape[-2]
  up = jnp.pad(up, [(0, 0)] * (h.ndim - 2) + [(0, tail), (0, 0)])
  return jnp.where(mask, up, 0)


def _transposed_conv(h, kernel, stride=1, pad=(0, 0), length=None):
  """The transpose of the conv with `kernel` (k, C_in, C_out), `stride` and
  padding `pad` = (lo, hi) on inputs of `length`: h (S, L_out, C_out) ->
  (S, length, C_in) (length None: L_out + k - 1, the stride-1 'VALID'
  case)."""
  if stride != 1 or tuple(pad) != (0, 0):
    k = kernel.shape[0]
    rhs = jnp.swapaxes(kernel[::-1], 1, 2)  # (k, C_out, C_in): WIO
    full = jax.lax.conv_general_dilated(
        h, rhs, window_strides=(1,), padding=[(k - 1, k - 1)],
        lhs_dilation=(stride,), dimension_numbers=("NWC", "WIO", "NWC"),
        precision=jax.lax.Precision.HIGHEST)
    return _crop(full, pad, length)
  return _transposed_conv_valid(h, kernel)


def _crop(full, pad, length):
  """The transpose's 'full' output (S, (L_out - 1) * stride + k, C) -> the
  conv's input (S, length, C): the padding cut off, zeros appended for the
  input samples the last window did not reach."""
  lo, hi = pad
  extra = length + lo + hi - full.shape[-2]
  return jax.lax.pad(full, jnp.zeros((), full.dtype),
                     [(0, 0, 0), (-lo, extra - hi, 0), (0, 0, 0)])


def _transposed_conv_valid(h, kernel):
  """The transpose of the VALID conv with `kernel` (k, C_in, C_out):
  h (S, L, C_out) -> (S, L + k - 1, C_in). Correlation with the flipped
  kernel, 'full' padding, in/out channels swapped. With one input channel
  (a waveform) a matmul to the k taps and a shifted sum instead: XLA:CPU's
  convolution with a single output feature is memory-bound and ~1.2x
  slower (benchmarks/RESULTS.md, sonify section)."""
  k = kernel.shape[0]
  if kernel.shape[1] == 1:
    taps = jnp.einsum("slc,kc->slk", h, kernel[:, 0, :],
                      precision=jax.lax.Precision.HIGHEST)
    out = 0
    for j in range(k):
      out = out + jnp.pad(taps[..., j], ((0, 0), (j, k - 1 - j)))
    return out[..., None]
  rhs = jnp.swapaxes(kernel[::-1], 1, 2)  # (k, C_out, C_in): WIO
  return jax.lax.conv_general_dilated(
      h, rhs, window_strides=(1,), padding=[(k - 1, k - 1)],
      dimension_numbers=("NWC", "WIO", "NWC"),
      precision=jax.lax.Precision.HIGHEST)


def _transposed_conv_one_channel(h, w, stride=1, pad=(0, 0), length=None):
  """Per-item transposed conv of one channel: h (S, L_out, 1), w (S, k,
  C_in) -> (S, length, C_in) for a conv of `stride` and padding `pad` on
  inputs of `length` (None: L_out + k - 1, stride 1 and 'VALID')."""
  if stride != 1 or tuple(pad) != (0, 0):
    if stride > 1:
      h = jax.lax.pad(h, jnp.zeros((), h.dtype),
                      [(0, 0, 0), (0, 0, stride - 1), (0, 0, 0)])
    return _crop(_transposed_conv_one_channel_valid(h, w), pad, length)
  return _transposed_conv_one_channel_valid(h, w)


def _transposed_conv_one_channel_valid(h, w):
  """Per-item transposed conv of one channel: h (S, L, 1), w (S, k, C_in)
  -> (S, L + k - 1, C_in), out[t] = sum_j h[t - j] * w[j]."""
  k = w.shape[1]
  out = 0
  for j in range(k):
    hj = jnp.pad(h, ((0, 0), (j, k - 1 - j), (0, 0)))
    out = out + hj * w[:, j][:, None, :]
  return out
