"""Backpropagation to the input: E's gradient, the bold driver, layer 1."""
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import metrics
from recon_jax import models
from recon_jax.inversion import backprop
from recon_jax.inversion import loops
from recon_jax.inversion import objective

sys.path.insert(0, os.path.dirname(__file__))
from test_inversion_fixtures import numpy_params  # noqa: E402

SHAPE = (201, 16)
# A narrow net keeps compile and run times small; the layer structure and the
# shapes along frequency are the thesis's.
SMALL = models.PhoneCNN(conv_features=(8, 8, 8), dense_features=(32, 16),
                        num_classes=5, padding="SAME")


def _originals(n, seed=1):
  return 0.1 * jax.random.normal(jax.random.key(seed), (n,) + SHAPE)


@pytest.fixture(scope="module")
def small():
  return SMALL, numpy_params(SMALL)


@pytest.mark.parametrize("layer", [1, 3, 6, 9, 12])
def test_energy_gradient_matches_central_differences(small, layer):
  """dE/dX against float64 central differences along random directions."""
  model, params = small
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x_true = jnp.asarray(_originals(1)[0], jnp.float64)
    target = objective.layer_activation(model, p64, x_true, layer)
    e = objective.make_energy(model, p64, layer, weight_decay=0.3)
    energy = lambda x: e(x, target)  # noqa: E731
    x = jnp.asarray(_originals(1, seed=7)[0], jnp.float64)
    grad = jax.grad(energy)(x)
    assert grad.dtype == jnp.float64
    h = 1e-6
    for i in range(3):
      v = jax.random.normal(jax.random.key(100 + i), SHAPE, jnp.float64)
      fd = (energy(x + h * v) - energy(x - h * v)) / (2 * h)
      np.testing.assert_allclose(float(jnp.vdot(grad, v)), float(fd),
                                 rtol=1e-5, atol=1e-8)


def test_energy_is_the_thesis_formula(small):
  model, params = small
  x, start = _originals(1)[0], _originals(1, seed=3)[0]
  target = objective.layer_activation(model, params, x, 6)
  got = objective.make_energy(model, params, 6, 0.25)(start, target)
  y = np.asarray(objective.layer_activation(model, params, start, 6))
  want = 0.5 * np.sum((y - np.asarray(target))**2) + 0.125 * np.sum(
      np.asarray(start)**2)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def _bold_reference(x0, a, eta, up, down, min_bold, max_steps):
  """NumPy: the thesis's bold driver on E(x) = a/2 x^2, one scalar run."""
  x, b, prev, steps, trace = x0, 1.0, None, 0, []
  for _ in range(max_steps):
    e, g = 0.5 * a * x * x, a * x
    if prev is not None:
      b *= up if e < prev else down
    prev = e
    trace.append(b)
    if b < min_bold:
      break
    x, steps = x - eta * b * g, steps + 1
  return x, b, steps, trace


@pytest.mark.parametrize("eta", [0.3, 2.6, 5.0])
def test_bold_driver_rule_on_a_quadratic(eta):
  """b*1.01 after a lower E, b*0.9 after a higher one (the step is kept), stop
  at b < min_bold; the same numbers as a plain NumPy reference."""
  a, x0, steps = 1.0, 1.5, 60
  config = backprop.BackpropConfig(learning_rate=eta, min_bold=0.5,
                                   max_steps=steps)
  state = backprop.bold_driver_state(jnp.full((1, 1, 1), x0), 1.0, eta)
  trace = []
  for _ in range(steps):
    if bool(state["done"][0]):
      break
    x = state["x"]
    state = backprop.bold_driver_step(state, (0.5 * a * x * x).sum((-2, -1)),
                                      a * x, config)
    trace.append(float(state["bold"][0]))
  want_x, want_b, want_steps, want_trace = _bold_reference(
      x0, a, eta, 1.01, 0.9, 0.5, steps)
  np.testing.assert_allclose(trace, want_trace, rtol=1e-5)
  np.testing.assert_allclose(float(state["x"][0, 0, 0]), want_x, rtol=1e-4,
                             atol=1e-6)
  assert int(state["steps"][0]) == want_steps
  assert bool(state["done"][0]) == (want_b < 0.5)
  if eta > 2:  # diverging at first: E rises, b shrinks while x keeps moving
    assert want_trace[1] == pytest.approx(0.9)
    assert float(state["x"][0, 0, 0]) != x0
  else:
    assert want_trace[1] == pytest.approx(1.01)


