"""Sonification by a deconvnet (sonification paper Sec. 3.2, Fig. B.2).

  sonify(model, params, x, layer, feature_map=None, *, chunk_size=None)
  sonify_pairs(model, params, x, layer, feature_maps)  -> (N, T): map i of
                                                        clip i
  silent_maps(model, params, x, layer)   -> bool (N, C): zero activation
  map_activity(model, params, x, layer)  -> (N, C) mean |activation|

One forward pass records every block's output and every pool's switches.
For each feature map m of block `layer` (numbered from 1, as the paper
does): keep map m of the block's output, zero the others, and for
b = layer .. 1 max-unpool with block b's switches (to the recorded pre-pool
length) if b pools, ReLU, and transposed-convolve with block b's own conv
kernel (shared, no bias). The result, of the input's length, is scaled to
unit peak times max|x| of its clip. A map whose deconvnet output is all zero
(always so for a map with zero activation, see `silent_maps`) gives zeros.

The deconvnet starts where the authors' code does (SPEC B4): from the pooled
ReLU output of blocks that pool (CNN12's 1-8), from the ReLU output of the
others (9-11). `map_activity` ranks maps as that code does: mean |activation|
of the same start point over time.

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

Networks: written against `DeconvNetwork`, what a network must offer (its
conv layers: kernel, widths, pool, where the conv kernel lives in params;
and a trace function giving the start point and the switches). `CNN12Deconv`
is CNN12's adapter; `sonify` accepts a CNN12 or any DeconvNetwork.
"""
import abc
import dataclasses
import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.models import cnn12 as cnn12_lib
from recon_jax.ops import checks

# Working memory one chunk of items may use (bytes) when chunk_size is None:
# 8 items for a 5 s clip at 8 kHz, 4 for 10 s. Speed hardly depends on the
# chunk (4..32 within 5% for CNN12 block 5 on 5 s, benchmarks/RESULTS.md).
DEFAULT_CHUNK_BYTES = 256 * 2**20
MAX_DEFAULT_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class DeconvLayer:
  """What the deconvnet needs of one conv layer (1-D, stride 1, VALID).

  number: layer number from 1. kernel: conv kernel length. in_features /
  features: conv input / output channels. pool: window (= stride) of the
  max-pool after the ReLU, None if the layer does not pool. kernel_path: keys
  of its conv kernel (kernel, in_features, features) in the params tree.
  """
  number: int
  kernel: int
  in_features: int
  features: int
  pool: int | None
  kernel_path: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DeconvTrace:
  """What one forward pass through layers 1..layer gives the deconvnet.

  start: (N, L, C) the start point of `layer` (its output, pooled if it
    pools). switches: one entry per layer 1..layer: int (N, L_b, C_b) index
    into the pre-pool length of each pooled maximum, None if the layer does
    not pool. pre_pool_lengths: per layer, the length before its pool (None
    if it does not pool).
  """
  start: Any
  switches: tuple
  pre_pool_lengths: tuple


class DeconvNetwork(abc.ABC):
  """The model-specific part of the deconvnet: subclasses must be hashable
  (they are static arguments of jitted functions) and compare equal when
  they describe the same network."""

  @property
  @abc.abstractmethod
  def layers(self) -> tuple[DeconvLayer, ...]:
    """The conv layers, numbered from 1."""

  @abc.abstractmethod
  def check_layer(self, layer) -> DeconvLayer:
    """The layer numbered `layer`; ValueError naming the valid range."""

  @abc.abstractmethod
  def trace(self, params, x, layer: int) -> DeconvTrace:
    """Forward pass of waveforms x (N, T) through layers 1..layer."""


@dataclasses.dataclass(frozen=True)
class CNN12Deconv(DeconvNetwork):
  """CNN12's adapter: blocks 1..11, conv kernels at params['conv<b>']."""
  model: cnn12_lib.CNN12

  @property
  def layers(self) -> tuple[DeconvLayer, ...]:
    return tuple(
        DeconvLayer(b.number, b.kernel, b.in_features, b.features, b.pool,
                    (b.name, "kernel")) for b in self.model.blocks)

  def check_layer(self, layer) -> DeconvLayer:
    return self.layers[self.model.check_block(layer).number - 1]

  def trace(self, params, x, layer: int) -> DeconvTrace:
    t = self.model.apply({"params": params}, x, block=layer)
    switches, lengths = list(t.switches), list(t.pre_pool_lengths)
    sw, pre = [], []
    for spec in self.model.blocks[:layer]:
      sw.append(switches.pop(0) if spec.pool else None)
      pre.append(lengths.pop(0) if spec.pool else None)
    return DeconvTrace(t.output, tuple(sw), tuple(pre))


