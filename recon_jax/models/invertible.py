"""The protocol a network implements to be inverted: plain data + functions.

Everything in `recon_jax.inversion` (the deconvnet's sonification,
backpropagation to the input, simulated annealing, the stacked decoders)
reads a network through this module only: an `InvertibleNet`, a hashable description of a 1-D
convolutional network as a sequence of operations, and the functions below
that run it from a parameter tree. A model "implements the protocol" by
having a method `invertible() -> InvertibleNet` (PhoneCNN and CNN12 do), or
by being described by one directly.

Conventions: channels-last, one example is (L, C), a batch (N, L, C); the
operations act along L (time for a waveform, frequency for the phone CNN's
spectrograms, whose frames are the channels). A net with `waveform=True`
takes examples (L,) (one channel, added as a last axis) and batches (N, L).

Operations (build them with the constructors, all numbers static):
  conv(features, kernel, stride=1, padding='VALID', name=..)
      y = conv(x, params[name]['kernel'] (kernel, C_in, features)) + bias,
      as flax.linen.Conv; padding 'VALID', 'SAME' (as lax) or (lo, hi).
  relu()
  max_pool(window, stride=window, padding='VALID')
      floor mode; padding pads with -inf. Its switches (where each maximum
      came from) are recorded by `trace`.
  dense(features, name=..)
      flattens (N, L, C) to (N, L * C) first, as the phone CNN does.
  temporal_mean()
      the mean over L: (N, L, C) -> (N, C) (CNN12 before its fc10).
Layers: the numbered points of the network where an activation is read.
`layer_ends[n - 1]` is how many operations run for layer n; by default every
operation is a layer, numbered from 1 (the thesis's numbering). CNN12
numbers its blocks instead (block b ends after its ReLU, or its pool).

Declaring your own 1-D conv net, e.g. a conv over time with strides:

    from recon_jax.models import invertible as inv
    net = inv.InvertibleNet(
        ops=(inv.conv(16, 9, stride=2, padding='SAME', name='c1'), inv.relu(),
             inv.max_pool(4, 3), inv.conv(32, 4, padding=(1, 2), name='c2'),
             inv.relu(), inv.temporal_mean(), inv.dense(10, name='out')),
        waveform=True, name='MyNet')
    module = inv.DeclaredNet(net)              # a Flax module of that net
    params = module.init(key, x)['params']     # x (N, T)
    inversion.sonify(module, params, x, layer=3)

For a Flax module you already have, write the InvertibleNet with `params=`
paths pointing at its conv and dense parameters ({'kernel', 'bias'} as
flax's Conv and Dense keep them) and pass the InvertibleNet (with the
module's params) to the inversion functions; `check_matches` compares the
description's output with the module's own.

Functions (net an InvertibleNet, or any model with `invertible()`):
  describe(model) -> InvertibleNet
  check_layer(net, layer) -> int                    validated layer number
  activation(net, params, x, layer=None) -> array   layer's activation
  trace(net, params, x, layer=None) -> Trace        every op's output, the
                                                    pool switches, lengths
  param_shapes(net, example_shape) -> {path: shape}
  check_params(net, params, example_shape)          ValueError if they differ
  activation_shape(net, example_shape, layer) -> tuple
  min_input_length(net), receptive_field(net, layer), total_stride(net, layer)
  conv_kernel(net, params, op_index) -> (kernel, C_in, C_out)
"""
import dataclasses
import functools
import math
import numbers
import operator
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.ops import checks
from recon_jax.ops import pooling

KINDS = ("conv", "relu", "pool", "dense", "mean")
_DIMS = ("NWC", "WIO", "NWC")


