"""The reconstruction objective of the search methods (docs/methods.md, A3;
thesis 6.4).

    E(X) = 1/2 ||Y_n(X) - Y*_n||^2 + lambda/2 ||X||^2

for one example X and the target activation Y*_n of layer n of a network
of the inversion protocol (recon_jax.models.invertible): X (F, T) a
spectrogram (freq x frames) for the thesis's PhoneCNN, (T,) a waveform for
CNN12, (L,) or (L, C) for a user's declared net. Below, "(F, T)" stands for
whatever one example's shape is. Everything here is per example and pure;
the methods vmap it over examples and over the K averaged runs.

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

from recon_jax.models import invertible
from recon_jax.ops import checks

EnergyFn = Callable[[jax.Array, jax.Array], jax.Array]


def layer_activation(model, params, x: jax.Array, layer: int) -> jax.Array:
  """Layer `layer`'s activation for ONE example x: (*activation).

  model: any network of the inversion protocol (a PhoneCNN, a CNN12, an
  InvertibleNet or DeclaredNet); x one example of its input ((F, T) for the
  phone CNN, (T,) for CNN12).
  """
  return invertible.activation(model, params, x[None], layer)[0]


def example_rank(model) -> int:
  """Axes of one input example of `model`: 1 (waveforms) or 2 ((L, C))."""
  return invertible.describe(model).example_rank


def check_layer(model, layer) -> int:
  """`layer` as a validated int (ValueError naming the model's layers)."""
  return invertible.check_layer(invertible.describe(model), layer)


def make_energy(model, params, layer: int, weight_decay: float) -> EnergyFn:
  """E for (model, params, layer) as a pure function energy(x, target).

  Args:
    model: the encoder, any network of the inversion protocol (for the
      phone CNN its `padding` decides the activation shapes).
    params: its parameters (closed over, not differentiated).
    layer: its layer number n (thesis numbering for the phone CNN, blocks
      for CNN12).
    weight_decay: lambda of the L2 term.

  Returns:
    energy(x (one example), target (*activation)) -> float32 scalar E.
  """
  check_layer(model, layer)

  def energy(x, target):
    diff = layer_activation(model, params, x, layer) - target
    return 0.5 * jnp.sum(diff * diff) + 0.5 * weight_decay * jnp.sum(x * x)

  return energy


def over_runs(fn):
  """fn(x (F, T), target (*act)) -> the same over runs: x (N, K, F, T) and
  targets (N, *act), the K runs of an example sharing its target (any
  example shape)."""
  return jax.vmap(jax.vmap(fn, in_axes=(0, None)), in_axes=(0, 0))


@functools.lru_cache(maxsize=64)
def make_runs_energy(model, layer: int, weight_decay: float):
  """Jitted E over runs: f(params, x (N, K, F, T), targets (N, *act)) -> (N, K)."""
  def runs_energy(params, x, targets):
    return over_runs(make_energy(model, params, layer, weight_decay))(
        x, targets)
  return jax.jit(runs_energy)


def curvature(model, params, layer: int, x: jax.Array,
              weight_decay: float, iters: int) -> jax.Array:
  """Largest eigenvalue of J^T J + lambda I at ONE input x (F, T) (or (T,)):
  scalar.

  J is the Jacobian of layer `layer`'s activation at x; power iteration
  (`iters` steps, from a fixed non-symmetric start) on the Gauss-Newton
  matrix, which bounds E's curvature where the second-order term is small.
  A lower bound that tightens with iters. Used by backprop's 'curvature'
  step scale and by annealing's input-RMS estimate.
  """
  fn = lambda z: layer_activation(model, params, z, layer)  # noqa: E731
  _, jvp = jax.linearize(fn, x)
  vjp = jax.linear_transpose(jvp, x)
  rows, cols = x.shape if x.ndim == 2 else (x.shape[0], 1)
  v = (jnp.cos(0.37 * jnp.arange(rows))[:, None]
       + jnp.sin(1.3 * jnp.arange(cols))[None, :] + 1.5).astype(x.dtype)
  v = v.reshape(x.shape)
  v = v / jnp.linalg.norm(v)

  def body(_, carry):
    v, _ = carry
    w = vjp(jvp(v))[0] + weight_decay * v
    norm = jnp.linalg.norm(w)
    return w / jnp.maximum(norm, 1e-30), norm
  _, lam = jax.lax.fori_loop(0, iters, body, (v, jnp.zeros((), x.dtype)))
  return jnp.maximum(lam, weight_decay)


# ------------------------------------------------------------------ checks


def check_input_shape(input_shape, what: str = "input_shape",
                      rank: int | None = 2) -> tuple:
  """One example's shape as a tuple of positive ints, else ValueError.

  rank: 2 for (F, T) (L, C) examples, 1 for waveforms (T,), None for
  either.
  """
  want = {2: "(freq bins, frames) (or (length, channels)), two integers",
          1: "(samples,), one integer",
          None: "(samples,) or (freq bins, frames), one or two integers"}[rank]
  if input_shape is None:
    raise ValueError(
        f"{what} is needed: the shape of one example of the network's "
        "input, e.g. inputs.shape[1:] of the spectrograms (or waveforms) the "
        "targets came from")
  try:
    shape = tuple(input_shape)
  except TypeError:
    shape = None
  if (shape is None or len(shape) not in ((1, 2) if rank is None else (rank,))
      or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                 and s >= 1 for s in shape)):
    raise ValueError(f"{what} must be {want} >= 1, got {input_shape!r}")
  return tuple(int(s) for s in shape)