def as_deconv_network(model) -> DeconvNetwork:
  """A DeconvNetwork for `model` (a CNN12, or already a DeconvNetwork)."""
  if isinstance(model, DeconvNetwork):
    return model
  if isinstance(model, cnn12_lib.CNN12):
    return CNN12Deconv(model)
  raise TypeError(f"sonify needs a CNN12 or a DeconvNetwork adapter, got "
                  f"{type(model).__name__}")


def sonify(model, params, x, layer, feature_map=None, *,
           chunk_size: int | None = None) -> jax.Array:
  """Sonifications of feature maps of block `layer` for waveforms x (Fig. B.2).

  Args:
    model: a CNN12 (or a DeconvNetwork adapter).
    params: its parameters (the 'params' collection).
    x: (T,) or (N, T) waveforms, T at least the network's receptive field.
    layer: block number, from 1 (CNN12: 1..11).
    feature_map: map number from 1 (an int), a sequence of them, or None for
      every map of the layer.
    chunk_size: (clip, map) items deconvolved at a time inside the compiled
      program (bounds memory; the result does not depend on it). None picks
      the largest up to 32 whose working memory stays under ~256 MB.

  Returns:
    float32 sonifications scaled to unit peak times max|x| of their clip
    (zeros for a map whose deconvnet output is all zero): (N, T) / (T,) for
    an int feature_map; (N, M, T) / (M, T) for a sequence of M maps or None.
  """
  net = as_deconv_network(model)
  spec = net.check_layer(layer)
  x2, one_clip = _check_waveforms(x, "sonify")
  maps, many = _check_maps(feature_map, spec)
  n, t = x2.shape
  chunk = _check_chunk(chunk_size, net, spec.number, t, n * maps.shape[0])
  s = _sonify_jit(net, spec.number, chunk, _unwrap(params), x2,
                  jnp.asarray(maps))
  if not many:
    s = s[:, 0]
  return s[0] if one_clip else s


def sonify_pairs(model, params, x, layer, feature_maps, *,
                 chunk_size: int | None = None) -> jax.Array:
  """Sonification of one feature map per clip, all clips in one call.

  What the residual test and the page need: clip i's own map (e.g. its
  most active one) without sonifying every map of every clip.

  Args:
    model, params, layer, chunk_size: as `sonify`.
    x: (N, T) waveforms.
    feature_maps: (N,) map numbers from 1, feature_maps[i] for clip i.

  Returns:
    float32 (N, T): row i equals sonify(model, params, x[i], layer,
    feature_maps[i]).
  """
  net = as_deconv_network(model)
  spec = net.check_layer(layer)
  x2, one_clip = _check_waveforms(x, "sonify_pairs")
  if one_clip:
    raise ValueError(f"sonify_pairs expects waveforms (N, T), got shape "
                     f"{np.shape(x)}; use sonify for one clip")
  maps, _ = _check_maps(np.asarray(feature_maps).reshape(-1), spec)
  if np.ndim(feature_maps) != 1 or maps.shape[0] != x2.shape[0]:
    raise ValueError(f"sonify_pairs wants one map per clip: feature_maps of "
                     f"shape ({x2.shape[0]},), got {np.shape(feature_maps)}")
  n, t = x2.shape
  chunk = _check_chunk(chunk_size, net, spec.number, t, n)
  return _sonify_jit(net, spec.number, chunk, _unwrap(params), x2,
                     jnp.asarray(maps), True)


def silent_maps(model, params, x, layer) -> jax.Array:
  """Which maps of block `layer` are silent (zero everywhere) for each clip.

  A silent map's deconvnet start is all zero, so its sonification is zeros.
  Returns bool (N, C) for x (N, T), (C,) for x (T,).
  """
  silent, _ = _layer_stats(model, params, x, layer, "silent_maps")
  return silent


def map_activity(model, params, x, layer) -> jax.Array:
  """Mean |activation| over time of each map of block `layer` (the authors'
  'most active' ranking; of the deconvnet's start point). (N, C) or (C,)."""
  _, activity = _layer_stats(model, params, x, layer, "map_activity")
  return activity


def _layer_stats(model, params, x, layer, name):
  net = as_deconv_network(model)
  spec = net.check_layer(layer)
  x2, one_clip = _check_waveforms(x, name)
  silent, activity = _stats_jit(net, spec.number, _unwrap(params), x2)
  if one_clip:
    return silent[0], activity[0]
  return silent, activity


