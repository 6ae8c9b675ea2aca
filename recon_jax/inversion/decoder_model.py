"""The decoder network D_n from layer n of the encoder back to its input
(docs/methods.md, A3.3), and the encoder views it is trained on.

A decoder mirrors the encoder (any network of the inversion protocol,
recon_jax.models.invertible: normally the padded 'SAME' PhoneCNN; a CNN12 on
waveforms or a user's declared net work alike) from layer n down to the
input, one decoder STAGE per encoder unit (a conv with the ReLU, pool and
temporal mean after it, or a dense layer with its ReLU), run innermost
first:
  conv unit:   [spread back over time, if the unit ends in a temporal mean]
               -> [unpool, if layer n reaches the unit's pool] -> transposed
               conv (own, untied weights, with bias; for a stride-1 conv
               flax's ConvTranspose with the encoder's 'SAME' or 'VALID'
               padding, so the length returns to the unit's input length;
               for a strided or explicitly padded conv the conv's exact
               transpose shape: the input dilated by the stride, the padding
               cropped)
  dense layer: Dense back to the layer's input size (reshaped to (L, C) when
               that input was a flattened conv activation).
Each stage's output estimates the input of its encoder unit. Every inner
unit's input is a ReLU (or pool-of-ReLU) output, so every stage but the
outermost ends in a ReLU (the ReLUs "between blocks where the encoder had
one"); the outermost stage, which estimates the input (a mean-subtracted
spectrogram, a waveform: negative values included), is linear.

Positions: stages name encoder activations by op position, the number of
the encoder's operations run to make them (0: the input X). For the phone
CNN, one op per thesis layer, these are its layer numbers; for CNN12 block b
ends at position 3b for b <= 8.

Unpooling: 'blind' (default: each value copied over its window, averaged
where windows overlap; no information about the input) or 'switch'
(max_unpool at the encoder's recorded argmax; the switches of the ORIGINAL
input must then be passed, and they leak input information, see
mangled.py).
"""
import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from recon_jax import ops
from recon_jax.inversion import deconvnet
from recon_jax.inversion import objective
from recon_jax.models import invertible

UNPOOLING = ("blind", "switch")


@dataclasses.dataclass(frozen=True)
class DecoderStage:
  """One decoder stage, mirroring one encoder unit.

  name: parameter-tree name ('block3', 'fc2', ...).
  kind: 'conv' or 'dense'.
  source_layer: encoder position (op count, see above) whose activation the
    stage decodes.
  target_layer: encoder position whose output it estimates (0: the input X).
  out_shape: per-example shape of that target.
  kernel: conv stages: the encoder conv's kernel size.
  pool_layer: conv stages: the encoder position of the pool to undo (0:
    none).
  unpool_length: the pre-pool length to unpool to.
  relu: a ReLU on the output (all stages but the outermost).
  stride, padding: conv stages: the encoder conv's stride and padding
    ('VALID', 'SAME' or (lo, hi)); conv_pads: that padding resolved.
  pool_window, pool_stride, pool_padding: the pool's window, stride and
    resolved (lo, hi) padding.
  mean_length: conv stages whose unit ends in a temporal mean: the length
    to spread its (C,) back over (0: none).
  """
  name: str
  kind: str
  source_layer: int
  target_layer: int
  out_shape: tuple
  kernel: int = 0
  pool_layer: int = 0
  unpool_length: int = 0
  relu: bool = True
  stride: int = 1
  padding: Any = "VALID"
  conv_pads: tuple = (0, 0)
  pool_window: int = 0
  pool_stride: int = 0
  pool_padding: tuple = (0, 0)
  mean_length: int = 0

  @property
  def out_channels(self) -> int:
    """Channels of the stage's output (1 for a waveform input)."""
    return self.out_shape[-1] if len(self.out_shape) > 1 else 1


@functools.lru_cache(maxsize=64)
def _abstract_trace(net: invertible.InvertibleNet, input_shape: tuple,
                    layer: int):
  """The encoder's trace for one example of `input_shape`, shapes only."""
  params = {}
  # pylint: disable-next=protected-access
  shapes = invertible._param_shapes(net, input_shape)
  for path, shape in shapes.items():
    node = params
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = jax.ShapeDtypeStruct(shape, jnp.float32)
  x = jax.ShapeDtypeStruct((1,) + input_shape, jnp.float32)
  return jax.eval_shape(lambda p, x: invertible.trace(net, p, x, layer),
                        params, x)


def top_position(model, layer: int) -> int:
  """The encoder position (op count) of layer `layer`'s activation."""
  net = invertible.describe(model)
  return net.layer_ends[invertible.check_layer(net, layer) - 1]


