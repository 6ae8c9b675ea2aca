"""Simulated annealing on E(X) (docs/methods.md, A3.1; thesis 6.3).

Neighbour (thesis 6.3.1): a matrix Q of n = `band_rows` consecutive
frequency rows x the full width w, of which EXACTLY round(fraction * n * w)
entries (thesis: 50%; rounding half up), chosen uniformly at random, are
nonzero, each uniform in (-r, 0) or (0, r) (r = 0.05; a random sign times a
magnitude uniform in (0, r)), the rest 0. Q is added to a band of rows of X
whose first row is uniform in [-(n - 1), F - 1], so the band may hang over
the top or the bottom border; the overhanging rows of Q are dropped. The
50% is of Q's n x w entries (thesis 6.3.1: Q "of dimension n x w" has "a
certain percentage of its values" set, "50%"), counted before the overhang is
dropped, so a band cut by a border changes about half of its in-border entries,
not exactly half.

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
the K runs of an example are averaged (thesis 6.7). A run whose E (at its
start or at a proposal) is NaN/Inf is marked diverged, stops there, and is
left out of the average. The summary says what each run did: the share of
proposals it accepted and how far X moved from its start (RMS over the
entries of X_final - X_start, in input units, comparable to r).
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.inversion import config as config_lib
from recon_jax.inversion import loops
from recon_jax.inversion import objective

SCHEDULES = ("linear", "exponential")
RADIUS_UNITS = ("absolute", "input_rms")


@dataclasses.dataclass(frozen=True)
class AnnealingConfig(config_lib.Settings):
  """Simulated annealing.

  num_steps: neighbour proposals per run (k_max + 1), >= 2 (the schedule
    needs a hot start and the final T = 0).
  band_rows: n, the rows of the neighbour band (thesis: not given), >= 1.
  fraction: share of Q's entries that are nonzero (thesis 50%), in (0, 1].
  radius: r (thesis 0.05), in units of radius_units, > 0.
  radius_units: 'absolute' (default): r in input units, the thesis's rule;
    the package's STFT has the thesis's (MATLAB spectrogram) scaling, so
    r = 0.05 means what it meant there. 'input_rms': r times the RMS of the
    input X*, given as reconstruct_by_annealing(input_scale=...) or else
    estimated from Y*_n (estimate_input_rms), for data of another scale.
  initial_temperature: T0 (>= 0; 0 is a greedy descent), relative to
    E(X_0) if relative_temperature. Default 1e-5, measured: on a phone CNN
    trained on the package's spectrograms (input RMS 0.3, r = 0.05, 1500
    proposals, K = 2, 8 test phones), T0 = 1e-3 E(X_0) accepted 37-74% of
    the proposals, 29-62% of those uphill: a random walk that ended farther
    from X* than silence (R 15.9-16.3 vs 15.8) with mxcorr2 0.08-0.16 at
    layers 1-12; 1e-5 accepted 22-33% (11-17% of those uphill), moved X by
    an RMS of 0.06-0.07 and reached mxcorr2 0.11-0.30, with R below
    silence at layers 1 and 3 (at layer 1 mxcorr2 0.30, 0.40, 0.52 with
    1500, 3000, 6000 proposals, where 1e-3 gave 0.16 and 0.29 with 1500
    and 6000).
  relative_temperature: see initial_temperature.
  schedule: 'linear' or 'exponential' (both end at 0).
  final_ratio: 'exponential' only: T just before the final 0, over T0, in
    (0, 1].
  weight_decay: lambda of E, >= 0.
  num_runs: K runs averaged per example, >= 1.
  init_scale: std of the Gaussian start X_0, >= 0 (0 starts from silence,
    i.e. the mean spectrogram).
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
  initial_temperature: float = 1e-5
  relative_temperature: bool = True
  schedule: str = "linear"
  final_ratio: float = 1e-4
  weight_decay: float = 1e-3
  num_runs: int = 4
  init_scale: float = 0.0
  loop: str = "scan"

  def __post_init__(self):
    self.check_int("num_steps", 2)
    self.check_int("band_rows", 1)
    self.check_float("fraction", 0.0, 1.0, low_open=True)
    self.check_float("radius", 0.0, low_open=True)
    self.check_choice("radius_units", RADIUS_UNITS)
    self.check_float("initial_temperature", 0.0)
    self.check_bool("relative_temperature")
    self.check_choice("schedule", SCHEDULES)
    self.check_float("final_ratio", 0.0, 1.0, low_open=True)
    self.check_float("weight_decay", 0.0)
    self.check_int("num_runs", 1)
    self.check_float("init_scale", 0.0)
    self.check_choice("loop", loops.LOOPS + ("auto",))