def resolve_input_shape(input_shape=None, *, init=None,
                        decoder_shape=None, rank: int = 2) -> tuple:
  """The network's input shape (F, T) ((T,) for rank 1) for a
  reconstruction.

  Given explicitly, or else taken from a decoder (the shape it was trained
  on) or from a start X0 (its last `rank` axes). Where several are known
  they must agree in full (a (200, 16) start for (201, 16) inputs is
  refused, not reshaped).

  Raises:
    ValueError: none of the three is given, the shape is not `rank`
      positive ints, or two of them disagree.
  """
  sources = []
  if input_shape is not None:
    sources.append(("input_shape", check_input_shape(input_shape, rank=rank)))
  if decoder_shape is not None:
    sources.append(("the decoder's input shape",
                    check_input_shape(decoder_shape, "decoder input_shape",
                                      rank=rank)))
  if init is not None:
    axes = "(F, T)" if rank == 2 else "(T,)"
    if np.ndim(init) < rank:
      raise ValueError(f"start X0 must be (N, {axes[1:-1]}) or "
                       f"(N, K, {axes[1:-1]}), got shape {np.shape(init)}")
    sources.append((f"the start X0's {axes}",
                    tuple(np.shape(init)[-rank:])))
  if not sources:
    check_input_shape(None)
  name, shape = sources[0]
  for other, other_shape in sources[1:]:
    if other_shape != shape:
      raise ValueError(f"{name} {shape} does not match {other} "
                       f"{other_shape}")
  return shape


@functools.lru_cache(maxsize=64)
def _param_shapes(model, input_shape: tuple) -> dict:
  net = invertible.describe(model)
  try:
    return invertible.param_shapes(net, input_shape)
  except (TypeError, ValueError) as e:
    raise ValueError(f"inputs of shape {input_shape} do not fit this "
                     f"{net.name} ({type(e).__name__}: {e})") from None