def decoder_stages(model, layer: int, input_shape) -> tuple[DecoderStage, ...]:
  """The stages of D_layer for `model` and inputs of `input_shape` (one
  example's shape), innermost first."""
  net = invertible.describe(model)
  layer = invertible.check_layer(net, layer)
  input_shape = objective.check_input_shape(input_shape,
                                            rank=net.example_rank)
  objective.activation_shape(model, input_shape, layer)  # clear errors
  trace = _abstract_trace(net, input_shape, layer)
  op_list = net.ops_of(layer)
  shapes = {0: input_shape}
  for i, out in enumerate(trace.outputs):
    shapes[i + 1] = tuple(out.shape[1:])
  units = []  # lists of op indices
  for i, op in enumerate(op_list):
    if op.weighted:
      units.append([i])
    elif not units:
      raise ValueError(f"a decoder for {net.name} needs its first op to be a "
                       f"conv or dense, not a {op.kind}")
    else:
      units[-1].append(i)
  stages, convs = [], 0
  for index, unit in enumerate(units):
    first = op_list[unit[0]]
    pools = [i for i in unit if op_list[i].kind == "pool"]
    means = [i for i in unit if op_list[i].kind == "mean"]
    if len(pools) > 1:
      raise ValueError(f"a decoder for {net.name} undoes one pool per conv "
                       f"unit; {first.name} is followed by {len(pools)}")
    fields = {}
    if first.kind == "conv":
      convs += 1
      fields = dict(kernel=first.kernel, stride=first.stride,
                    padding=first.padding, conv_pads=trace.pads[unit[0]])
      if pools:
        pool = op_list[pools[0]]
        fields.update(pool_layer=pools[0] + 1,
                      unpool_length=trace.lengths[pools[0]],
                      pool_window=pool.window, pool_stride=pool.stride,
                      pool_padding=tuple(trace.pads[pools[0]]))
      if means:
        fields.update(mean_length=trace.lengths[means[0]])
    stages.append(DecoderStage(
        name=f"block{convs}" if first.kind == "conv" else first.name,
        kind=first.kind,
        source_layer=unit[-1] + 1,
        target_layer=unit[0],
        out_shape=shapes[unit[0]],
        relu=index > 0, **fields))
  return tuple(reversed(stages))


class _TransposedConv(nn.Module):
  """The transpose of a strided / padded conv, own kernel (k, C_out, C_in)
  (the encoder conv's layout) and bias: (N, L_out, C_in) -> (N, length,
  C_out)."""
  features: int
  kernel: int
  stride: int
  pads: tuple
  length: int

  @nn.compact
  def __call__(self, h):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel, self.features, h.shape[-1]))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    out = deconvnet._transposed_conv(  # pylint: disable=protected-access
        h, kernel, self.stride, self.pads, self.length)
    return out + bias


class Decoder(nn.Module):
  """D_n: (N, *activation of layer n) -> (N, *input). See the module doc."""
  stages: tuple
  unpooling: str = "blind"
  stage_relu: bool = True

  @nn.compact
  def __call__(self, y, switches=None, *, start: int = 0,
               stop: int | None = None):
    """Runs stages[start:stop] (all by default) on y.

    Args:
      y: (N, *source shape of stages[start]).
      switches: 'switch' unpooling: {pool position: int (N, L_out, C)} from
        the encoder run on the original inputs.
    """
    h = y
    for stage in self.stages[start:stop]:
      if stage.kind == "dense":
        h = h.reshape((h.shape[0], -1))
        h = nn.Dense(math.prod(stage.out_shape), name=stage.name)(h)
        h = h.reshape((h.shape[0],) + stage.out_shape)
      else:
        if stage.mean_length:
          h = jnp.broadcast_to(h[:, None, :], (h.shape[0], stage.mean_length,
                                               h.shape[-1]))
        if stage.pool_layer:
          lo, hi = stage.pool_padding
          length = stage.unpool_length + lo + hi
          if self.unpooling == "blind":
            h = ops.blind_unpool(h, stage.pool_window, stage.pool_stride,
                                 length)
          else:
            h = ops.max_unpool(h, switches[stage.pool_layer], length)
          if (lo, hi) != (0, 0):
            h = h[:, lo:lo + stage.unpool_length]
        if stage.stride == 1 and stage.padding in ("VALID", "SAME"):
          h = nn.ConvTranspose(stage.out_channels, (stage.kernel,),
                               padding=stage.padding, name=stage.name)(h)
        else:
          h = _TransposedConv(stage.out_channels, stage.kernel, stage.stride,
                              tuple(stage.conv_pads), stage.out_shape[0],
                              name=stage.name)(h)
        if h.shape[1:] != stage.out_shape:
          h = h.reshape((h.shape[0],) + stage.out_shape)  # a waveform: (N, T)
      if stage.relu and self.stage_relu:
        h = nn.relu(h)
    return h