@dataclasses.dataclass(frozen=True)
class Op:
  """One operation. Use the constructors (conv, relu, max_pool, dense,
  temporal_mean) rather than this class.

  kind: one of KINDS. name: unique among the network's convs and denses
  (filled in for the others). features: conv / dense outputs. kernel: conv
  kernel length. window: pool window. stride: conv / pool stride. padding:
  conv / pool: 'VALID', 'SAME' or (lo, hi). params: conv / dense: keys of
  its {'kernel', 'bias'} in the parameter tree (default (name,)). use_bias:
  conv / dense.
  """
  kind: str
  name: str = ""
  features: int = 0
  kernel: int = 0
  window: int = 0
  stride: int = 1
  padding: Any = "VALID"
  params: tuple = ()
  use_bias: bool = True

  @property
  def weighted(self) -> bool:
    return self.kind in ("conv", "dense")

  @property
  def size(self) -> int:
    """conv: kernel length; pool: window; else 0."""
    return self.kernel if self.kind == "conv" else (
        self.window if self.kind == "pool" else 0)


def conv(features: int, kernel: int, *, name: str, stride: int = 1,
         padding="VALID", params=None, use_bias: bool = True) -> Op:
  """A 1-D convolution along L (see the module docstring)."""
  return Op("conv", name, features=features, kernel=kernel, stride=stride,
            padding=padding, params=tuple(params or (name,)),
            use_bias=use_bias)


def relu(name: str = "") -> Op:
  return Op("relu", name)


def max_pool(window: int, stride: int | None = None, *, padding="VALID",
             name: str = "") -> Op:
  """Max-pooling along L, stride = window by default."""
  return Op("pool", name, window=window,
            stride=window if stride is None else stride, padding=padding)


def dense(features: int, *, name: str, params=None,
          use_bias: bool = True) -> Op:
  return Op("dense", name, features=features, params=tuple(params or (name,)),
            use_bias=use_bias)


def temporal_mean(name: str = "mean") -> Op:
  return Op("mean", name)


def _is_int(value, minimum):
  return (not isinstance(value, (bool, np.bool_))
          and isinstance(value, numbers.Integral) and value >= minimum)


def _check_padding(op: Op, where: str):
  pad = op.padding
  if isinstance(pad, str):
    if pad not in ("VALID", "SAME"):
      raise ValueError(f"{where}: padding must be 'VALID', 'SAME' or (lo, hi),"
                       f" got {pad!r}")
    return pad
  try:
    lo, hi = pad
  except (TypeError, ValueError):
    raise ValueError(f"{where}: padding must be 'VALID', 'SAME' or (lo, hi),"
                     f" got {pad!r}") from None
  if not (_is_int(lo, 0) and _is_int(hi, 0)):
    raise ValueError(f"{where}: padding (lo, hi) must be integers >= 0, got "
                     f"{pad!r}")
  if op.kind == "pool" and max(lo, hi) >= op.window:
    raise ValueError(f"{where}: pool padding {pad!r} must be below the window "
                     f"{op.window} (a window of padding alone has no maximum)")
  return (int(lo), int(hi))


