"""The thesis's phone-classification CNN (docs/methods.md, A2), frequency
convolution.

Input: spectrograms (N, F, T) = (N, 201, 16). Frequency is the convolved
axis and the T time frames are the channels, so a 1-D kernel of width k over
frequency with T input channels is the thesis's 2-D kernel spanning all
frames. Channels-last throughout: activations are (N, L, C).

Layers are numbered as in the thesis, one number per operation, dropout not
counted: for the default 3 conv blocks and 4 dense layers
  1 conv1, 2 relu1, 3 pool1, 4 conv2, 5 relu2, 6 pool2, 7 conv3, 8 relu3,
  9 pool3, 10 fc1, 11 relu, 12 fc2, 13 relu, 14 fc3, 15 relu, 16 fc4 (logits).
"""
import dataclasses
import functools
import operator
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from recon_jax import ops
from recon_jax.models import invertible


@dataclasses.dataclass(frozen=True)
class Layer:
  """One numbered operation of the network.

  number: thesis layer number (from 1). kind: 'conv', 'relu', 'pool',
  'dense'. block: index (from 0) of its conv block (conv, relu, pool) or
  of its dense layer (dense); a ReLU after dense layer i has block
  num_conv + i.
  """
  number: int
  kind: str
  block: int
  name: str


class PhoneCNN(nn.Module):
  """3 x (conv -> ReLU -> max-pool over frequency), then dense layers.

  padding: 'VALID' is the classifier of the thesis; 'SAME' is the "padded"
  encoder whose convolutions keep the frequency length, so that each
  layer's transpose returns its input's shape (the decoders' encoder).
  """
  conv_features: Sequence[int] = (32, 64, 64)
  conv_kernels: Sequence[int] = (7, 5, 3)
  pool_window: int = 5
  pool_stride: int = 2
  dense_features: Sequence[int] = (512, 256, 128)
  num_classes: int = 48
  padding: str = "VALID"
  dropout_rate: float = 0.5

  def __post_init__(self):
    if len(self.conv_features) != len(self.conv_kernels):
      raise ValueError("conv_features and conv_kernels must have equal length,"
                       f" got {self.conv_features} and {self.conv_kernels}")
    if self.padding not in ("VALID", "SAME"):
      raise ValueError(f"padding must be 'VALID' or 'SAME', got {self.padding}")
    super().__post_init__()

  @property
  def layers(self) -> tuple[Layer, ...]:
    return network_layers(len(self.conv_features), len(self.dense_features) + 1)

  @property
  def num_layers(self) -> int:
    return len(self.layers)

  def check_layer(self, layer: int) -> Layer:
    """The Layer numbered `layer`; ValueError naming the valid range if none."""
    try:
      number = None if isinstance(layer, bool) else operator.index(layer)
    except TypeError:
      number = None
    if number is None or not 1 <= number <= self.num_layers:
      raise ValueError(f"layer {layer!r} does not exist: this PhoneCNN has "
                       f"layers 1..{self.num_layers} "
                       f"({', '.join(f'{l.number} {l.name}' for l in self.layers)})")
    return self.layers[number - 1]

  def invertible(self) -> invertible.InvertibleNet:
    """The network as the inversion protocol describes it
    (recon_jax.models.invertible): one op per thesis layer, numbered alike;
    examples (F, T), frequency the conv axis, frames the channels. Dropout
    is left out (evaluation mode)."""
    return _describe(self)

  @nn.compact
  def __call__(self, x, *, train: bool = False, layer: int | None = None,
               with_switches: bool = False):
    """Runs the network up to and including `layer`.

    Args:
      x: (N, F, T) spectrograms (mean-subtracted magnitudes).
      train: enables dropout (needs a 'dropout' rng).
      layer: thesis layer number to stop at; None runs to the logits.
      with_switches: also return the max-pool switches of every pool layer
        run, as {layer number: int32 (N, L_out, C) indices into L}.

    Returns:
      The activation of `layer` ((N, L, C) for conv layers, (N, D) for dense
      ones), and the switches dict if `with_switches`.
    """
    if x.ndim != 3:
      raise ValueError(f"PhoneCNN expects (N, freq, frames) input, got shape "
                       f"{x.shape}")
    stop = self.num_layers if layer is None else self.check_layer(layer).number
    switches = {}
    h = x
    for spec in self.layers[:stop]:
      if spec.kind == "conv":
        h = nn.Conv(self.conv_features[spec.block], (self.conv_kernels[spec.block],),
                    padding=self.padding, name=spec.name)(h)
      elif spec.kind == "relu":
        h = nn.relu(h)
      elif spec.kind == "pool":
        h, switches[spec.number] = ops.max_pool_with_argmax(
            h, self.pool_window, self.pool_stride)
      else:  # dense
        if h.ndim == 3:
          h = h.reshape((h.shape[0], -1))
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
        features = (tuple(self.dense_features) + (self.num_classes,))[spec.block]
        h = nn.Dense(features, name=spec.name)(h)
    return (h, switches) if with_switches else h


def network_layers(num_conv: int, num_dense: int) -> tuple[Layer, ...]:
  """The numbered operations of a net of conv blocks then dense layers."""
  layers = []
  for i in range(num_conv):
    for kind in ("conv", "relu", "pool"):
      layers.append(Layer(len(layers) + 1, kind, i, f"{kind}{i + 1}"))
  for i in range(num_dense):
    layers.append(Layer(len(layers) + 1, "dense", i, f"fc{i + 1}"))
    if i < num_dense - 1:
      layers.append(Layer(len(layers) + 1, "relu", num_conv + i,
                          f"relu_fc{i + 1}"))
  return tuple(layers)


@functools.lru_cache(maxsize=64)
def _describe(model: PhoneCNN) -> invertible.InvertibleNet:
  dense = tuple(model.dense_features) + (model.num_classes,)
  op_list = []
  for spec in model.layers:
    if spec.kind == "conv":
      op_list.append(invertible.conv(
          model.conv_features[spec.block], model.conv_kernels[spec.block],
          padding=model.padding, name=spec.name))
    elif spec.kind == "relu":
      op_list.append(invertible.relu(spec.name))
    elif spec.kind == "pool":
      op_list.append(invertible.max_pool(model.pool_window, model.pool_stride,
                                         name=spec.name))
    else:
      op_list.append(invertible.dense(dense[spec.block], name=spec.name))
  return invertible.InvertibleNet(tuple(op_list), name="PhoneCNN",
                                  unit="layer", waveform=False)


def phone_cnn_from_config(config) -> PhoneCNN:
  """Builds a PhoneCNN from a config's `model` fields (ml_collections)."""
  m = config.model
  return PhoneCNN(
      conv_features=tuple(m.conv_features),
      conv_kernels=tuple(m.conv_kernels),
      pool_window=m.pool_window,
      pool_stride=m.pool_stride,
      dense_features=tuple(m.dense_features),
      num_classes=m.num_classes,
      padding=m.padding,
      dropout_rate=m.dropout_rate,
  )


def activation_shape(model: PhoneCNN, input_shape, layer: int):
  """Shape of layer `layer`'s activation for an input of `input_shape`."""
  model.check_layer(layer)
  variables = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(input_shape)))
  out = jax.eval_shape(
      lambda v: model.apply(v, jnp.zeros(input_shape), layer=layer), variables)
  return out.shape