def make_decoder(model, layer: int, unpooling: str, input_shape,
                 stage_relu: bool = True) -> Decoder:
  """The (untrained) decoder module D_layer for `model` and inputs of
  `input_shape` (one example's shape).

  stage_relu: end every inner stage in a ReLU (default); False makes each
    stage linear (then the decoder's only nonlinearity is switch unpooling).
  """
  if unpooling not in UNPOOLING:
    raise ValueError(f"unpooling must be one of {UNPOOLING}, got {unpooling!r}")
  return Decoder(stages=decoder_stages(model, layer, input_shape),
                 unpooling=unpooling, stage_relu=stage_relu)


def dummy_inputs(model, layer: int, input_shape):
  """Zeros shaped like one example's activation of `layer` (1, *act) and its
  switches {pool position: int32 (1, L_out, C)}: a decoder's init inputs."""
  net = invertible.describe(model)
  layer = invertible.check_layer(net, layer)
  input_shape = objective.check_input_shape(input_shape,
                                            rank=net.example_rank)
  trace = _abstract_trace(net, input_shape, layer)
  return (jnp.zeros(trace.output.shape, jnp.float32),
          {i + 1: jnp.zeros(sw.shape, jnp.int32)
           for i, sw in enumerate(trace.switches) if sw is not None})


def param_shapes(decoder_module: Decoder, model, layer: int,
                 input_shape) -> dict:
  """{path: shape} of the parameters `decoder_module` has for `model`."""
  y, switches = dummy_inputs(model, layer, input_shape)
  shapes = jax.eval_shape(decoder_module.init, jax.random.key(0), y,
                          switches)["params"]
  return objective.shapes_by_path(shapes)


def encoder_views(model, encoder_params, x, layer: int):
  """The encoder's activations a decoder of `layer` is trained against, from
  ONE forward pass of x (N, *input) up to `layer`.

  Returns:
    (views, switches): views {position: (N, *activation)} holding 0 (x
    itself), the position of `layer` (top_position; for the phone CNN the
    layer number itself), and the input of every conv and dense op up to
    it (the targets of the decoder's stages), all with stopped gradients;
    switches {pool position: int32 (N, L_out, C)}.
  """
  net = invertible.describe(model)
  layer = invertible.check_layer(net, layer)
  trace = invertible.trace(net, encoder_params, x, layer)
  views = {0: x}
  for i, op in enumerate(net.ops_of(layer)):
    if op.weighted and i:
      views[i] = trace.outputs[i - 1]
  views[len(trace.outputs)] = trace.output
  switches = {i + 1: sw for i, sw in enumerate(trace.switches)
              if sw is not None}
  return ({k: jax.lax.stop_gradient(v) for k, v in views.items()},
          {k: jax.lax.stop_gradient(v) for k, v in switches.items()})


def check_switches(decoder_module: Decoder, switches, num_examples: int):
  """The switches a 'switch' decoder needs, checked; None for 'blind'.

  Args:
    decoder_module: the Decoder.
    switches: {pool layer: int (N, L_out, C)} of the ORIGINAL inputs.
    num_examples: N.

  Returns:
    {pool layer: int32 array} (only the pool layers the decoder undoes).

  Raises:
    ValueError: switches missing (or a pool layer's missing), not integer,
      of the wrong shape, or pointing outside [0, pre-pool length).
  """
  if decoder_module.unpooling != "switch":
    return None
  if switches is None:
    raise ValueError("a 'switch' unpooling decoder needs the encoder's "
                     "switches of the original inputs (model.apply(..., "
                     "with_switches=True)); pass switches=")
  stages = [s for s in decoder_module.stages if s.pool_layer]
  missing = [s.pool_layer for s in stages if s.pool_layer not in switches]
  if missing:
    raise ValueError(f"switches for pool layers {missing} are missing")
  out = {}
  for stage in stages:
    sw = switches[stage.pool_layer]
    dtype = getattr(sw, "dtype", None) or np.asarray(sw).dtype
    if not np.issubdtype(dtype, np.integer):
      raise ValueError(f"switches of pool layer {stage.pool_layer} must be "
                       f"integer indices, got dtype {dtype}")
    sw = np.asarray(sw)
    lo, hi = stage.pool_padding
    padded = stage.unpool_length + lo + hi
    pooled = (padded - stage.pool_window) // stage.pool_stride + 1
    want = (num_examples, pooled)
    if sw.ndim != 3 or sw.shape[:2] != want:
      raise ValueError(f"switches of pool layer {stage.pool_layer} must have "
                       f"shape ({num_examples}, {pooled}, C), got {sw.shape}")
    if sw.size and (sw.min() < 0 or sw.max() >= padded):
      raise ValueError(
          f"switches of pool layer {stage.pool_layer} span [{sw.min()}, "
          f"{sw.max()}], outside [0, {padded}), the pre-pool length")
    out[stage.pool_layer] = jax.numpy.asarray(sw, jax.numpy.int32)
  return out