def test_bold_driver_is_per_run_and_freezes_finished_runs():
  config = backprop.BackpropConfig(learning_rate=1.0, min_bold=0.85,
                                   max_steps=10)
  # Run 0: E rises twice -> b = 0.81 < 0.85 -> done. Run 1: E falls.
  state = backprop.bold_driver_state(jnp.ones((2, 1, 1)), 1.0, 1.0)
  energies = [jnp.array([1.0, 1.0]), jnp.array([2.0, 0.5]),
              jnp.array([3.0, 0.2]), jnp.array([0.1, 0.1])]
  grads = jnp.ones((2, 1, 1))
  for e in energies:
    state = backprop.bold_driver_step(state, e, grads, config)
  np.testing.assert_allclose(state["bold"], [0.81, 1.01**3], rtol=1e-6)
  assert state["done"].tolist() == [True, False]
  assert state["steps"].tolist() == [2, 4]
  np.testing.assert_allclose(state["x"][:, 0, 0], [1 - 1 - 0.9,
                                                   1 - 1 - 1.01 - 1.01**2
                                                   - 1.01**3], rtol=1e-6)


@pytest.mark.parametrize("layer", [1, 3])
def test_curvature_is_the_top_eigenvalue_of_gauss_newton(small, layer):
  """Power iteration against the eigenvalues of an explicit J^T J + lambda."""
  model, params = small
  x = _originals(1)[0][:24]  # a short input keeps the Jacobian small
  fn = lambda z: objective.layer_activation(model, params, z, layer)  # noqa: E731
  jac = jax.jacrev(fn)(x).reshape((-1, x.size))
  top = np.linalg.eigvalsh(np.asarray(jac.T @ jac, np.float64))[-1] + 0.01
  got = float(objective.curvature(model, params, layer, x, 0.01, iters=30))
  assert 0.9 * top <= got <= 1.0001 * top


def test_layer1_reconstruction_is_near_perfect():
  """Layer 1 is a linear conv with 32 > 16 output channels per bin: X -> Y_1
  is injective, E is a convex quadratic whose minimum (lambda -> 0) is X*
  itself, so descent recovers X* whatever the (here random) weights. With
  the curvature-scaled step (the option; the default is the thesis's plain
  step, see test_plain_bold_driver_default_descends_at_layer_1) 300 steps
  suffice."""
  model = models.PhoneCNN(padding="SAME")
  params = numpy_params(model)
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=300, num_starts=2,
                                   weight_decay=1e-4, step_scale="curvature",
                                   learning_rate=1.0)
  rec, runs, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(3), config, input_shape=SHAPE)
  assert rec.shape == (2,) + SHAPE and runs.shape == (2, 2) + SHAPE
  assert np.all(np.asarray(metrics.spectrogram_mxcorr(x, rec)) > 0.99)
  err = np.asarray(metrics.euclidean_error(x, rec))
  assert np.all(err < 0.05 * np.linalg.norm(np.asarray(x).reshape(2, -1), axis=1))
  assert summary["energy"].shape == (2, 2)