def neighbour_count(config: AnnealingConfig, width: int) -> int:
  """How many of Q's band_rows x width entries are nonzero (half up)."""
  return int(math.floor(config.fraction * config.band_rows * width + 0.5))


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


def neighbour_matrix(key: jax.Array, width: int, config: AnnealingConfig,
                     radius=None) -> jax.Array:
  """Q (band_rows, width): exactly neighbour_count entries nonzero.

  The nonzero positions are a uniformly random subset of that size (the
  top `count` of iid uniform keys: top_k compiles and runs faster than a
  permutation); each value is a random sign times a magnitude uniform in
  (0, r) (drawn in [1e-6 r, r), so never 0). radius: r in input units
  (default config.radius).
  """
  radius = config.radius if radius is None else radius
  rows = config.band_rows
  size = rows * width
  count = neighbour_count(config, width)
  k_pick, k_mag, k_sign = jax.random.split(key, 3)
  if count == 0 or count == size:
    chosen = jnp.full((rows, width), count == size)
  else:
    _, picked = jax.lax.top_k(jax.random.uniform(k_pick, (size,)), count)
    chosen = jnp.zeros(size, bool).at[picked].set(True).reshape(
        (rows, width))
  magnitude = jax.random.uniform(k_mag, (rows, width), jnp.float32, 1e-6, 1.0)
  sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (rows, width)), 1.0,
                   -1.0)
  return jnp.where(chosen, radius * magnitude * sign, 0.0)


def band_neighbour(key: jax.Array, x: jax.Array, config: AnnealingConfig,
                   radius=None):
  """X' = X + Q placed on a random band of rows of X (F, T) (see above).

  Rows are along the network's conv axis (frequency for the phone CNN). A
  waveform X (T,) is one column: the band is band_rows consecutive samples
  of which round(fraction * band_rows) change.
  radius: r in input units (default config.radius).
  """
  if x.ndim == 1:
    return band_neighbour(key, x[:, None], config, radius)[:, 0]
  num_rows, width = x.shape[-2:]
  k_start, k_q = jax.random.split(key)
  first = jax.random.randint(k_start, (), -(config.band_rows - 1), num_rows)
  q = neighbour_matrix(k_q, width, config, radius)
  offset = jnp.arange(num_rows) - first  # row of Q landing on each row of X
  in_band = (offset >= 0) & (offset < config.band_rows)
  delta = jnp.where(in_band[:, None],
                    q[jnp.clip(offset, 0, config.band_rows - 1)], 0.0)
  return x + delta


def metropolis_accept(key: jax.Array, energy: jax.Array, proposed: jax.Array,
                      temp: jax.Array) -> jax.Array:
  """True if the proposal is taken: E' < E, or u < exp(-(E' - E) / T), T > 0."""
  delta = proposed - energy
  u = jax.random.uniform(key, jnp.shape(energy))
  hot = temp > 0
  p = jnp.exp(-jnp.maximum(delta, 0.0) / jnp.where(hot, temp, 1.0))
  return (delta < 0) | (hot & (u < p))


