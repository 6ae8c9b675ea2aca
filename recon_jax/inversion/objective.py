"""The reconstruction objective of the search methods (SPEC A3, thesis 6.4).

    E(X) = 1/2 ||Y_n(X) - Y*_n||^2 + lambda/2 ||X||^2

for one example X (F, T) (a spectrogram, freq x frames) and the target
activation Y*_n of layer n of a PhoneCNN. Everything here is per example and
pure; the methods vmap it over examples and over the K averaged runs.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.models import phone_cnn
from recon_jax.ops import checks

# The thesis's spectrograms: 201 frequency bins x 16 frames (SPEC A1).
INPUT_SHAPE = (201, 16)

EnergyFn = Callable[[jax.Array, jax.Array], jax.Array]


def layer_activation(model: phone_cnn.PhoneCNN, params, x: jax.Array,
                     layer: int) -> jax.Array:
  """Layer `layer`'s activation for ONE example x (F, T): (*activation)."""
  return model.apply({"params": params}, x[None], layer=layer)[0]


def make_energy(model: phone_cnn.PhoneCNN, params, layer: int,
                weight_decay: float) -> EnergyFn:
  """E for (model, params, layer) as a pure function energy(x, target).

  Args:
    model: the encoder (its `padding` decides the activation shapes).
    params: its parameters (closed over, not differentiated).
    layer: thesis layer number n.
    weight_decay: lambda of the L2 term.

  Returns:
    energy(x (F, T), target (*activation)) -> float32 scalar E.
  """
  model.check_layer(layer)

  def energy(x, target):
    diff = layer_activation(model, params, x, layer) - target
    return 0.5 * jnp.sum(diff * diff) + 0.5 * weight_decay * jnp.sum(x * x)

  return energy


def over_runs(fn):
  """fn(x (F, T), target (*act)) -> the same over runs: x (N, K, F, T) and
  targets (N, *act), the K runs of an example sharing its target."""
  return jax.vmap(jax.vmap(fn, in_axes=(0, None)), in_axes=(0, 0))


@functools.lru_cache(maxsize=64)
def make_runs_energy(model: phone_cnn.PhoneCNN, layer: int,
                     weight_decay: float):
  """Jitted E over runs: f(params, x (N, K, F, T), targets (N, *act)) -> (N, K)."""
  def runs_energy(params, x, targets):
    return over_runs(make_energy(model, params, layer, weight_decay))(
        x, targets)
  return jax.jit(runs_energy)


def layer_targets(model: phone_cnn.PhoneCNN, params, x: jax.Array,
                  layer: int) -> jax.Array:
  """Y*_n for a batch of originals x (N, F, T): (N, *activation)."""
  model.check_layer(layer)
  checks.check_rank(x, (3,), "originals", "(N, freq, frames)")
  checks.check_finite(x, "originals")
  return _targets_fn(model, layer)(params, jnp.asarray(x, jnp.float32))


@functools.lru_cache(maxsize=64)
def _targets_fn(model, layer):
  return jax.jit(lambda p, x: model.apply({"params": p}, x, layer=layer))


def check_targets(model: phone_cnn.PhoneCNN, layer: int, targets,
                  input_shape=INPUT_SHAPE):
  """Validates target activations Y*_n (N, *activation) for `layer`.

  Raises ValueError naming the problem: a layer the model lacks, an array
  whose shape is not layer `layer`'s activation shape for inputs of
  `input_shape`, or NaN/Inf among the targets.
  """
  spec = model.check_layer(layer)
  want = _activation_shape(model, tuple(input_shape), layer)
  shape = tuple(np.shape(targets))
  if len(shape) != len(want) + 1 or shape[1:] != tuple(want):
    raise ValueError(
        f"target activations for layer {layer} ({spec.name}) must have shape "
        f"(N, {', '.join(map(str, want))}) for inputs of shape "
        f"{tuple(input_shape)}, got {shape}")
  if shape[0] == 0:
    raise ValueError("target activations: empty batch")
  checks.check_finite(targets, f"target activations for layer {layer}")


@functools.lru_cache(maxsize=256)
def _activation_shape(model, input_shape, layer):
  return tuple(phone_cnn.activation_shape(model, (1,) + input_shape,
                                          layer)[1:])


def check_input_batch(x, num_examples: int, input_shape, name: str):
  """Validates a batch of spectrograms (N, F, T) (starts, originals)."""
  want = (num_examples,) + tuple(input_shape)
  if tuple(np.shape(x)) != want:
    raise ValueError(f"{name} must have shape {want}, got {np.shape(x)}")
  checks.check_finite(x, name)