@dataclasses.dataclass(frozen=True)
class InvertibleNet:
  """A hashable description of a 1-D conv net (see the module docstring).

  ops: the operations, in order.
  layer_ends: layer n's activation is the output of ops[:layer_ends[n-1]];
    strictly increasing, in 1..len(ops). None: every op is a layer.
  layer_names: one per layer (None: the name of each layer's last op).
  name: the network's name in messages ('PhoneCNN', 'CNN12').
  unit: what its layers are called in messages ('layer', 'block').
  waveform: one example is (L,) (one channel) rather than (L, C).
  dtype: computation dtype (None: from the inputs and parameters).
  """
  ops: tuple
  layer_ends: tuple | None = None
  layer_names: tuple | None = None
  name: str = "network"
  unit: str = "layer"
  waveform: bool = False
  dtype: Any = None

  def __post_init__(self):
    ops = tuple(self.ops)
    if not ops or not all(isinstance(op, Op) for op in ops):
      raise ValueError(f"{self.name}: ops must be a non-empty sequence of Op "
                       f"(made by conv, relu, max_pool, dense, temporal_mean),"
                       f" got {self.ops!r}")
    counts, fixed, seen, flat = {}, [], set(), False
    for i, op in enumerate(ops):
      where = f"{self.name} op {i} ({op.kind} {op.name!r})".replace(" ''", "")
      if op.kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}")
      counts[op.kind] = counts.get(op.kind, 0) + 1
      name = op.name or f"{op.kind}{counts[op.kind]}"
      changes = {"name": name}
      if op.kind == "conv":
        for field, low in (("features", 1), ("kernel", 1), ("stride", 1)):
          if not _is_int(getattr(op, field), low):
            raise ValueError(f"{where}: {field} must be an integer >= {low}, "
                             f"got {getattr(op, field)!r}")
      if op.kind == "pool":
        for field in ("window", "stride"):
          if not _is_int(getattr(op, field), 1):
            raise ValueError(f"{where}: {field} must be an integer >= 1, got "
                             f"{getattr(op, field)!r}")
      if op.kind == "dense" and not _is_int(op.features, 1):
        raise ValueError(f"{where}: features must be an integer >= 1, got "
                         f"{op.features!r}")
      if op.kind in ("conv", "pool"):
        changes["padding"] = _check_padding(op, where)
        if flat:
          raise ValueError(f"{where}: a {op.kind} needs (N, L, C) activations"
                           ", but a dense or temporal mean came before it")
      if op.kind in ("dense", "mean"):
        if op.kind == "mean" and flat:
          raise ValueError(f"{where}: a temporal mean needs (N, L, C) "
                           "activations, but a dense or mean came before it")
        flat = True
      if op.weighted:
        if not op.name:
          raise ValueError(f"{where}: a {op.kind} needs a name")
        path = tuple(op.params) or (op.name,)
        if path in seen:
          raise ValueError(f"{where}: parameter path {path} is used twice")
        seen.add(path)
        changes["params"] = path
      fixed.append(dataclasses.replace(op, **changes))
    object.__setattr__(self, "ops", tuple(fixed))
    ends = (tuple(range(1, len(ops) + 1)) if self.layer_ends is None else
            tuple(self.layer_ends))
    if (not ends or not all(_is_int(e, 1) and e <= len(ops) for e in ends)
        or any(b <= a for a, b in zip(ends, ends[1:]))):
      raise ValueError(f"{self.name}: layer_ends must be strictly increasing "
                       f"integers in 1..{len(ops)}, got {self.layer_ends!r}")
    object.__setattr__(self, "layer_ends", tuple(int(e) for e in ends))
    names = (tuple(self.ops[e - 1].name for e in ends)
             if self.layer_names is None else tuple(self.layer_names))
    if len(names) != len(ends):
      raise ValueError(f"{self.name}: {len(names)} layer_names for "
                       f"{len(ends)} layers")
    object.__setattr__(self, "layer_names", names)

  @property
  def num_layers(self) -> int:
    return len(self.layer_ends)

  @property
  def example_rank(self) -> int:
    """Axes of one example: 1 for (L,) waveforms, 2 for (L, C)."""
    return 1 if self.waveform else 2

  def layer_name(self, layer: int) -> str:
    return self.layer_names[layer - 1]

  def ops_of(self, layer: int | None) -> tuple:
    """The operations that run for `layer` (None: all)."""
    return self.ops if layer is None else self.ops[:self.layer_ends[layer - 1]]


def describe(model) -> InvertibleNet:
  """The InvertibleNet of `model`: itself, or model.invertible()."""
  if isinstance(model, InvertibleNet):
    return model
  method = getattr(model, "invertible", None)
  if callable(method):
    net = method()
    if isinstance(net, InvertibleNet):
      return net
  raise TypeError(f"a model to invert must be an InvertibleNet or have an "
                  f"invertible() method returning one (recon_jax.models."
                  f"invertible), got {type(model).__name__}")


