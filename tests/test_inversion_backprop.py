"""Backpropagation to the input: E's gradient, the bold driver, layer 1."""
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
  got = float(backprop.curvature(model, params, layer, x, 0.01, iters=30))
  assert 0.9 * top <= got <= 1.0001 * top


def test_layer1_reconstruction_is_near_perfect():
  """Layer 1 is a linear conv with 32 > 16 output channels per bin: X -> Y_1
  is injective, E is a convex quadratic whose minimum (lambda -> 0) is X*
  itself, so descent recovers X* whatever the (here random) weights."""
  model = models.PhoneCNN(padding="SAME")
  params = numpy_params(model)
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=300, num_starts=2,
                                   weight_decay=1e-4)
  rec, runs, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(3), config)
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
        model, params, 3, targets, jax.random.key(5), config)
  rec, runs, summary = results["python"]
  via = inversion.reconstruct(
      "backprop", model, params, 3, targets, jax.random.key(5),
      inversion.ReconstructionConfig.from_dict(
          {"backprop": dict(max_steps=40, num_starts=3, loop="python",
                            learning_rate=0.05)}))
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
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 1)
  config = backprop.BackpropConfig(max_steps=0, num_starts=2, init_scale=0.0)
  rec, _, summary = inversion.reconstruct_by_backprop(
      model, params, 1, targets, jax.random.key(0), config, init=x)
  np.testing.assert_allclose(rec, x)
  assert np.all(np.asarray(summary["steps"]) == 0)


def test_bad_inputs_raise_clear_errors(small):
  model, params = small
  x = _originals(2)
  targets = objective.layer_targets(model, params, x, 3)
  config = backprop.BackpropConfig(max_steps=2, num_starts=1)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="layer 99 does not exist"):
    inversion.reconstruct_by_backprop(model, params, 99, targets, key, config)
  with pytest.raises(ValueError, match=r"layer 6 \(pool2\) must have shape"):
    inversion.reconstruct_by_backprop(model, params, 6, targets, key, config)
  with pytest.raises(ValueError, match=r"must have shape"):
    inversion.reconstruct_by_backprop(model, params, 3, targets[0], key, config)
  bad = np.asarray(targets).copy()
  bad[1, 4, 2] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    inversion.reconstruct_by_backprop(model, params, 3, bad, key, config)
  with pytest.raises(ValueError, match="start X0"):
    inversion.reconstruct_by_backprop(model, params, 3, targets, key, config,
                                      init=x[:1])
  with pytest.raises(ValueError, match="loop"):
    backprop.BackpropConfig(loop="for")
  with pytest.raises(ValueError, match="unknown reconstruction method"):
    inversion.reconstruct("gradient", model, params, 3, targets, key)
  with pytest.raises(ValueError, match="needs a trained decoder"):
    inversion.reconstruct("decoder_backprop", model, params, 3, targets, key)
  with pytest.raises(TypeError):
    inversion.ReconstructionConfig.from_dict({"backprop": {"eta": 1.0}})