@functools.partial(jax.jit, static_argnums=(0, 1))
def _stats_jit(net, layer, params, x):
  start = net.trace(params, x, layer).start.astype(jnp.float32)
  return jnp.all(start == 0, axis=-2), jnp.mean(jnp.abs(start), axis=-2)


def _unwrap(params):
  """Accepts the 'params' collection or the variables dict holding it."""
  if isinstance(params, dict) and set(params) == {"params"}:
    return params["params"]
  try:  # flax FrozenDict and other mappings
    if set(params.keys()) == {"params"}:
      return params["params"]
  except AttributeError:
    pass
  return params


def _check_waveforms(x, name):
  """x (T,) or (N, T) -> ((N, T) float32 array, whether x was 1-D)."""
  if np.ndim(x) not in (1, 2):
    raise ValueError(f"{name} expects a waveform (T,) or waveforms (N, T), got "
                     f"shape {np.shape(x)}")
  checks.check_finite(x, f"{name} input")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype != jnp.float32:
    x = x.astype(jnp.float32)
  if x.ndim == 1:
    return x[None], True
  if x.shape[0] == 0:
    raise ValueError(f"{name} got an empty batch of waveforms, shape "
                     f"{tuple(x.shape)}")
  return x, False


def _check_maps(feature_map, spec: DeconvLayer):
  """feature_map -> (0-based int32 indices (M,), whether to keep a maps
  axis)."""
  width = spec.features
  where = (f"block {spec.number} has {width} feature maps, numbered "
           f"1..{width}")
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
  for spec in net.layers[:layer]:
    length = length - spec.kernel + 1
    largest = max(largest, length * spec.features)
    if spec.pool:
      length //= spec.pool
  return 3 * 4 * max(largest, 1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 6))
def _sonify_jit(net, layer, chunk, params, x, maps, paired=False):
  """(N, M, T) sonifications of maps (M,) (0-based) of `layer` for x (N, T);
  with `paired`, maps is (N,), clip i's map, and the result (N, T)."""
  n, length = x.shape
  m = maps.shape[0]
  trace = net.trace(params, x, layer)
  layers = net.layers[:layer]
  kernels = [_get(params, spec.kernel_path).astype(jnp.float32)
             for spec in layers]
  start = trace.start.astype(jnp.float32)  # (N, L, C)
  # The unpooling masks of the layers below the start: bool (N, L', C).
  masks = [
      None if spec.pool is None else _switch_mask(
          trace.switches[i], spec.pool, trace.pre_pool_lengths[i])
      for i, spec in enumerate(layers[:-1])
  ]
  top = layers[-1]
  top_switches = trace.switches[-1]
  peak_x = jnp.max(jnp.abs(x), axis=-1)  # (N,)

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
    # channel), (S, L, 1).
    h = _take_map(start, c, j, n)[..., None]
    if top.pool:
      sw = _take_map(top_switches, c, j, n)[..., None]
      h = _unpool(h, _switch_mask(sw, top.pool, trace.pre_pool_lengths[-1]))
    h = jax.nn.relu(h)
    # Block `layer`'s transposed conv restricted to map j's kernel slice.
    w = jnp.moveaxis(kernels[-1][:, :, j], -1, 0)  # (S, k, C_in)
    h = _transposed_conv_one_channel(h, w)
    for i in reversed(range(layer - 1)):
      spec = layers[i]
      if spec.pool:
        h = _unpool(h, per_clip(masks[i], c))
      h = jax.nn.relu(h)
      h = _transposed_conv(h, kernels[i])
    s = h[..., 0]  # (S, T)
    peak = jnp.max(jnp.abs(s), axis=-1, keepdims=True)
    scale = peak_x[c][:, None]
    safe = jnp.where(peak > 0, peak, 1)
    return jnp.where(peak > 0, s / safe * scale, 0)

  if num_chunks == 1:
    out = run((clips[0], which[0]))[None]
  else:
    out = jax.lax.map(run, (clips, which))
  out = out.reshape(num_chunks * chunk, length)[:items]
  return out if paired else out.reshape(n, m, length)


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


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


def _transposed_conv(h, kernel):
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


def _transposed_conv_one_channel(h, w):
  """Per-item transposed conv of one channel: h (S, L, 1), w (S, k, C_in)
  -> (S, L + k - 1, C_in), out[t] = sum_j h[t - j] * w[j]."""
  k = w.shape[1]
  out = 0
  for j in range(k):
    hj = jnp.pad(h, ((0, 0), (j, k - 1 - j), (0, 0)))
    out = out + hj * w[:, j][:, None, :]
  return out