def check_layer(net: InvertibleNet, layer) -> int:
  """`layer` as an int in 1..num_layers; ValueError naming them if not."""
  try:
    number = None if isinstance(layer, (bool, np.bool_)) else operator.index(
        layer)
  except TypeError:
    number = None
  if number is None or not 1 <= number <= net.num_layers:
    listing = ", ".join(f"{i + 1} {n}" for i, n in enumerate(net.layer_names))
    raise ValueError(f"{net.unit} {layer!r} does not exist: {net.name} has "
                     f"{net.unit}s 1..{net.num_layers} ({listing})")
  return number


# ------------------------------------------------------------------ lengths


def resolve_padding(op: Op, length: int) -> tuple:
  """(lo, hi) padding of a conv or pool on an input of `length`."""
  if op.padding == "VALID":
    return (0, 0)
  if op.padding == "SAME":
    out = -(-length // op.stride)
    total = max((out - 1) * op.stride + op.size - length, 0)
    return (total // 2, total - total // 2)
  return tuple(op.padding)


def output_length(op: Op, length: int) -> int:
  """Length along L after a conv or pool (< 1: the input is too short)."""
  lo, hi = resolve_padding(op, length)
  return (length + lo + hi - op.size) // op.stride + 1


def _lengths(ops, length):
  """The input length of each op and the final one; None once flattened,
  -1 from the first op whose input is too short."""
  out = []
  for op in ops:
    out.append(length)
    if length is None or length < 1:
      continue
    if op.kind in ("conv", "pool"):
      length = output_length(op, length)
      length = length if length >= 1 else -1
    elif op.kind in ("dense", "mean"):
      length = None
  return out, length


@functools.lru_cache(maxsize=256)
def min_input_length(net: InvertibleNet, layer: int | None = None) -> int:
  """Shortest input length along L that every op (up to `layer`) accepts."""
  ops = net.ops_of(layer)

  def fits(length):
    lengths, last = _lengths(ops, length)
    return all(l is None or l >= 1 for l in lengths + [last])
  high = 1
  while not fits(high):
    high *= 2
    if high > 2**40:
      raise ValueError(f"{net.name}: no input length fits its ops")
  low = high // 2 + 1 if high > 1 else 1
  while low < high:  # lengths grow with the input: bisect
    mid = (low + high) // 2
    low, high = (mid + 1, high) if not fits(mid) else (low, mid)
  return high


def receptive_field(net: InvertibleNet, layer: int | None = None) -> int:
  """Input samples one unit of `layer` (None: the last conv/pool) sees."""
  r, jump = 1, 1
  for op in net.ops_of(layer):
    if op.kind in ("conv", "pool"):
      r += (op.size - 1) * jump
      jump *= op.stride
  return r


def total_stride(net: InvertibleNet, layer: int | None = None) -> int:
  """Product of the conv and pool strides up to `layer`: shifting the input
  by a multiple of it shifts the activations by whole samples."""
  return math.prod(op.stride for op in net.ops_of(layer)
                   if op.kind in ("conv", "pool"))


# ------------------------------------------------------------ params, input


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def unwrap_params(params):
  """The 'params' collection, given it or the variables dict holding it."""
  try:
    if set(params.keys()) == {"params"}:
      return params["params"]
  except AttributeError:
    pass
  return params


def conv_kernel(net: InvertibleNet, params, index: int):
  """The kernel (k, C_in, C_out) of op `index` (a conv) in params."""
  return _get(unwrap_params(params), net.ops[index].params + ("kernel",))


def _keystr(path):
  return "".join(f"[{k!r}]" for k in path)


def param_shapes(net: InvertibleNet, example_shape) -> dict:
  """{path string: shape} of the parameters the ops need for examples of
  `example_shape` ((L,) for waveform nets, (L, C) otherwise); paths as
  jax.tree_util.keystr writes them ("['conv1']['kernel']").

  Raises:
    ValueError: the shape does not fit (wrong rank, too short for an op).
  """
  return {_keystr(path): shape
          for path, shape in _param_shapes(describe(net),
                                           tuple(example_shape)).items()}


@functools.lru_cache(maxsize=256)
def _param_shapes(net: InvertibleNet, example_shape: tuple) -> dict:
  """{path tuple: shape}, see param_shapes."""
  shape = tuple(example_shape)
  if len(shape) != net.example_rank or not all(_is_int(s, 1) for s in shape):
    raise ValueError(f"{net.name} examples are "
                     f"{'(L,)' if net.waveform else '(L, C)'}, got shape "
                     f"{example_shape!r}")
  length, channels = shape[0], (1 if net.waveform else shape[1])
  flat = None
  out = {}
  for i, op in enumerate(net.ops):
    if op.kind in ("conv", "pool"):
      new = output_length(op, length)
      if new < 1:
        size = "kernel" if op.kind == "conv" else "window"
        raise ValueError(
            f"{op.kind} {op.name} (op {i}, {size} {op.size}, padding "
            f"{resolve_padding(op, length)}) gets {length} samples, too "
            f"few: {net.name} needs inputs of at least "
            f"{min_input_length(net)} samples")
      length = new
    if op.kind == "conv":
      out[op.params + ("kernel",)] = (op.kernel, channels, op.features)
      channels = op.features
    elif op.kind == "dense":
      d_in = flat if flat is not None else length * channels
      out[op.params + ("kernel",)] = (d_in, op.features)
      flat = op.features
    elif op.kind == "mean":
      flat = channels
    if op.weighted and op.use_bias:
      out[op.params + ("bias",)] = (op.features,)
  return out


def check_params(net: InvertibleNet, params, example_shape):
  """ValueError unless `params` holds every parameter the ops need, of the
  shape they need for examples of `example_shape` (other leaves are
  ignored: a classifier's head, say)."""
  want = _param_shapes(describe(net), tuple(example_shape))
  params = unwrap_params(params)
  bad = []
  for path, shape in want.items():
    try:
      got = tuple(np.shape(_get(params, path)))
    except (KeyError, TypeError, IndexError):
      got = "nothing"
    if got != shape:
      bad.append(f"{_keystr(path)}: has {got}, needs {shape}")
  if bad:
    raise ValueError(
        f"the network's parameters do not fit inputs of shape "
        f"{tuple(example_shape)} ({'; '.join(bad[:4])}"
        f"{'; ...' if len(bad) > 4 else ''}); were they made for another "
        "input shape or another architecture?")


def check_input(net: InvertibleNet, x, name: str = "input"):
  """A batch or one example -> ((N, L, C) float array, one_example).

  Checks the rank, finiteness (concrete arrays) and the minimum length of
  the whole network (as CNN12 itself does; `trace` asks only for what the
  ops up to its layer need).
  """
  rank = net.example_rank
  if np.ndim(x) not in (rank, rank + 1):
    want = ("a waveform (T,) or waveforms (N, T)" if net.waveform else
            "an example (L, C) or examples (N, L, C)")
    raise ValueError(f"{name} expects {want}, got shape {np.shape(x)}")
  checks.check_finite(x, f"{name} input")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  one = x.ndim == rank
  if one:
    x = x[None]
  if x.shape[0] == 0:
    raise ValueError(f"{name} got an empty batch, shape {tuple(x.shape)}")
  if net.waveform:
    x = x[..., None]
  _check_length(net, x.shape[1])
  return x, one


def _check_length(net, length, layer=None):
  need = min_input_length(net, layer)
  if length < need:
    what = ("its receptive field of" if need == receptive_field(net, layer)
            else "the minimum of")
    raise ValueError(f"{net.name} input of {length} samples is shorter than "
                     f"{what} {need} samples; pad or tile it")


def _as_batch(net, x, layer=None):
  """x (N, L) (waveform nets) or (N, L, C) -> (N, L, C), shape-checked (long
  enough for the ops up to `layer`)."""
  x = jnp.asarray(x)
  if net.waveform and x.ndim == 2:
    x = x[..., None]
  if x.ndim != 3 or (net.waveform and x.shape[-1] != 1):
    raise ValueError(f"{net.name} expects a batch "
                     f"{'(N, T) or (N, T, 1)' if net.waveform else '(N, L, C)'}"
                     f", got shape {x.shape}")
  _check_length(net, x.shape[1], layer)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  return x


# ------------------------------------------------------------------ forward


@flax.struct.dataclass
class Trace:
  """What one forward pass records, one entry per op run.

  outputs: each op's output ((N, L, C), or (N, D) after a dense / mean).
  switches: pools: int32 (N, L_out, C), the index of each maximum into the
    pool's padded input (lo + position in its input); None for other ops.
  lengths: each op's input length along L (None after a dense / mean).
  pads: conv / pool: the (lo, hi) padding used; None for other ops.
  """
  outputs: tuple
  switches: tuple
  lengths: tuple = flax.struct.field(pytree_node=False)
  pads: tuple = flax.struct.field(pytree_node=False)

  @property
  def output(self):
    return self.outputs[-1]


def _forward(net: InvertibleNet, weights: Callable, x, layer):
  """Runs ops[:end of layer] on x (N, L, C); weights(i, op, in_shape) gives
  op i's (kernel, bias)."""
  h = x
  outputs, switches, lengths, pads = [], [], [], []
  for i, op in enumerate(net.ops_of(layer)):
    lengths.append(h.shape[-2] if h.ndim == 3 else None)
    pad, sw = None, None
    if op.kind in ("conv", "dense"):
      kernel, bias = weights(i, op, h.shape)
      if op.kind == "dense" and h.ndim == 3:
        h = h.reshape((h.shape[0], -1))
      args = [h, kernel] + ([bias] if bias is not None else [])
      dtype = net.dtype or jnp.result_type(*args)
      h, kernel = h.astype(dtype), kernel.astype(dtype)
      if op.kind == "conv":
        pad = resolve_padding(op, h.shape[-2])
        h = jax.lax.conv_general_dilated(
            h, kernel, (op.stride,), [pad], lhs_dilation=None,
            rhs_dilation=(1,), dimension_numbers=jax.lax.ConvDimensionNumbers(
                lhs_spec=(0, 2, 1), rhs_spec=(2, 1, 0), out_spec=(0, 2, 1)),
            feature_group_count=1, precision=None)
      else:
        h = jax.lax.dot_general(h, kernel, (((h.ndim - 1,), (0,)), ((), ())),
                                precision=None)
      if bias is not None:
        h = h + bias.astype(dtype).reshape((1,) * (h.ndim - 1) + (-1,))
    elif op.kind == "relu":
      h = nn.relu(h)
    elif op.kind == "pool":
      pad = resolve_padding(op, h.shape[-2])
      if pad != (0, 0):
        h = jnp.pad(h, ((0, 0), pad, (0, 0)), constant_values=-jnp.inf)
        # The public op refuses the -inf padding as non-finite input.
        # pylint: disable-next=protected-access
        h, sw = pooling._max_pool_with_argmax(
            h, op.window, op.stride)
      else:
        h, sw = pooling.max_pool_with_argmax(h, op.window, op.stride)
    else:  # mean
      h = jnp.mean(h, axis=-2, dtype=jnp.float32).astype(h.dtype)
    outputs.append(h)
    switches.append(sw)
    pads.append(pad)
  return Trace(tuple(outputs), tuple(switches), tuple(lengths), tuple(pads))


def _reader(net, params):
  params = unwrap_params(params)

  def weights(i, op, in_shape):
    del i, in_shape
    tree = _get(params, op.params)
    return tree["kernel"], (tree["bias"] if op.use_bias else None)
  return weights


def trace(net, params, x, layer: int | None = None) -> Trace:
  """One forward pass of x through layer `layer` (None: every op).

  x: a batch, (N, L) or (N, L, 1) for waveform nets, else (N, L, C).
  Returns the Trace (every op's output, the pools' switches, the lengths).
  x must be long enough for the ops up to `layer` only. Works under jit
  (x may be a tracer; only shapes are checked).
  """
  net = describe(net)
  if layer is not None:
    layer = check_layer(net, layer)
  return _forward(net, _reader(net, params), _as_batch(net, x, layer), layer)


def activation(net, params, x, layer: int | None = None):
  """Layer `layer`'s activation for a batch x (see `trace`): (N, L_n, C_n),
  or (N, D) after a dense layer or the temporal mean."""
  return trace(net, params, x, layer).output


def activation_shape(net, example_shape, layer: int | None = None) -> tuple:
  """Per-example shape of layer `layer`'s activation (no compute)."""
  net = describe(net)
  params = {}
  for path, shape in _param_shapes(net, tuple(example_shape)).items():
    node = params
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = jax.ShapeDtypeStruct(shape, jnp.float32)
  x = jax.ShapeDtypeStruct((1,) + tuple(example_shape), jnp.float32)
  out = jax.eval_shape(lambda p, x: activation(net, p, x, layer), params, x)
  return tuple(out.shape[1:])


def check_matches(net, params, x, expected, layer: int | None = None,
                  rtol: float = 1e-5, atol: float = 1e-6):
  """ValueError unless the description's output for x equals `expected`
  (your own module's output for the same x and params) within tolerance:
  a check that a hand-written InvertibleNet describes your network."""
  net = describe(net)
  got = np.asarray(activation(net, params, x, layer))
  expected = np.asarray(expected)
  if got.shape != expected.shape:
    raise ValueError(f"{net.name} as described gives shape {got.shape}, the "
                     f"module {expected.shape}")
  if not np.allclose(got, expected, rtol=rtol, atol=atol):
    err = float(np.max(np.abs(got - expected)))
    raise ValueError(f"{net.name} as described differs from the module by up "
                     f"to {err:.3g}: check kernels, strides, paddings, pools"
                     " and parameter paths")


# ------------------------------------------------------------ a Flax module


class _Weights(nn.Module):
  """Declares one conv's or dense's kernel and bias."""
  shape: tuple
  use_bias: bool
  kernel_init: Callable
  bias_init: Callable

  @nn.compact
  def __call__(self):
    kernel = self.param("kernel", self.kernel_init, self.shape)
    bias = (self.param("bias", self.bias_init, self.shape[-1:])
            if self.use_bias else None)
    return kernel, bias


class DeclaredNet(nn.Module):
  """The Flax module of an InvertibleNet's ops (a user's declared net).

  Parameters live at params[op.name]['kernel' / 'bias'] (the ops' `params`
  paths must be single names). apply(..., x, layer=None) runs x (N, L, C)
  ((N, T) for a waveform net) up to `layer` (None: every op). Initialised
  as flax's Conv and Dense are (LeCun normal kernels, zero biases).
  """
  net: InvertibleNet
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  def invertible(self) -> InvertibleNet:
    return self.net

  @nn.compact
  def __call__(self, x, *, layer: int | None = None):
    net = self.net
    if layer is not None:
      layer = check_layer(net, layer)
    for op in net.ops:
      if op.weighted and op.params != (op.name,):
        raise ValueError(f"DeclaredNet keeps {op.name}'s parameters at "
                         f"({op.name!r},), not {op.params}")

    def weights(i, op, in_shape):
      del i
      if op.kind == "conv":
        shape = (op.kernel, in_shape[-1], op.features)
      else:
        shape = (math.prod(in_shape[1:]), op.features)
      return _Weights(shape, op.use_bias, self.kernel_init, self.bias_init,
                      name=op.name)()
    return _forward(net, weights, _as_batch(net, x, layer), layer).output
