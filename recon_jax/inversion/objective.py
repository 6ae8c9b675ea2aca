"""The reconstruction objective of the search methods (SPEC A3, thesis 6.4).

    E(X) = 1/2 ||Y_n(X) - Y*_n||^2 + lambda/2 ||X||^2

for one example X (F, T) (a spectrogram, freq x frames) and the target
activation Y*_n of layer n of a PhoneCNN. Everything here is per example and
pure; the methods vmap it over examples and over the K averaged runs.

Also what every method shares: the checks of the problem (input shape,
parameters, targets, starts), the K starts per example, the Gauss-Newton
curvature of E, and the average of the K runs that leaves diverged runs out.
The input shape (F, T) always comes from the caller's data (or a decoder, or
a start), never from a constant.
"""
import functools
import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.models import phone_cnn
from recon_jax.ops import checks

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


def curvature(model: phone_cnn.PhoneCNN, params, layer: int, x: jax.Array,
              weight_decay: float, iters: int) -> jax.Array:
  """Largest eigenvalue of J^T J + lambda I at ONE input x (F, T): scalar.

  J is the Jacobian of layer `layer`'s activation at x; power iteration
  (`iters` steps, from a fixed non-symmetric start) on the Gauss-Newton
  matrix, which bounds E's curvature where the second-order term is small.
  A lower bound that tightens with iters. Used by backprop's 'curvature'
  step scale and by annealing's input-RMS estimate.
  """
  fn = lambda z: layer_activation(model, params, z, layer)  # noqa: E731
  _, jvp = jax.linearize(fn, x)
  vjp = jax.linear_transpose(jvp, x)
  rows, cols = x.shape
  v = (jnp.cos(0.37 * jnp.arange(rows))[:, None]
       + jnp.sin(1.3 * jnp.arange(cols))[None, :] + 1.5).astype(x.dtype)
  v = v / jnp.linalg.norm(v)

  def body(_, carry):
    v, _ = carry
    w = vjp(jvp(v))[0] + weight_decay * v
    norm = jnp.linalg.norm(w)
    return w / jnp.maximum(norm, 1e-30), norm
  _, lam = jax.lax.fori_loop(0, iters, body, (v, jnp.zeros((), x.dtype)))
  return jnp.maximum(lam, weight_decay)


# ------------------------------------------------------------------ checks


def check_input_shape(input_shape, what: str = "input_shape") -> tuple:
  """(F, T) as a tuple of two positive ints, else ValueError."""
  if input_shape is None:
    raise ValueError(
        f"{what} is needed: the (freq bins, frames) shape of the network's "
        "input, e.g. inputs.shape[1:] of the spectrograms the targets came "
        "from")
  try:
    shape = tuple(input_shape)
  except TypeError:
    shape = None
  if (shape is None or len(shape) != 2 or not all(
      isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
      for s in shape)):
    raise ValueError(f"{what} must be (freq bins, frames), two integers >= 1,"
                     f" got {input_shape!r}")
  return tuple(int(s) for s in shape)


def resolve_input_shape(input_shape=None, *, init=None,
                        decoder_shape=None) -> tuple:
  """The network's input shape (F, T) for a reconstruction.

  Given explicitly, or else taken from a decoder (the shape it was trained
  on) or from a start X0 (its last two axes). Where several are known they
  must agree in full (a (200, 16) start for (201, 16) inputs is refused, not
  reshaped).

  Raises:
    ValueError: none of the three is given, the shape is not two positive
      ints, or two of them disagree.
  """
  sources = []
  if input_shape is not None:
    sources.append(("input_shape", check_input_shape(input_shape)))
  if decoder_shape is not None:
    sources.append(("the decoder's input shape",
                    check_input_shape(decoder_shape, "decoder input_shape")))
  if init is not None:
    if np.ndim(init) < 2:
      raise ValueError(f"start X0 must be (N, F, T) or (N, K, F, T), got "
                       f"shape {np.shape(init)}")
    sources.append(("the start X0's (F, T)", tuple(np.shape(init)[-2:])))
  if not sources:
    check_input_shape(None)
  name, shape = sources[0]
  for other, other_shape in sources[1:]:
    if other_shape != shape:
      raise ValueError(f"{name} {shape} does not match {other} "
                       f"{other_shape}")
  return shape


@functools.lru_cache(maxsize=64)
def _param_shapes(model: phone_cnn.PhoneCNN, input_shape: tuple) -> dict:
  try:
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1,) + input_shape))["params"]
  except (TypeError, ValueError) as e:
    raise ValueError(f"inputs of shape {input_shape} do not fit this "
                     f"PhoneCNN ({type(e).__name__}: {e})") from None
  return shapes_by_path(shapes)