def estimate_input_rms(model, params, layer: int,
                       targets: jax.Array, input_shape,
                       iters: int = 10) -> jax.Array:
  """A rough RMS of each X* from its activations Y*_n: (N,).

  ||Y*|| / sqrt(L) / sqrt(F T), L the top eigenvalue of J^T J at X = 0 (J
  the Jacobian of layer n there): exact in scale for a linear layer whose
  X* lies along its strongest direction, and a lower bound otherwise. Only
  sets the neighbour radius's units; pass input_scale when it is known.
  input_shape: one example's shape, (F, T) ((T,) for waveforms).
  """
  shape = objective.check_input_shape(input_shape,
                                      rank=objective.example_rank(model))
  lam = objective.curvature(model, params, layer, jnp.zeros(shape), 0.0,
                            iters)
  norms = jnp.sqrt(jnp.sum(targets.reshape((targets.shape[0], -1))**2, -1))
  rms = norms / jnp.sqrt(jnp.maximum(lam, 1e-30)) / np.sqrt(np.prod(shape))
  return jnp.where(jnp.isfinite(rms) & (rms > 0), rms, 1.0)


@functools.lru_cache(maxsize=64)
def make_annealing_fn(model, layer: int, config: AnnealingConfig):
  """The jitted core: run(params, targets, x0, keys, radius) -> (x, summary).

  x0 (N, K, F, T) starts, keys (N, K) PRNG keys, targets (N, *act), radius
  (N,) the neighbour radius r per example in input units. Returns the final
  runs (N, K, F, T) and a summary of (N, K) arrays: energy (final E),
  accepted (accepted proposals), worse_accepted (of which not lower in E),
  proposals (proposals made; fewer than num_steps for a diverged run),
  acceptance_rate (accepted / proposals), distance_moved (RMS of X_final -
  X_start over the entries), radius, run_diverged (E went NaN/Inf).
  """
  objective.check_layer(model, layer)
  loop = loops.check_loop(config.loop)

  def one_step(energy_fn, target, radius, t0, run, k):
    x, energy, key = run["x"], run["energy"], run["key"]
    live = ~run["diverged"]
    key, k_nb, k_acc = jax.random.split(key, 3)
    proposal = band_neighbour(k_nb, x, config, radius)
    e_new = energy_fn(proposal, target)
    bad = live & ~jnp.isfinite(e_new)
    take = live & ~bad & metropolis_accept(k_acc, energy, e_new,
                                           temperature(k, t0, config))
    return {"x": jnp.where(take, proposal, x),
            "energy": jnp.where(take, e_new, energy), "key": key,
            "accepted": run["accepted"] + take,
            "worse_accepted": run["worse_accepted"] + (take & (e_new >= energy)),
            "proposals": run["proposals"] + live,
            "diverged": run["diverged"] | bad}

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
    diverged = ~jnp.isfinite(e0) | ~objective.runs_finite(x0)
    scale = e0 if config.relative_temperature else jnp.ones_like(e0)
    t0 = jnp.where(diverged, 0.0, config.initial_temperature * scale)
    zeros = jnp.zeros(e0.shape, jnp.int32)
    return {"runs": {"x": x0, "energy": e0, "key": keys, "accepted": zeros,
                     "worse_accepted": zeros, "proposals": zeros,
                     "diverged": diverged},
            "x0": x0, "t0": t0, "radius": jnp.asarray(radius, jnp.float32),
            "k": jnp.int32(0)}

  def summary(state):
    runs = state["runs"]
    moved = jnp.sqrt(jnp.mean((runs["x"] - state["x0"])**2,
                              axis=tuple(range(2, runs["x"].ndim))))
    diverged = (runs["diverged"] | ~jnp.isfinite(runs["energy"])
                | ~objective.runs_finite(runs["x"]))
    return runs["x"], {
        "energy": runs["energy"], "accepted": runs["accepted"],
        "worse_accepted": runs["worse_accepted"],
        "proposals": runs["proposals"],
        "acceptance_rate": runs["accepted"] / jnp.maximum(
            runs["proposals"], 1).astype(jnp.float32),
        "distance_moved": moved,
        "radius": jnp.broadcast_to(state["radius"][:, None],
                                   runs["energy"].shape),
        "run_diverged": diverged}

  def running(state):
    return state["k"] < config.num_steps

  if loop == "python":
    jit_step, jit_init = jax.jit(step), jax.jit(init)
    jit_summary = jax.jit(summary)

    def run(params, targets, x0, keys, radius):
      state = jit_init(params, targets, x0, keys, radius)
      # The schedule always runs to its end: no early-stop checks.
      state = loops.run_loop(lambda s: jit_step(params, targets, s),
                             running, state, config.num_steps, "python",
                             check_every=config.num_steps + 1)
      return jit_summary(state)
    return run

  @jax.jit
  def run_on_device(params, targets, x0, keys, radius):
    state = init(params, targets, x0, keys, radius)
    state = loops.run_loop(lambda s: step(params, targets, s), running, state,
                           config.num_steps, loop)
    return summary(state)
  return run_on_device


