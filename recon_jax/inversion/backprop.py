"""Backpropagation to the input with the bold driver (SPEC A3.2, thesis 6.4).

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
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from recon_jax.inversion import loops
from recon_jax.inversion import objective
from recon_jax.models import phone_cnn


@dataclasses.dataclass(frozen=True)
class BackpropConfig:
  """Backpropagation to the input.

  learning_rate: eta, the master step size. With step_scale 'fixed' it is
    the step itself (the thesis's rule; its value of eta is lost in the
    OCR). With 'curvature' (default) each run's eta is learning_rate / L,
    L the largest eigenvalue of E's Gauss-Newton curvature J^T J + lambda at
    the run's start (J the Jacobian of Y_n; power iteration), so that b = 1
    starts at a stable step whatever the layer's or the data's scale and
    the cut-off b < min_bold means the same thing for every layer.
  step_scale: 'curvature' or 'fixed' (see learning_rate).
  curvature_iters: power iterations for L.
  weight_decay: lambda of the L2 term of E.
  bold_increase, bold_decrease: the bold driver's factors (1.01, 0.9).
  initial_bold: b at the start.
  min_bold: converged when b falls below this (thesis: 0.005).
  max_steps: cap on updates per run.
  num_starts: K random starts averaged per example.
  init_scale: std of the Gaussian symmetry-breaking start (and of the noise
    added to a given start that has no K axis).
  loop: 'while' | 'scan' | 'python' | 'auto' (see loops.py; 'auto' = what
    benchmarks/bench_inversion.py found fastest on the backend).
  check_every: 'python' loop only: iterations between early-stop checks.
  """
  learning_rate: float = 1.0
  step_scale: str = "curvature"
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
    if self.num_starts < 1 or self.max_steps < 0:
      raise ValueError(f"need num_starts >= 1 and max_steps >= 0: {self}")
    if not (self.bold_increase >= 1.0 and 0.0 < self.bold_decrease < 1.0):
      raise ValueError("bold driver needs bold_increase >= 1 and 0 < "
                       f"bold_decrease < 1, got {self.bold_increase}, "
                       f"{self.bold_decrease}")
    if self.step_scale not in ("curvature", "fixed"):
      raise ValueError("step_scale must be 'curvature' or 'fixed', got "
                       f"{self.step_scale!r}")
    loops.check_loop(self.loop)


def bold_driver_state(x: jax.Array, initial_bold: float, eta=1.0):
  """Initial per-run state for runs X of shape (*runs, F, T).

  eta: the master step size, a scalar or one per run (*runs).
  """
  runs = x.shape[:-2]
  return {
      "x": x,
      "eta": jnp.broadcast_to(jnp.asarray(eta, jnp.float32), runs),
      "energy": jnp.full(runs, jnp.inf, jnp.float32),  # E of the last X seen
      "bold": jnp.full(runs, initial_bold, jnp.float32),
      "steps": jnp.zeros(runs, jnp.int32),
      "done": jnp.zeros(runs, bool),
      "started": jnp.zeros(runs, bool),
  }


def bold_driver_step(state, energy, grad, config: BackpropConfig):
  """One bold-driver iteration given E and dE/dX at the current X.

  Args:
    state: from bold_driver_state (arrays over the runs).
    energy: (*runs) E(X) at state['x'].
    grad: (*runs, F, T) dE/dX there.
    config: the factors and the cut-off (eta is in the state).

  Returns:
    The next state. Finished runs (done) are returned unchanged.
  """
  done = state["done"]
  lowered = energy < state["energy"]
  bold = jnp.where(
      state["started"],
      state["bold"] * jnp.where(lowered, config.bold_increase,
                                config.bold_decrease),
      state["bold"])
  converged = bold < config.min_bold
  active = ~done & ~converged
  step = (state["eta"] * bold)[..., None, None] * grad
  return {
      "x": jnp.where(active[..., None, None], state["x"] - step, state["x"]),
      "eta": state["eta"],
      "energy": jnp.where(done, state["energy"], energy),
      "bold": jnp.where(done, state["bold"], bold),
      "steps": state["steps"] + active.astype(jnp.int32),
      "done": done | converged,
      "started": jnp.ones_like(state["started"]),
  }


def curvature(model: phone_cnn.PhoneCNN, params, layer: int, x: jax.Array,
              weight_decay: float, iters: int) -> jax.Array:
  """Largest eigenvalue of J^T J + lambda I at ONE input x (F, T): scalar.

  J is the Jacobian of layer `layer`'s activation at x; power iteration
  (`iters` steps, from a fixed non-symmetric start) on the Gauss-Newton
  matrix, which bounds E's curvature where the second-order term is small.
  A lower bound that tightens with iters.
  """
  fn = lambda z: objective.layer_activation(model, params, z, layer)  # noqa: E731
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


@functools.lru_cache(maxsize=64)
def make_backprop_fn(model: phone_cnn.PhoneCNN, layer: int,
                     config: BackpropConfig):
  """The jitted core: run(params, targets, x0) -> (x, summary).

  x0: (N, K, F, T) starts; targets (N, *act). Returns the final runs
  (N, K, F, T) and a summary dict of (N, K) arrays: eta, steps, energy (final
  E), bold (final b), converged (b < min_bold). Cached per (model, layer,
  config), so repeated calls do not recompile.
  """
  model.check_layer(layer)
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
      lam = jax.vmap(jax.vmap(lambda x: curvature(
          model, params, layer, x, config.weight_decay,
          config.curvature_iters)))(x0)
      eta = config.learning_rate / lam
    return bold_driver_state(x0, config.initial_bold, eta)

  def running(state):
    return jnp.any(~state["done"])

  def summary(params, targets, state):
    fn = objective.make_energy(model, params, layer, config.weight_decay)
    final = objective.over_runs(fn)(state["x"], targets)
    return state["x"], {"steps": state["steps"], "energy": final,
                        "bold": state["bold"], "eta": state["eta"],
                        "converged": state["bold"] < config.min_bold}

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
  """The K starts per example: (N, K, F, T).

  init None: Gaussian noise of std init_scale. init (N, F, T): that start,
  repeated K times, plus init_scale noise (so the K runs differ). init
  (N, K, F, T): used as given.
  """
  shape = (num_examples, config.num_starts) + tuple(input_shape)
  noise = config.init_scale * jax.random.normal(key, shape, jnp.float32)
  if init is None:
    return noise
  init = jnp.asarray(init, jnp.float32)
  if init.shape == shape:
    return init
  objective.check_input_batch(init, num_examples, input_shape, "start X0")
  return init[:, None] + noise


def reconstruct_by_backprop(model: phone_cnn.PhoneCNN, params, layer: int,
                            targets, key: jax.Array,
                            config: BackpropConfig = BackpropConfig(),
                            init=None, input_shape=objective.INPUT_SHAPE):
  """Reconstructs inputs from layer `layer`'s activations by gradient descent.

  Args:
    model, params: the encoder whose layer activations are given.
    layer: thesis layer number n of the targets.
    targets: Y*_n, (N, *activation of layer n).
    key: PRNG key for the random starts.
    config: BackpropConfig.
    init: optional start: (N, F, T) (e.g. a decoder's output; K noisy copies)
      or (N, K, F, T).
    input_shape: (F, T) of the network's input.

  Returns:
    (reconstructions (N, F, T) = mean of the K runs, runs (N, K, F, T),
     summary {steps, energy, bold, converged, eta}: (N, K) arrays; eta is
     each run's master step size).

  Raises:
    ValueError: the layer does not exist, targets have the wrong shape for it
      or hold NaN/Inf, or init has the wrong shape.
  """
  objective.check_targets(model, layer, targets, input_shape)
  targets = jnp.asarray(targets, jnp.float32)
  x0 = starting_points(key, targets.shape[0], config, input_shape, init)
  runs, summary = make_backprop_fn(model, layer, config)(params, targets, x0)
  return runs.mean(axis=1), runs, summary