def shapes_by_path(tree) -> dict:
  """{path string: shape} of a pytree's leaves."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf))
          for path, leaf in leaves}


def check_params_fit(model: phone_cnn.PhoneCNN, params, input_shape):
  """ValueError unless `params` are `model`'s parameters for inputs of
  `input_shape` (F, T): same tree and every parameter's shape the one that
  model.init gives for such inputs. Catches e.g. 200-bin inputs for a
  network made for 201 bins (its first dense layer's kernel differs), which
  a flattened-size check would miss for a transposed (16, 201) input."""
  input_shape = check_input_shape(input_shape)
  want = _param_shapes(model, input_shape)
  got = shapes_by_path(params)
  if got != want:
    diff = [f"{k}: has {got.get(k, 'nothing')}, needs {want.get(k, 'nothing')}"
            for k in sorted(set(want) | set(got)) if got.get(k) != want.get(k)]
    raise ValueError(
        f"the network's parameters do not fit inputs of shape {input_shape} "
        f"({'; '.join(diff[:4])}{'; ...' if len(diff) > 4 else ''}); were they"
        " made for another input shape or another architecture?")


def layer_targets(model: phone_cnn.PhoneCNN, params, x: jax.Array,
                  layer: int) -> jax.Array:
  """Y*_n for a batch of originals x (N, F, T): (N, *activation)."""
  model.check_layer(layer)
  checks.check_rank(x, (3,), "originals", "(N, freq, frames)")
  check_params_fit(model, params, np.shape(x)[1:])
  checks.check_finite(x, "originals")
  return _targets_fn(model, layer)(params, jnp.asarray(x, jnp.float32))


@functools.lru_cache(maxsize=64)
def _targets_fn(model, layer):
  return jax.jit(lambda p, x: model.apply({"params": p}, x, layer=layer))


def check_targets(model: phone_cnn.PhoneCNN, layer: int, targets,
                  input_shape):
  """Validates target activations Y*_n (N, *activation) for `layer`.

  Raises ValueError naming the problem: a layer the model lacks, an array
  whose shape is not layer `layer`'s activation shape for inputs of
  `input_shape` (F, T) (the full shape is compared), or NaN/Inf among the
  targets.
  """
  spec = model.check_layer(layer)
  input_shape = check_input_shape(input_shape)
  want = activation_shape(model, input_shape, layer)
  shape = tuple(np.shape(targets))
  if len(shape) != len(want) + 1 or shape[1:] != tuple(want):
    raise ValueError(
        f"target activations for layer {layer} ({spec.name}) must have shape "
        f"(N, {', '.join(map(str, want))}) for inputs of shape "
        f"{input_shape}, got {shape}")
  if shape[0] == 0:
    raise ValueError("target activations: empty batch")
  checks.check_finite(targets, f"target activations for layer {layer}")


@functools.lru_cache(maxsize=256)
def activation_shape(model, input_shape: tuple, layer: int) -> tuple:
  """Per-example shape of layer `layer`'s activation for (F, T) inputs."""
  _param_shapes(model, tuple(input_shape))  # a clear error if they do not fit
  return tuple(phone_cnn.activation_shape(model, (1,) + tuple(input_shape),
                                          layer)[1:])


def check_problem(model: phone_cnn.PhoneCNN, params, layer: int, targets,
                  input_shape) -> jax.Array:
  """All checks of a reconstruction problem; returns the targets (float32).

  Raises:
    ValueError: see check_input_shape, check_params_fit, check_targets.
  """
  input_shape = check_input_shape(input_shape)
  model.check_layer(layer)
  check_params_fit(model, params, input_shape)
  check_targets(model, layer, targets, input_shape)
  return jnp.asarray(targets, jnp.float32)


def check_input_batch(x, num_examples: int, input_shape, name: str):
  """Validates a batch of spectrograms (N, F, T) (starts, originals)."""
  want = (num_examples,) + tuple(input_shape)
  if tuple(np.shape(x)) != want:
    raise ValueError(f"{name} must have shape {want}, got {np.shape(x)}")
  checks.check_finite(x, name)


# ------------------------------------------------------------ starts, runs


def starting_points(key: jax.Array, num_examples: int, num_runs: int,
                    input_shape, init_scale: float, init=None,
                    name: str = "start X0") -> jax.Array:
  """The K starts per example: (N, K, F, T).

  init None: Gaussian noise of std init_scale. init (N, F, T): that start,
  repeated K times, plus init_scale noise (so the K runs differ). init
  (N, K, F, T): used as given.

  Raises:
    ValueError: init of any other shape (the full shape is compared), or
      holding NaN/Inf (in every branch).
  """
  input_shape = check_input_shape(input_shape)
  shape = (num_examples, num_runs) + input_shape
  noise = init_scale * jax.random.normal(key, shape, jnp.float32)
  if init is None:
    return noise
  got = tuple(np.shape(init))
  if got == shape:
    checks.check_finite(init, f"{name} (N, K, F, T)")
    return jnp.asarray(init, jnp.float32)
  if got != shape[:1] + shape[2:]:
    raise ValueError(
        f"{name} must have shape {shape[:1] + shape[2:]} (one start per "
        f"example) or {shape} (one per run), got {got}")
  checks.check_finite(init, name)
  return jnp.asarray(init, jnp.float32)[:, None] + noise


def average_runs(runs: jax.Array, run_diverged: jax.Array):
  """Each example's reconstruction: the mean of its runs that did not diverge.

  Args:
    runs: (N, K, F, T).
    run_diverged: bool (N, K).

  Returns:
    (reconstructions (N, F, T), diverged (N,) bool: every run of the example
    diverged). A diverged example's reconstruction is all zeros (the mean
    spectrogram, i.e. silence, in network-input units), never NaN; callers
    must look at `diverged` before scoring it.
  """
  ok = ~jnp.asarray(run_diverged, bool)
  count = jnp.sum(ok, axis=1)
  total = jnp.sum(jnp.where(ok[..., None, None], runs, 0.0), axis=1)
  rec = total / jnp.maximum(count, 1)[:, None, None].astype(runs.dtype)
  return rec, count == 0


def run_summary(summary: dict, run_diverged: jax.Array, runs: jax.Array):
  """(reconstructions, runs, summary) with the diverged flags filled in.

  summary gains 'run_diverged' (N, K) and 'diverged' (N,) (every run of the
  example diverged; its reconstruction is then zeros, see average_runs).
  """
  rec, diverged = average_runs(runs, run_diverged)
  return rec, runs, {**summary, "run_diverged": jnp.asarray(run_diverged,
                                                             bool),
                     "diverged": diverged}


def runs_finite(runs: jax.Array) -> jax.Array:
  """bool (N, K): every entry of the run's X is finite."""
  return jnp.all(jnp.isfinite(runs), axis=(-2, -1))