def shapes_by_path(tree) -> dict:
  """{path string: shape} of a pytree's leaves."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf))
          for path, leaf in leaves}


def check_params_fit(model, params, input_shape):
  """ValueError unless `params` are `model`'s parameters for inputs of
  `input_shape` (one example's shape): every parameter the network's
  description uses is there with the shape its ops need for such inputs
  (leaves it does not use, a head say, are ignored). Catches e.g. 200-bin
  inputs for a phone CNN made for 201 bins (its first dense layer's kernel
  differs), which a flattened-size check would miss for a transposed
  (16, 201) input."""
  input_shape = check_input_shape(input_shape, rank=example_rank(model))
  _param_shapes(model, input_shape)  # a clear error if the input does not fit
  invertible.check_params(invertible.describe(model), params, input_shape)


def layer_targets(model, params, x: jax.Array, layer: int) -> jax.Array:
  """Y*_n for a batch of originals x (N, F, T) ((N, T) for waveforms):
  (N, *activation)."""
  check_layer(model, layer)
  rank = example_rank(model)
  checks.check_rank(x, (rank + 1,), "originals",
                    "(N, freq, frames)" if rank == 2 else "(N, samples)")
  check_params_fit(model, params, np.shape(x)[1:])
  checks.check_finite(x, "originals")
  return _targets_fn(model, layer)(params, jnp.asarray(x, jnp.float32))


@functools.lru_cache(maxsize=64)
def _targets_fn(model, layer):
  return jax.jit(lambda p, x: invertible.activation(model, p, x, layer))


def check_targets(model, layer: int, targets, input_shape):
  """Validates target activations Y*_n (N, *activation) for `layer`.

  Raises ValueError naming the problem: a layer the model lacks, an array
  whose shape is not layer `layer`'s activation shape for inputs of
  `input_shape` (one example's shape; the full shape is compared), or
  NaN/Inf among the targets.
  """
  net = invertible.describe(model)
  layer = invertible.check_layer(net, layer)
  input_shape = check_input_shape(input_shape, rank=net.example_rank)
  want = activation_shape(model, input_shape, layer)
  shape = tuple(np.shape(targets))
  if len(shape) != len(want) + 1 or shape[1:] != tuple(want):
    raise ValueError(
        f"target activations for {net.unit} {layer} ({net.layer_name(layer)})"
        f" must have shape (N, {', '.join(map(str, want))}) for inputs of "
        f"shape {input_shape}, got {shape}")
  if shape[0] == 0:
    raise ValueError("target activations: empty batch")
  checks.check_finite(targets, f"target activations for layer {layer}")


@functools.lru_cache(maxsize=256)
def activation_shape(model, input_shape: tuple, layer: int) -> tuple:
  """Per-example shape of layer `layer`'s activation for inputs of
  `input_shape` (one example's shape)."""
  _param_shapes(model, tuple(input_shape))  # a clear error if they do not fit
  return invertible.activation_shape(model, tuple(input_shape), layer)


def check_problem(model, params, layer: int, targets,
                  input_shape) -> jax.Array:
  """All checks of a reconstruction problem; returns the targets (float32).

  Raises:
    ValueError: see check_input_shape, check_params_fit, check_targets.
  """
  input_shape = check_input_shape(input_shape, rank=example_rank(model))
  check_layer(model, layer)
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
  input_shape = check_input_shape(input_shape, rank=None)
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
    runs: (N, K, F, T) (any example shape after N, K).
    run_diverged: bool (N, K).

  Returns:
    (reconstructions (N, F, T), diverged (N,) bool: every run of the example
    diverged). A diverged example's reconstruction is all zeros (the mean
    spectrogram, i.e. silence, in network-input units), never NaN; callers
    must look at `diverged` before scoring it.
  """
  ok = ~jnp.asarray(run_diverged, bool)
  count = jnp.sum(ok, axis=1)
  example = (1,) * (runs.ndim - 2)
  total = jnp.sum(jnp.where(ok.reshape(ok.shape + example), runs, 0.0),
                  axis=1)
  rec = total / jnp.maximum(count, 1).reshape(
      count.shape + example).astype(runs.dtype)
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
  """bool (N, K): every entry of the run's X is finite (runs (N, K, ...))."""
  return jnp.all(jnp.isfinite(runs), axis=tuple(range(2, runs.ndim)))
