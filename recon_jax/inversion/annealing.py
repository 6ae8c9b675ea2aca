"""Simulated annealing on E(X) (SPEC A3.1, thesis 6.3).

Neighbour (thesis 6.3.1): a matrix Q of `band_rows` consecutive frequency
rows x the full width, each entry nonzero with probability `fraction`
(thesis 50%) and then uniform in (-r, 0) or (0, r) (r = 0.05; drawn as
uniform(-r, r), the same law), added to a band of rows of X whose first row
is uniform in [-(band_rows - 1), F - 1], so the band may hang over the top or
the bottom border; the overhanging rows are dropped.

Acceptance: X' replaces X if E' < E, else with probability
exp(-(E' - E) / T(k)). At T(k) = 0 a worse (or equal) state is never
accepted. The cooling schedule ends at T(num_steps - 1) = 0:
  'linear':      T(k) = T0 * (1 - k / (num_steps - 1))
  'exponential': T(k) = T0 * decay ** k for k < num_steps - 1, then 0, with
                 decay chosen so that T falls to T0 * final_ratio.
T0 = initial_temperature * E(X_0) if relative_temperature (E's scale varies
by orders of magnitude between layers, so a relative T0 is the default)
else initial_temperature. The thesis gives no schedule nor T0; these are
config fields.

Every one of the N x K runs (N examples, K runs each) anneals independently;
the K runs of an example are averaged (thesis 6.7).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.inversion import loops
from recon_jax.inversion import objective
from recon_jax.models import phone_cnn

SCHEDULES = ("linear", "exponential")


@dataclasses.dataclass(frozen=True)
class AnnealingConfig:
  """Simulated annealing.

  num_steps: neighbour proposals per run (k_max + 1).
  band_rows: n, the rows of the neighbour band (thesis: not given).
  fraction: share of nonzero entries in Q (thesis 50%).
  radius: r (thesis 0.05), in units of radius_units.
  radius_units: 'absolute' (default): r in input units, the thesis's rule;
    the package's STFT has the thesis's (MATLAB spectrogram) scaling, so
    r = 0.05 means what it meant there. 'input_rms': r times the RMS of the
    input X*, given as reconstruct_by_annealing(input_scale=...) or else
    estimated from Y*_n (estimate_input_rms), for data of another scale.
  initial_temperature: T0, relative to E(X_0) if relative_temperature.
  schedule: 'linear' or 'exponential' (both end at 0).
  final_ratio: 'exponential' only: T just before the final 0, over T0.
  weight_decay: lambda of E.
  num_runs: K runs averaged per example.
  init_scale: std of the Gaussian start X_0 (0 starts from silence, i.e.
    the mean spectrogram).
  loop: 'scan' | 'python' | 'while' | 'auto' (see loops.py). 'scan' by
    default: on XLA:CPU it ran 1.06x as fast as 'python' for annealing
    (one forward pass per step; benchmarks/bench_inversion.py), unlike
    backprop, where 'python' is 5x faster there.
  """
  num_steps: int = 20000
  band_rows: int = 5
  fraction: float = 0.5
  radius: float = 0.05
  radius_units: str = "absolute"
  initial_temperature: float = 1e-3
  relative_temperature: bool = True
  schedule: str = "linear"
  final_ratio: float = 1e-4
  weight_decay: float = 1e-3
  num_runs: int = 4
  init_scale: float = 0.0
  loop: str = "scan"

  def __post_init__(self):
    if self.schedule not in SCHEDULES:
      raise ValueError(f"schedule must be one of {SCHEDULES}, got "
                       f"{self.schedule!r}")
    if self.num_steps < 1 or self.band_rows < 1 or self.num_runs < 1:
      raise ValueError(f"need num_steps, band_rows, num_runs >= 1: {self}")
    if self.radius_units not in ("input_rms", "absolute"):
      raise ValueError("radius_units must be 'input_rms' or 'absolute', got "
                       f"{self.radius_units!r}")
    if not 0.0 <= self.fraction <= 1.0 or self.radius <= 0:
      raise ValueError(f"need 0 <= fraction <= 1 and radius > 0: {self}")
    loops.check_loop(self.loop)


def temperature(k: jax.Array, t0: jax.Array, config: AnnealingConfig):
  """T(k) for step k (0-based) of num_steps; T(num_steps - 1) = 0."""
  last = max(config.num_steps - 1, 1)
  k = jnp.asarray(k, jnp.float32)
  if config.schedule == "linear":
    t = t0 * jnp.clip(1.0 - k / last, 0.0, 1.0)
  else:
    decay = config.final_ratio ** (1.0 / max(last - 1, 1))
    t = t0 * decay ** k
  return jnp.where(k >= last, 0.0, t)


def band_neighbour(key: jax.Array, x: jax.Array, config: AnnealingConfig,
                   radius=None):
  """X' = X + Q placed on a random band of rows of X (F, T) (see above).

  radius: r in input units (default config.radius).
  """
  radius = config.radius if radius is None else radius
  num_rows = x.shape[-2]
  k_start, k_mask, k_val = jax.random.split(key, 3)
  first = jax.random.randint(k_start, (), -(config.band_rows - 1), num_rows)
  rows = jnp.arange(num_rows)
  in_band = (rows >= first) & (rows < first + config.band_rows)
  nonzero = jax.random.bernoulli(k_mask, config.fraction, x.shape)
  values = radius * jax.random.uniform(k_val, x.shape, jnp.float32, -1.0,
                                       1.0)
  return x + jnp.where(in_band[:, None] & nonzero, values, 0.0)


def metropolis_accept(key: jax.Array, energy: jax.Array, proposed: jax.Array,
                      temp: jax.Array) -> jax.Array:
  """True if the proposal is taken: E' < E, or u < exp(-(E' - E) / T), T > 0."""
  delta = proposed - energy
  u = jax.random.uniform(key, jnp.shape(energy))
  hot = temp > 0
  p = jnp.exp(-jnp.maximum(delta, 0.0) / jnp.where(hot, temp, 1.0))
  return (delta < 0) | (hot & (u < p))


def estimate_input_rms(model: phone_cnn.PhoneCNN, params, layer: int,
                       targets: jax.Array, input_shape=objective.INPUT_SHAPE,
                       iters: int = 10) -> jax.Array:
  """A rough RMS of each X* from its activations Y*_n: (N,).

  ||Y*|| / sqrt(L) / sqrt(F T), L the top eigenvalue of J^T J at X = 0 (J
  the Jacobian of layer n there): exact in scale for a linear layer whose
  X* lies along its strongest direction, and a lower bound otherwise. Only
  sets the neighbour radius's units; pass input_scale when it is known.
  """
  from recon_jax.inversion import backprop  # pylint: disable=g-import-not-at-top
  shape = tuple(input_shape)
  lam = backprop.curvature(model, params, layer, jnp.zeros(shape), 0.0, iters)
  norms = jnp.sqrt(jnp.sum(targets.reshape((targets.shape[0], -1))**2, -1))
  rms = norms / jnp.sqrt(jnp.maximum(lam, 1e-30)) / np.sqrt(np.prod(shape))
  return jnp.where(jnp.isfinite(rms) & (rms > 0), rms, 1.0)


@functools.lru_cache(maxsize=64)
def make_annealing_fn(model: phone_cnn.PhoneCNN, layer: int,
                      config: AnnealingConfig):
  """The jitted core: run(params, targets, x0, keys, radius) -> (x, summary).

  x0 (N, K, F, T) starts, keys (N, K) PRNG keys, targets (N, *act), radius
  (N,) the neighbour radius r per example in input units. Returns
  the final runs (N, K, F, T) and a summary of (N, K) arrays: energy (final
  E), accepted (number of accepted proposals), worse_accepted.
  """
  model.check_layer(layer)
  loop = loops.check_loop(config.loop)

  def one_step(energy_fn, target, radius, t0, run, k):
    x, energy, key = run["x"], run["energy"], run["key"]
    key, k_nb, k_acc = jax.random.split(key, 3)
    proposal = band_neighbour(k_nb, x, config, radius)
    e_new = energy_fn(proposal, target)
    take = metropolis_accept(k_acc, energy, e_new, temperature(k, t0, config))
    return {"x": jnp.where(take, proposal, x),
            "energy": jnp.where(take, e_new, energy), "key": key,
            "accepted": run["accepted"] + take,
            "worse_accepted": run["worse_accepted"] + (take & (e_new >= energy))}

  def step(params, targets, state):
    fn = objective.make_energy(model, params, layer, config.weight_decay)
    per_run = functools.partial(one_step, fn)
    over = jax.vmap(jax.vmap(per_run, in_axes=(None, None, 0, 0, None)),
                    in_axes=(0, 0, 0, 0, None))
    runs = over(targets, state["radius"], state["t0"], state["runs"],
                state["k"])
    return {**state, "runs": runs, "k": state["k"] + 1}

  def init(params, targets, x0, keys, radius):
    fn = objective.make_energy(model, params, layer, config.weight_decay)
    e0 = objective.over_runs(fn)(x0, targets)
    t0 = config.initial_temperature * (e0 if config.relative_temperature
                                       else jnp.ones_like(e0))
    zeros = jnp.zeros(e0.shape, jnp.int32)
    return {"runs": {"x": x0, "energy": e0, "key": keys, "accepted": zeros,
                     "worse_accepted": zeros},
            "t0": t0, "radius": jnp.asarray(radius, jnp.float32),
            "k": jnp.int32(0)}

  def summary(state):
    runs = state["runs"]
    return runs["x"], {"energy": runs["energy"], "accepted": runs["accepted"],
                       "worse_accepted": runs["worse_accepted"],
                       "radius": jnp.broadcast_to(state["radius"][:, None],
                                                  runs["energy"].shape)}

  def running(state):
    return state["k"] < config.num_steps

  if loop == "python":
    jit_step, jit_init = jax.jit(step), jax.jit(init)

    def run(params, targets, x0, keys, radius):
      state = jit_init(params, targets, x0, keys, radius)
      # The schedule always runs to its end: no early-stop checks.
      state = loops.run_loop(lambda s: jit_step(params, targets, s),
                             running, state, config.num_steps, "python",
                             check_every=config.num_steps + 1)
      return summary(state)
    return run

  @jax.jit
  def run_on_device(params, targets, x0, keys, radius):
    state = init(params, targets, x0, keys, radius)
    state = loops.run_loop(lambda s: step(params, targets, s), running, state,
                           config.num_steps, loop)
    return summary(state)
  return run_on_device


def reconstruct_by_annealing(model: phone_cnn.PhoneCNN, params, layer: int,
                             targets, key: jax.Array,
                             config: AnnealingConfig = AnnealingConfig(),
                             init=None, input_shape=objective.INPUT_SHAPE,
                             input_scale=None):
  """Reconstructs inputs from layer `layer`'s activations by annealing.

  Args:
    model, params: the encoder.
    layer: thesis layer number n of the targets.
    targets: Y*_n, (N, *activation of layer n).
    key: PRNG key (starts, neighbours, acceptance).
    config: AnnealingConfig.
    init: optional start (N, F, T), shared by the K runs (plus init_scale
      noise).
    input_shape: (F, T) of the network's input.
    input_scale: radius_units 'input_rms' only: the RMS of the inputs (a
      float, e.g. the training inputs' std, or (N,) per example); None
      estimates it from the targets (estimate_input_rms).

  Returns:
    (reconstructions (N, F, T) = mean of the K runs, runs (N, K, F, T),
     summary {energy, accepted, worse_accepted, radius (r in input units)}:
     (N, K) arrays).

  Raises:
    ValueError: bad layer, targets of the wrong shape or with NaN/Inf.
  """
  objective.check_targets(model, layer, targets, input_shape)
  targets = jnp.asarray(targets, jnp.float32)
  n, k = targets.shape[0], config.num_runs
  k_init, k_runs = jax.random.split(key)
  x0 = config.init_scale * jax.random.normal(
      k_init, (n, k) + tuple(input_shape), jnp.float32)
  if init is not None:
    objective.check_input_batch(init, n, input_shape, "start X0")
    x0 = x0 + jnp.asarray(init, jnp.float32)[:, None]
  keys = jax.random.split(k_runs, n * k).reshape((n, k))
  if config.radius_units == "absolute":
    scale = jnp.ones((n,))
  elif input_scale is None:
    scale = estimate_input_rms(model, params, layer, targets, input_shape)
  else:
    scale = jnp.broadcast_to(jnp.asarray(input_scale, jnp.float32), (n,))
    if not np.all(np.isfinite(scale)) or np.any(np.asarray(scale) <= 0):
      raise ValueError(f"input_scale must be positive and finite, got "
                       f"{input_scale}")
  runs, summary = make_annealing_fn(model, layer, config)(
      params, targets, x0, keys, config.radius * scale)
  return runs.mean(axis=1), runs, summary
