"""The decoder network D_n from layer n of the encoder back to its input
(SPEC A3.3), and the encoder views it is trained on.

A decoder mirrors the encoder (a PhoneCNN, normally the padded 'SAME' one)
from layer n down to the input, one decoder STAGE per encoder unit (a conv
block conv -> ReLU -> pool, or a dense layer with its ReLU), run innermost
first:
  conv block:  [unpool, if layer n reaches the block's pool] -> transposed
               conv (own, untied weights; 'SAME' padding for a 'SAME'
               encoder so the length returns to the block's input length,
               'VALID' for a 'VALID' one, where it grows back by k - 1)
  dense layer: Dense back to the layer's input size (reshaped to (L, C) when
               that input was a flattened conv activation).
Each stage's output estimates the input of its encoder unit. Every inner
unit's input is a ReLU (or pool-of-ReLU) output, so every stage but the
outermost ends in a ReLU (the ReLUs "between blocks where the encoder had
one"); the outermost stage, which estimates the mean-subtracted spectrogram
(negative values included), is linear.

Unpooling: 'blind' (default: each value copied over its window, averaged
where windows overlap; no information about the input) or 'switch'
(max_unpool at the encoder's recorded argmax; the switches of the ORIGINAL
input must then be passed, and they leak input information, see
mangled.py).
"""
import dataclasses
import math

import flax.linen as nn
import jax
import numpy as np

from recon_jax import ops
from recon_jax.inversion import objective
from recon_jax.models import phone_cnn

UNPOOLING = ("blind", "switch")