def test_loop_modes_agree_and_average_the_runs(small):
  model, params = small
  x = _originals(3)
  targets = objective.layer_targets(model, params, x, 3)
  results = {}
  for loop in loops.LOOPS:
    config = backprop.BackpropConfig(max_steps=40, num_starts=3, loop=loop,
                                     learning_rate=0.05)
    results[loop] = inversion.reconstruct_by_backprop(
        model, params, 3, targets, jax.random.key(5), config,
        input_shape=SHAPE)
  rec, runs, summary = results["python"]
  via = inversion.reconstruct(
      "backprop", model, params, 3, targets, jax.random.key(5),
      inversion.ReconstructionConfig.from_dict(
          {"backprop": dict(max_steps=40, num_starts=3, loop="python",
                            learning_rate=0.05)}), input_shape=SHAPE)
  np.testing.assert_array_equal(via[0], rec)
  np.testing.assert_allclose(rec, runs.mean(axis=1), rtol=1e-6, atol=1e-7)
  assert not np.allclose(runs[:, 0], runs[:, 1])  # K distinct starts
  for loop in ("while", "scan"):
    np.testing.assert_allclose(results[loop][0], rec, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(results[loop][2]["steps"], summary["steps"])
  # E went down from the start for every run.
  start = backprop.starting_points(jax.random.key(5), 3, config, SHAPE)
  fn = objective.make_energy(model, params, 3, config.weight_decay)
  e0 = jax.vmap(jax.vmap(fn, (0, None)))(start, targets)
  assert np.all(np.asarray(summary["energy"]) < np.asarray(e0))


def test_given_start_is_used(small):
  """One plain bold-driver step from the originals themselves: Y_n(X) = Y*,
  so dE/dX = lambda X and X_1 = X - eta * b0 * lambda X, exactly."""
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=1, num_starts=2, init_scale=0.0,
                                   learning_rate=0.5, weight_decay=0.01)
  rec, runs, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(0), config, init=x)
  np.testing.assert_allclose(rec, x * (1 - 0.5 * 0.01), rtol=1e-5,
                             atol=1e-6)
  assert not np.any(np.asarray(summary["run_diverged"]))
  assert np.all(np.asarray(summary["steps"]) == 1)
  # A start with the K axis is used as given (no noise), run by run; the
  # input shape comes from the start when not given.
  starts = np.stack([np.asarray(x), 2 * np.asarray(x)], axis=1)
  _, runs, _ = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(0),
      config.replace(init_scale=1.0), init=starts)
  np.testing.assert_allclose(runs[:, 0], x * 0.995, rtol=1e-5, atol=1e-6)
  assert not np.allclose(runs[:, 1], x * 0.995)


def test_bold_driver_step_marks_nan_energy_diverged_not_converged():
  """A NaN E is no "rise": b stays, X stays, the run stops as diverged."""
  config = backprop.BackpropConfig(min_bold=0.5)
  state = backprop.bold_driver_state(jnp.ones((3, 1, 1)), 0.52, 1.0)
  state = backprop.bold_driver_step(state, jnp.array([1.0, 1.0, 1.0]),
                                    jnp.ones((3, 1, 1)), config)
  energy = jnp.array([jnp.nan, jnp.inf, 2.0])  # run 2 rises: 0.52*0.9 < 0.5
  grad = jnp.ones((3, 1, 1))
  after = backprop.bold_driver_step(state, energy, grad, config)
  assert after["done"].tolist() == [True, True, True]
  assert after["diverged"].tolist() == [True, True, False]
  assert after["converged"].tolist() == [False, False, True]
  np.testing.assert_array_equal(after["bold"][:2], state["bold"][:2])
  np.testing.assert_array_equal(after["x"], state["x"])
  # A NaN gradient with a finite E diverges too.
  nan_grad = backprop.bold_driver_step(
      state, jnp.array([0.5, 0.5, 0.5]),
      jnp.array([[[jnp.nan]], [[1.0]], [[1.0]]]), config)
  assert nan_grad["diverged"].tolist() == [True, False, False]


def test_non_finite_runs_are_diverged_and_left_out_of_the_average(small):
  """Runs whose E overflows to Inf stop as diverged, are never converged
  (before, the NaN/Inf E shrank b below the cut-off and the run was
  reported converged), and the average takes only the others. An example
  whose runs all diverged is marked diverged with a zero reconstruction."""
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  starts = np.asarray(jax.random.normal(jax.random.key(1), (2, 3) + SHAPE),
                      np.float32) * 0.01
  starts[0, 0] = 1e19  # finite, but E overflows float32
  starts[1] = 1e19
  for loop in ("python", "while"):
    config = backprop.BackpropConfig(max_steps=40, num_starts=3, loop=loop,
                                     initial_bold=0.52, min_bold=0.5,
                                     learning_rate=0.01)
    rec, runs, summary = inversion.reconstruct_by_backprop(
        model, params, 1, targets, jax.random.key(0), config, init=starts)
    run_diverged = np.asarray(summary["run_diverged"])
    assert run_diverged.tolist() == [[True, False, False], [True] * 3], loop
    assert not np.any(np.asarray(summary["converged"])[run_diverged])
    assert summary["diverged"].shape == (2,)
    assert np.asarray(summary["diverged"]).tolist() == [False, True]
    assert np.all(np.isfinite(np.asarray(rec)))
    np.testing.assert_allclose(rec[0], np.asarray(runs[0, 1:]).mean(0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(rec[1], 0.0)


def test_a_run_that_ends_above_its_start_is_diverged(small):
  """A step far too large for the layer overshoots to a finite but higher
  E: the bold driver cannot undo that, so the run counts as diverged."""
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=1, num_starts=1,
                                   learning_rate=50.0)
  _, runs, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(0), config, input_shape=SHAPE)
  start = backprop.starting_points(jax.random.key(0), 2, config, SHAPE)
  energy = objective.make_runs_energy(model, 1, config.weight_decay)
  e0, e1 = energy(params, start, targets), energy(params, runs, targets)
  assert np.all(np.isfinite(e1)) and np.all(e1 > e0)
  assert np.all(np.asarray(summary["run_diverged"]))
  assert not np.any(np.asarray(summary["converged"]))
  assert np.all(np.asarray(summary["diverged"]))


