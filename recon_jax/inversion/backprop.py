"""Backpropagation to the input with the bold driver (docs/methods.md, A3.2;
thesis 6.4).

Gradient descent on E(X) = 1/2||Y_n(X) - Y*_n||^2 + lambda/2||X||^2 (see
objective.py), one bold driver per run (thesis 6.4.2, Battiti 1989):

  at iteration t: E_t, g_t = E(X_t), dE/dX(X_t)
                  b <- b * 1.01 if E_t < E_{t-1} else b * 0.9   (t > 0)
                  stop if b < 0.005 (converged) or t == max_steps
                  X_{t+1} = X_t - eta * b * g_t

A step that raised E is KEPT (the thesis keeps updating and only slashes the
step size; the oscillation then shrinks b until it falls under the cut-off).
Each of the N x K runs (N examples, K random starts) has its own X, b and
stopping point; a finished run stays frozen while the others go on. The
K runs of an example are averaged into its reconstruction (thesis 6.7).

Divergence: a run whose E (or gradient, or X) becomes NaN/Inf stops and is
marked diverged, and so is a run that ends with a higher E than it started
from (a step size too large for the layer blew it up: b shrinks by only 10%
per step while an overshooting X can grow far faster, to a finite but
useless point). A diverged run is never reported converged and is left out
of its example's average (objective.average_runs).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from recon_jax.inversion import config as config_lib
from recon_jax.inversion import loops
from recon_jax.inversion import objective

STEP_SCALES = ("fixed", "curvature")


@dataclasses.dataclass(frozen=True)
class BackpropConfig(config_lib.Settings):
  """Backpropagation to the input.

  learning_rate: eta, the master step size (> 0). With step_scale 'fixed'
    (default, the thesis's rule) each update is eta * b * dE/dX. The
    thesis's value of eta is lost in the OCR ("n = 107"); the default 0.01
    is measured: on a phone CNN trained on the package's spectrograms
    (thesis widths, VALID, tiny generated corpus, 58% test accuracy) the
    top curvature L of E (objective.curvature) is about 11, 7, 30, 100 and
    3000 at layers 1, 3, 6, 9 and 12 at a 0.01-noise start, so the largest
    stable step 2 / L runs from 0.3 down to 6e-4. eta = 0.01 lets b rise to
    about 20 at layer 1 and settle near 0.06 at layer 12, both well above
    the cut-off, and 300 steps lowered E at every layer without a blow-up
    (mxcorr2 1.00, 0.76, 0.63, 0.45, 0.26 on 8 test phones); eta = 0.1 blew
    up at layer 12 (E rose 1e14-fold: b shrinks only 10% per step while X
    grows by eta * L per step).
    With 'curvature' each run's eta is learning_rate / L, L the largest
    eigenvalue of E's Gauss-Newton curvature J^T J + lambda at the run's
    start (J the Jacobian of Y_n; power iteration), so that b = 1 starts at
    a stable step whatever the layer's or the data's scale (not the thesis's
    rule: an option; learning_rate 1 suits it).
  step_scale: 'fixed' (default) or 'curvature' (see learning_rate).
  curvature_iters: power iterations for L ('curvature' only), >= 1.
  weight_decay: lambda of the L2 term of E, >= 0.
  bold_increase, bold_decrease: the bold driver's factors (1.01, 0.9):
    bold_increase >= 1, 0 < bold_decrease < 1.
  initial_bold: b at the start, > min_bold.
  min_bold: converged when b falls below this (thesis: 0.005), >= 0 (0:
    never, every run goes to max_steps).
  max_steps: cap on updates per run, >= 1.
  num_starts: K random starts averaged per example, >= 1.
  init_scale: std of the Gaussian symmetry-breaking start (and of the noise
    added to a given start that has no K axis), >= 0.
  loop: 'while' | 'scan' | 'python' | 'auto' (see loops.py; 'auto' = what
    benchmarks/bench_inversion.py found fastest on the backend).
  check_every: 'python' loop only: iterations between early-stop checks,
    >= 1.
  """
  learning_rate: float = 0.01
  step_scale: str = "fixed"
  curvature_iters: int = 10
  weight_decay: float = 1e-3
  bold_increase: float = 1.01
  bold_decrease: float = 0.9
  initial_bold: float = 1.0
  min_bold: float = 0.005
  max_steps: int = 5000
  num_starts: int = 4
  init_scale: float = 1e-2
  loop: str = "auto"
  check_every: int = 16

  def __post_init__(self):
    self.check_float("learning_rate", 0.0, low_open=True)
    self.check_choice("step_scale", STEP_SCALES)
    self.check_int("curvature_iters", 1)
    self.check_float("weight_decay", 0.0)
    self.check_float("bold_increase", 1.0)
    self.check_float("bold_decrease", 0.0, 1.0, low_open=True,
                     high_open=True)
    self.check_float("min_bold", 0.0)
    self.check_float("initial_bold", 0.0, low_open=True)
    if self.min_bold >= self.initial_bold:
      raise ValueError(
          f"BackpropConfig.min_bold={self.min_bold!r} must be below "
          f"initial_bold={self.initial_bold!r} (every run would stop at once "
          "as 'converged')")
    self.check_int("max_steps", 1)
    self.check_int("num_starts", 1)
    self.check_float("init_scale", 0.0)
    self.check_choice("loop", loops.LOOPS + ("auto",))
    self.check_int("check_every", 1)


def bold_driver_state(x: jax.Array, initial_bold: float, eta=1.0,
                      example_rank: int = 2):
  """Initial per-run state for runs X of shape (*runs, F, T).

  eta: the master step size, a scalar or one per run (*runs).
  example_rank: the axes of one example at the end of x (2 for (F, T), 1
    for waveforms (T,)).
  """
  runs = x.shape[:x.ndim - example_rank]
  return {
      "x": x,
      "eta": jnp.broadcast_to(jnp.asarray(eta, jnp.float32), runs),
      "energy": jnp.full(runs, jnp.inf, jnp.float32),  # E of the last X seen
      "start_energy": jnp.full(runs, jnp.inf, jnp.float32),  # E(X_0)
      "bold": jnp.full(runs, initial_bold, jnp.float32),
      "steps": jnp.zeros(runs, jnp.int32),
      "done": jnp.zeros(runs, bool),
      "converged": jnp.zeros(runs, bool),
      "diverged": jnp.zeros(runs, bool),
      "started": jnp.zeros(runs, bool),
  }


def bold_driver_step(state, energy, grad, config: BackpropConfig):
  """One bold-driver iteration given E and dE/dX at the current X.

  A run whose E or gradient is NaN/Inf has diverged: it stops there, its b
  is left as it was (a NaN is not a "rise" that shrinks b towards the
  cut-off) and it is never reported converged.

  Args:
    state: from bold_driver_state (arrays over the runs).
    energy: (*runs) E(X) at state['x'].
    grad: (*runs, F, T) dE/dX there (any example shape after *runs).
    config: the factors and the cut-off (eta is in the state).

  Returns:
    The next state. Finished runs (done) are returned unchanged.
  """
  done = state["done"]
  example = tuple(range(jnp.ndim(energy), jnp.ndim(grad)))
  finite = jnp.isfinite(energy) & jnp.all(jnp.isfinite(grad), axis=example)
  diverged = ~done & ~finite
  lowered = energy < state["energy"]
  bold = jnp.where(
      state["started"],
      state["bold"] * jnp.where(lowered, config.bold_increase,
                                config.bold_decrease),
      state["bold"])
  converged = ~done & finite & (bold < config.min_bold)
  active = ~done & finite & ~converged
  expand = (Ellipsis,) + (None,) * len(example)
  step = (state["eta"] * bold)[expand] * grad
  return {
      "x": jnp.where(active[expand], state["x"] - step, state["x"]),
      "eta": state["eta"],
      "energy": jnp.where(done, state["energy"], energy),
      "start_energy": jnp.where(state["started"], state["start_energy"],
                                energy),
      "bold": jnp.where(done | diverged, state["bold"], bold),
      "steps": state["steps"] + active.astype(jnp.int32),
      "done": done | converged | diverged,
      "converged": state["converged"] | converged,
      "diverged": state["diverged"] | diverged,
      "started": jnp.ones_like(state["started"]),
  }


@functools.lru_cache(maxsize=64)
def make_backprop_fn(model, layer: int, config: BackpropConfig):
  """The jitted core: run(params, targets, x0) -> (x, summary).

  model: any network of the inversion protocol. x0: (N, K, F, T) starts
  ((N, K, T) for waveforms); targets (N, *act). Returns the final runs
  (N, K, F, T) and a summary dict of (N, K) arrays: eta, steps, energy (final
  E), bold (final b), converged (b fell below min_bold, never for a diverged
  run), run_diverged (E, its gradient or X became NaN/Inf, or the final E is
  above the start's). Cached per
  (model, layer, config), so repeated calls do not recompile.
  """
  objective.check_layer(model, layer)
  rank = objective.example_rank(model)
  loop = loops.check_loop(config.loop)

  def energies_and_grads(params, targets, x):
    fn = objective.make_energy(model, params, layer, config.weight_decay)
    return objective.over_runs(jax.value_and_grad(fn))(x, targets)

  def step(params, targets, state):
    energy, grad = energies_and_grads(params, targets, state["x"])
    return bold_driver_step(state, energy, grad, config)

  def init(params, x0):
    if config.step_scale == "fixed":
      eta = config.learning_rate
    else:
      lam = jax.vmap(jax.vmap(lambda x: objective.curvature(
          model, params, layer, x, config.weight_decay,
          config.curvature_iters)))(x0)
      eta = config.learning_rate / lam
    return bold_driver_state(x0, config.initial_bold, eta, rank)

  def running(state):
    return jnp.any(~state["done"])

  def summary(params, targets, state):
    fn = objective.make_energy(model, params, layer, config.weight_decay)
    final = objective.over_runs(fn)(state["x"], targets)
    rose = final > state["start_energy"] * (1.0 + 1e-5)
    diverged = (state["diverged"] | ~jnp.isfinite(final) | rose
                | ~objective.runs_finite(state["x"]))
    return state["x"], {"steps": state["steps"], "energy": final,
                        "bold": state["bold"], "eta": state["eta"],
                        "converged": state["converged"] & ~diverged,
                        "run_diverged": diverged}

  if loop == "python":
    jit_step = jax.jit(step)
    jit_running = jax.jit(running)
    jit_summary = jax.jit(summary)
    jit_init = jax.jit(init)

    def run(params, targets, x0):
      state = jit_init(params, x0)
      state = loops.run_loop(lambda s: jit_step(params, targets, s),
                             jit_running, state, config.max_steps, "python",
                             config.check_every)
      return jit_summary(params, targets, state)
    return run

  @jax.jit
  def run_on_device(params, targets, x0):
    state = init(params, x0)
    state = loops.run_loop(lambda s: step(params, targets, s), running, state,
                           config.max_steps, loop)
    return summary(params, targets, state)
  return run_on_device


def starting_points(key: jax.Array, num_examples: int, config: BackpropConfig,
                    input_shape, init=None) -> jax.Array:
  """The K = config.num_starts starts per example: (N, K, F, T).

  See objective.starting_points (init None, (N, F, T) or (N, K, F, T); NaN
  or Inf refused).
  """
  return objective.starting_points(key, num_examples, config.num_starts,
                                   input_shape, config.init_scale, init)


def run_backprop(model, params, layer: int,
                 targets: jax.Array, x0: jax.Array, config: BackpropConfig):
  """Backprop from given starts x0 (N, K, F, T), no checks (callers check).

  A start holding NaN/Inf gives a diverged run (decoder-then-backprop
  starts from decodings, which may have diverged).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary) as
    reconstruct_by_backprop.
  """
  runs, summary = make_backprop_fn(model, layer, config)(params, targets, x0)
  return objective.run_summary(summary, summary["run_diverged"], runs)


def reconstruct_by_backprop(model, params, layer: int,
                            targets, key: jax.Array,
                            config: BackpropConfig = BackpropConfig(),
                            init=None, input_shape=None):
  """Reconstructs inputs from layer `layer`'s activations by gradient descent.

  Args:
    model, params: the encoder whose layer activations are given, any
      network of the inversion protocol (recon_jax.models.invertible: a
      PhoneCNN, a CNN12 on waveforms, a user's DeclaredNet).
    layer: its layer number n of the targets (thesis numbering for the
      phone CNN, blocks for CNN12).
    targets: Y*_n, (N, *activation of layer n).
    key: PRNG key for the random starts.
    config: BackpropConfig.
    init: optional start: (N, F, T) (e.g. a decoder's output; K noisy copies)
      or (N, K, F, T); waveforms (N, T) or (N, K, T).
    input_shape: one example's shape, (F, T) ((T,) for waveforms); may be
      left out when init is given (then its last axes).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary). Each
    reconstruction is the mean of the example's runs that did not diverge.
    summary: (N, K) arrays steps, energy, bold, eta (each run's master step
    size), converged, run_diverged (E or X went NaN/Inf, or E ended above
    its start; never converged);
    and diverged (N,): every run of the example diverged (its
    reconstruction is then zeros).

  Raises:
    ValueError: input_shape missing or not fitting the parameters, the layer
      does not exist, targets have the wrong shape for it or hold NaN/Inf,
      or init has the wrong shape or holds NaN/Inf.
  """
  input_shape = objective.resolve_input_shape(
      input_shape, init=init, rank=objective.example_rank(model))
  targets = objective.check_problem(model, params, layer, targets,
                                    input_shape)
  x0 = starting_points(key, targets.shape[0], config, input_shape, init)
  return run_backprop(model, params, layer, targets, x0, config)