@dataclasses.dataclass(frozen=True)
class DecoderStage:
  """One decoder stage, mirroring one encoder unit.

  name: parameter-tree name ('block3', 'fc2', ...).
  kind: 'conv' or 'dense'.
  source_layer: encoder layer whose activation the stage decodes.
  target_layer: encoder layer whose output it estimates (0: the input X).
  out_shape: per-example shape of that target.
  kernel: conv stages: the encoder conv's kernel size.
  pool_layer: conv stages: the encoder pool layer to undo (0: none).
  unpool_length: the pre-pool length to unpool to.
  relu: a ReLU on the output (all stages but the outermost).
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


def decoder_stages(model: phone_cnn.PhoneCNN, layer: int,
                   input_shape) -> tuple[DecoderStage, ...]:
  """The stages of D_layer for `model` and inputs (F, T), innermost first."""
  model.check_layer(layer)
  input_shape = objective.check_input_shape(input_shape)
  shapes = {0: input_shape}
  for spec in model.layers[:layer]:
    shapes[spec.number] = objective.activation_shape(model, input_shape,
                                                     spec.number)
  units = []  # (kind, layers of the unit)
  for spec in model.layers[:layer]:
    if spec.kind in ("conv", "dense"):
      units.append((spec.kind, [spec]))
    else:
      units[-1][1].append(spec)
  stages = []
  for index, (kind, specs) in enumerate(units):
    first = specs[0]
    pool = [s for s in specs if s.kind == "pool"]
    stages.append(DecoderStage(
        name=f"block{first.block + 1}" if kind == "conv" else first.name,
        kind=kind,
        source_layer=specs[-1].number,
        target_layer=first.number - 1,
        out_shape=shapes[first.number - 1],
        kernel=model.conv_kernels[first.block] if kind == "conv" else 0,
        pool_layer=pool[0].number if pool else 0,
        unpool_length=shapes[pool[0].number - 1][0] if pool else 0,
        relu=index > 0))
  return tuple(reversed(stages))


class Decoder(nn.Module):
  """D_n: (N, *activation of layer n) -> (N, F, T). See the module doc."""
  stages: tuple
  unpooling: str = "blind"
  pool_window: int = 5
  pool_stride: int = 2
  conv_padding: str = "SAME"
  stage_relu: bool = True

  @nn.compact
  def __call__(self, y, switches=None, *, start: int = 0,
               stop: int | None = None):
    """Runs stages[start:stop] (all by default) on y.

    Args:
      y: (N, *source shape of stages[start]).
      switches: 'switch' unpooling: {pool layer: int (N, L_out, C)} from the
        encoder run on the original inputs.
    """
    h = y
    for stage in self.stages[start:stop]:
      if stage.kind == "dense":
        h = h.reshape((h.shape[0], -1))
        h = nn.Dense(math.prod(stage.out_shape), name=stage.name)(h)
        h = h.reshape((h.shape[0],) + stage.out_shape)
      else:
        if stage.pool_layer:
          if self.unpooling == "blind":
            h = ops.blind_unpool(h, self.pool_window, self.pool_stride,
                                 stage.unpool_length)
          else:
            h = ops.max_unpool(h, switches[stage.pool_layer],
                               stage.unpool_length)
        h = nn.ConvTranspose(stage.out_shape[-1], (stage.kernel,),
                             padding=self.conv_padding, name=stage.name)(h)
      if stage.relu and self.stage_relu:
        h = nn.relu(h)
    return h


def make_decoder(model: phone_cnn.PhoneCNN, layer: int, unpooling: str,
                 input_shape, stage_relu: bool = True) -> Decoder:
  """The (untrained) decoder module D_layer for `model` and inputs (F, T).

  stage_relu: end every inner stage in a ReLU (default); False makes each
    stage linear (then the decoder's only nonlinearity is switch unpooling).
  """
  if unpooling not in UNPOOLING:
    raise ValueError(f"unpooling must be one of {UNPOOLING}, got {unpooling!r}")
  return Decoder(stages=decoder_stages(model, layer, input_shape),
                 unpooling=unpooling, pool_window=model.pool_window,
                 pool_stride=model.pool_stride, conv_padding=model.padding,
                 stage_relu=stage_relu)


def dummy_inputs(model: phone_cnn.PhoneCNN, layer: int, input_shape):
  """Zeros shaped like one example's activation of `layer` (1, *act) and its
  switches {pool layer: int32 (1, L_out, C)}: a decoder's init inputs."""
  input_shape = objective.check_input_shape(input_shape)
  x = jax.ShapeDtypeStruct((1,) + input_shape, jax.numpy.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  y, switches = jax.eval_shape(
      lambda v, x: model.apply(v, x, layer=layer, with_switches=True),
      variables, x)
  return (jax.numpy.zeros(y.shape, jax.numpy.float32),
          {k: jax.numpy.zeros(v.shape, jax.numpy.int32)
           for k, v in switches.items()})


def param_shapes(decoder_module: Decoder, model: phone_cnn.PhoneCNN,
                 layer: int, input_shape) -> dict:
  """{path: shape} of the parameters `decoder_module` has for `model`."""
  y, switches = dummy_inputs(model, layer, input_shape)
  shapes = jax.eval_shape(decoder_module.init, jax.random.key(0), y,
                          switches)["params"]
  return objective.shapes_by_path(shapes)


def encoder_views(model: phone_cnn.PhoneCNN, encoder_params, x, layer: int):
  """The encoder's activations a decoder of `layer` is trained against, from
  ONE forward pass of x (N, F, T) up to `layer`.

  Returns:
    (views, switches): views {layer number: (N, *activation)} holding 0 (x
    itself), `layer`, and the input of every conv and dense layer up to
    `layer` (the targets of the decoder's stages), all with stopped
    gradients; switches {pool layer: int32 (N, L_out, C)}.
  """
  spec = model.check_layer(layer)
  inputs_of = {s.name: s.number - 1 for s in model.layers[:spec.number]
               if s.kind in ("conv", "dense")}
  captured = {}

  def capture(next_fun, args, kwargs, context):
    module = context.module
    if (context.method_name == "__call__" and module.name in inputs_of
        and isinstance(module.parent, phone_cnn.PhoneCNN) and args):
      captured[inputs_of[module.name]] = args[0]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(capture):
    top, switches = model.apply({"params": encoder_params}, x, layer=layer,
                                with_switches=True)
  input_shape = tuple(x.shape[1:])
  views = {0: x}
  for number, value in captured.items():
    if number:  # a dense layer's input comes flattened: back to its shape
      views[number] = value.reshape(
          (value.shape[0],) + objective.activation_shape(model, input_shape,
                                                         number))
  views[layer] = top
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
    pooled = (stage.unpool_length - decoder_module.pool_window
              ) // decoder_module.pool_stride + 1
    want = (num_examples, pooled)
    if sw.ndim != 3 or sw.shape[:2] != want:
      raise ValueError(f"switches of pool layer {stage.pool_layer} must have "
                       f"shape ({num_examples}, {pooled}, C), got {sw.shape}")
    if sw.size and (sw.min() < 0 or sw.max() >= stage.unpool_length):
      raise ValueError(
          f"switches of pool layer {stage.pool_layer} span [{sw.min()}, "
          f"{sw.max()}], outside [0, {stage.unpool_length}), the pre-pool "
          "length")
    out[stage.pool_layer] = jax.numpy.asarray(sw, jax.numpy.int32)
  return out