def test_plain_bold_driver_default_descends_at_layer_1():
  """The default is the thesis's plain rule (step = eta * b, no curvature
  scaling, eta = 0.01). On the layer-1 problem of the curvature test it is
  stable (no diverged run, b grows to ~20 without oscillating) and, in 300
  steps, as near perfect as the curvature-scaled option. (The thesis found
  backprop alone short of the decoders at layer 1; with a convex layer-1
  problem and this step size it is not.)"""
  assert backprop.BackpropConfig().step_scale == "fixed"
  assert backprop.BackpropConfig().learning_rate == 0.01
  model = models.PhoneCNN(padding="SAME")
  params = numpy_params(model)
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=300, num_starts=2)
  rec, runs, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(3), config, input_shape=SHAPE)
  start = backprop.starting_points(jax.random.key(3), 2, config, SHAPE)
  e0 = objective.make_runs_energy(model, 1, config.weight_decay)(
      params, start, targets)
  assert not np.any(np.asarray(summary["run_diverged"]))
  np.testing.assert_allclose(summary["bold"], 1.01**299, rtol=1e-4)
  assert np.all(np.asarray(summary["energy"]) < 1e-3 * np.asarray(e0))
  assert np.all(np.asarray(metrics.spectrogram_mxcorr(x, rec)) > 0.99)
  err = np.asarray(metrics.euclidean_error(x, rec))
  assert np.all(err < 0.05 * np.linalg.norm(np.asarray(x).reshape(2, -1),
                                            axis=1))
  np.testing.assert_allclose(summary["eta"], config.learning_rate)


def test_bad_inputs_raise_clear_errors(small):
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 3)
  config = backprop.BackpropConfig(max_steps=2, num_starts=1)
  key = jax.random.key(0)
  run = functools.partial(inversion.reconstruct_by_backprop, model, params,
                          input_shape=SHAPE)
  with pytest.raises(ValueError, match="layer 99 does not exist"):
    run(99, targets, key, config)
  with pytest.raises(ValueError, match=r"layer 6 \(pool2\) must have shape"):
    run(6, targets, key, config)
  with pytest.raises(ValueError, match=r"must have shape"):
    run(3, targets[0], key, config)
  bad = np.asarray(targets).copy()
  bad[1, 4, 2] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    run(3, bad, key, config)
  with pytest.raises(ValueError, match="start X0"):
    run(3, targets, key, config, init=x[:1])
  with pytest.raises(ValueError, match="unknown reconstruction method"):
    inversion.reconstruct("gradient", model, params, 3, targets, key)
  with pytest.raises(ValueError, match="needs a trained decoder"):
    inversion.reconstruct("decoder_backprop", model, params, 3, targets, key)
  with pytest.raises(ValueError, match=r"unknown BackpropConfig fields \['eta'\]"):
    inversion.ReconstructionConfig.from_dict({"backprop": {"eta": 1.0}})
  with pytest.raises(ValueError, match=r"unknown ReconstructionConfig fields"):
    inversion.ReconstructionConfig.from_dict({"backprob": {}})