def reconstruct_by_annealing(model, params, layer: int,
                             targets, key: jax.Array,
                             config: AnnealingConfig = AnnealingConfig(),
                             init=None, input_shape=None, input_scale=None):
  """Reconstructs inputs from layer `layer`'s activations by annealing.

  Args:
    model, params: the encoder, any network of the inversion protocol (a
      PhoneCNN, a CNN12 on waveforms, a user's DeclaredNet).
    layer: its layer number n of the targets.
    targets: Y*_n, (N, *activation of layer n).
    key: PRNG key (starts, neighbours, acceptance).
    config: AnnealingConfig.
    init: optional start: (N, F, T), shared by the K runs (plus init_scale
      noise), or (N, K, F, T), one per run; waveforms (N, T) / (N, K, T).
    input_shape: one example's shape, (F, T) ((T,) for waveforms); may be
      left out when init is given (then its last axes).
    input_scale: radius_units 'input_rms' only: the RMS of the inputs (a
      float, e.g. the training inputs' std, or (N,) per example); None
      estimates it from the targets (estimate_input_rms).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary). Each
    reconstruction is the mean of the example's runs that did not diverge.
    summary: (N, K) arrays energy, accepted, worse_accepted, proposals,
    acceptance_rate, distance_moved, radius (r in input units),
    run_diverged; and diverged (N,): every run of the example diverged (its
    reconstruction is then zeros).

  Raises:
    ValueError: input_shape missing or not fitting the parameters, bad
      layer, targets of the wrong shape or with NaN/Inf, init of the wrong
      shape or with NaN/Inf, or a bad input_scale.
  """
  input_shape = objective.resolve_input_shape(
      input_shape, init=init, rank=objective.example_rank(model))
  targets = objective.check_problem(model, params, layer, targets,
                                    input_shape)
  n, k = targets.shape[0], config.num_runs
  k_init, k_runs = jax.random.split(key)
  x0 = objective.starting_points(k_init, n, k, input_shape, config.init_scale,
                                 init)
  keys = jax.random.split(k_runs, n * k).reshape((n, k))
  if config.radius_units == "absolute":
    scale = jnp.ones((n,))
  elif input_scale is None:
    scale = estimate_input_rms(model, params, layer, targets, input_shape)
  else:
    try:
      scale = np.broadcast_to(np.asarray(input_scale, np.float32), (n,))
    except ValueError:
      raise ValueError(f"input_scale must be a float or one per example "
                       f"({n}), got shape {np.shape(input_scale)}") from None
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
      raise ValueError(f"input_scale must be positive and finite, got "
                       f"{input_scale}")
    scale = jnp.asarray(scale)
  runs, summary = make_annealing_fn(model, layer, config)(
      params, targets, x0, keys, config.radius * scale)
  return objective.run_summary(summary, summary["run_diverged"], runs)