def test_starts_are_checked_in_every_branch(small):
  model, params = small
  x = np.asarray(_originals(2))
  targets = objective.layer_targets(model, params, x, 3)
  config = backprop.BackpropConfig(max_steps=2, num_starts=3)
  run = functools.partial(inversion.reconstruct_by_backprop, model, params, 3,
                          targets, jax.random.key(0), config)
  bad = x.copy()
  bad[0, 3, 3] = np.inf
  with pytest.raises(ValueError, match="start X0 holds 1 NaN/Inf"):
    run(init=bad)
  with pytest.raises(ValueError, match=r"start X0 \(N, K, F, T\) holds "
                     f"{2 * 3 * 201 * 16} NaN/Inf"):
    run(init=np.full((2, 3) + SHAPE, np.nan, np.float32))
  one_nan = np.zeros((2, 3) + SHAPE, np.float32)
  one_nan[1, 2, 0, 0] = np.nan
  with pytest.raises(ValueError, match=r"start X0 \(N, K, F, T\) holds 1"):
    run(init=one_nan)
  with pytest.raises(ValueError, match=r"\(2, 201, 16\) .* or \(2, 3, 201, "
                     r"16\) .* got \(2, 4, 201, 16\)"):
    run(init=np.zeros((2, 4) + SHAPE, np.float32))
  # The transposed start has the same size: the full shape is compared.
  with pytest.raises(ValueError, match=r"input_shape \(201, 16\) does not "
                     r"match the start X0's \(F, T\) \(16, 201\)"):
    run(init=np.swapaxes(x, 1, 2), input_shape=SHAPE)


def test_input_shape_comes_from_the_data(small):
  """No default input shape: it is given (or taken from a start) and must
  fit the targets and the parameters in full, not just in size."""
  model, params = small
  x = _originals(2)
  config = backprop.BackpropConfig(max_steps=2, num_starts=1)
  key = jax.random.key(0)
  targets1 = objective.layer_targets(model, params, x, 1)
  with pytest.raises(ValueError, match="input_shape is needed"):
    inversion.reconstruct_by_backprop(model, params, 1, targets1, key, config)
  with pytest.raises(ValueError, match="input_shape is needed"):
    inversion.reconstruct("backprop", model, params, 1, targets1, key)
  with pytest.raises(ValueError, match=r"for inputs of shape \(200, 16\), "
                     r"got \(2, 201, 8\)"):
    inversion.reconstruct_by_backprop(model, params, 1, targets1, key, config,
                                      input_shape=(200, 16))
  # Layer 12 is (N, 16) for any input shape; the parameters are not: the
  # transposed shape (same size) and a longer one are refused by name.
  targets12 = objective.layer_targets(model, params, x, 12)
  with pytest.raises(ValueError, match=r"inputs of shape \(16, 201\) do "
                     "not fit this PhoneCNN"):
    inversion.reconstruct_by_backprop(model, params, 12, targets12, key,
                                      config, input_shape=(16, 201))
  with pytest.raises(ValueError, match=r"parameters do not fit inputs of "
                     r"shape \(240, 16\).*fc1"):
    objective.layer_targets(model, params, np.zeros((1, 240, 16)), 12)
  with pytest.raises(ValueError, match="two integers >= 1"):
    inversion.reconstruct_by_backprop(model, params, 1, targets1, key, config,
                                      input_shape=(201,))


@pytest.mark.parametrize("field,value,message", [
    ("learning_rate", 0.0, r"learning_rate=0.0: must be a finite number in "
     r"\(0.0, inf\]"),
    ("learning_rate", -1.0, "learning_rate=-1.0"),
    ("learning_rate", float("nan"), "learning_rate=nan"),
    ("step_scale", "adaptive", r"step_scale='adaptive': must be one of "
     r"\('fixed', 'curvature'\)"),
    ("curvature_iters", 0, "curvature_iters=0: must be >= 1"),
    ("weight_decay", -1e-3, "weight_decay=-0.001"),
    ("bold_increase", 0.99, "bold_increase=0.99"),
    ("bold_decrease", 1.0, "bold_decrease=1.0"),
    ("bold_decrease", 0.0, "bold_decrease=0.0"),
    ("initial_bold", 0.0, "initial_bold=0.0"),
    ("min_bold", -0.1, "min_bold=-0.1"),
    ("min_bold", 1.0, r"min_bold=1.0 must be below initial_bold=1.0"),
    ("max_steps", 0, "max_steps=0: must be >= 1"),
    ("max_steps", 2.5, "max_steps=2.5: must be an integer"),
    ("num_starts", 0, "num_starts=0: must be >= 1"),
    ("init_scale", -1.0, "init_scale=-1.0"),
    ("loop", "for", r"loop='for': must be one of"),
    ("check_every", 0, "check_every=0: must be >= 1"),
])
def test_impossible_settings_are_refused_when_built(field, value, message):
  with pytest.raises(ValueError, match=f"BackpropConfig.{message}"):
    backprop.BackpropConfig(**{field: value})
  with pytest.raises(ValueError, match=f"BackpropConfig.{message}"):
    inversion.config_from_dict(backprop.BackpropConfig, {field: value})
