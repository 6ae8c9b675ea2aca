"""Simulated annealing: the band neighbour, the schedule, acceptance."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import models
from recon_jax.inversion import annealing
from recon_jax.inversion import loops
from recon_jax.inversion import objective

sys.path.insert(0, os.path.dirname(__file__))
from test_inversion_fixtures import numpy_params  # noqa: E402
from test_inversion_fixtures import synthetic_spectrograms  # noqa: E402

SHAPE = (201, 16)
SMALL = models.PhoneCNN(conv_features=(8, 8, 8), dense_features=(32, 16),
                        num_classes=5, padding="SAME")


@pytest.fixture(scope="module")
def small():
  return SMALL, numpy_params(SMALL)


def test_band_neighbour_changes_a_band_of_rows_within_radius():
  config = annealing.AnnealingConfig(band_rows=6, radius=0.05, fraction=0.5)
  x = jnp.zeros(SHAPE)
  deltas = np.asarray(jax.jit(jax.vmap(lambda k: annealing.band_neighbour(
      k, x, config)))(jax.random.split(jax.random.key(0), 600)))
  rows_touched = [np.flatnonzero(np.any(d != 0, axis=1)) for d in deltas]
  for rows in rows_touched:
    assert len(rows) <= 6 and (len(rows) == 0 or rows[-1] - rows[0] < 6)
  assert np.all(np.abs(deltas) < 0.05)
  assert np.any(deltas > 0.04) and np.any(deltas < -0.04)
  # Overhang: bands cut by the top and by the bottom border both occur.
  assert any(len(r) and r[0] == 0 and r[-1] < 5 for r in rows_touched)
  assert any(len(r) and r[-1] == SHAPE[0] - 1 and r[0] > SHAPE[0] - 6
             for r in rows_touched)
  # Inside the band about half the entries change.
  full = [d[r] for d, r in zip(deltas, rows_touched) if len(r) == 6]
  assert np.mean(np.concatenate(full) != 0) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("schedule", annealing.SCHEDULES)
def test_schedule_falls_to_zero(schedule):
  config = annealing.AnnealingConfig(num_steps=101, schedule=schedule)
  temps = np.asarray(annealing.temperature(jnp.arange(101), 2.0, config))
  assert temps[0] == pytest.approx(2.0)
  assert temps[-1] == 0.0 and np.all(temps[:-1] > 0)
  assert np.all(np.diff(temps) <= 0)


def test_never_accepts_a_worse_state_at_zero_temperature():
  accept = jax.jit(jax.vmap(annealing.metropolis_accept, (0, 0, 0, None)))
  keys = jax.random.split(jax.random.key(0), 1000)
  energy = jnp.ones(1000)
  proposed = energy + jnp.abs(jax.random.normal(jax.random.key(1), (1000,)))
  proposed = proposed.at[:10].set(1.0)  # equal is not better either
  assert not np.any(np.asarray(accept(keys, energy, proposed, 0.0)))
  assert np.all(np.asarray(accept(keys, proposed, energy, 0.0))[10:])
  # Hot: worse states are taken at about exp(-dE / T).
  hot = accept(keys, energy, energy + 0.5, 1.0)
  assert np.mean(hot) == pytest.approx(np.exp(-0.5), abs=0.05)


def test_annealing_runs_batched_and_averaged_cold_runs_only_descend(small):
  model, params = small
  x = 0.1 * jax.random.normal(jax.random.key(2), (3,) + SHAPE)
  targets = objective.layer_targets(model, params, x, 1)
  cold = {}
  for loop in ("scan", "python"):  # ('while' = 'scan' here: no early stop)
    config = annealing.AnnealingConfig(num_steps=100, num_runs=2, loop=loop,
                                       initial_temperature=0.0)
    cold[loop] = inversion.reconstruct_by_annealing(
        model, params, 1, targets, jax.random.key(4), config)
  rec, runs, summary = cold["scan"]
  via = inversion.reconstruct(
      "annealing", model, params, 1, targets, jax.random.key(4),
      inversion.ReconstructionConfig(annealing=config.__class__(
          num_steps=100, num_runs=2, loop="python", initial_temperature=0.0)))
  np.testing.assert_array_equal(via[0], cold["python"][0])
  assert rec.shape == (3,) + SHAPE and runs.shape == (3, 2) + SHAPE
  np.testing.assert_allclose(rec, runs.mean(axis=1), rtol=1e-6, atol=1e-7)
  assert not np.allclose(runs[:, 0], runs[:, 1])
  np.testing.assert_allclose(cold["python"][0], rec, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(cold["python"][2]["accepted"],
                                summary["accepted"])
  np.testing.assert_allclose(summary["radius"], 0.05)  # absolute by default
  # At T = 0 throughout, the run is a descent: no worse state, E went down.
  assert np.all(np.asarray(summary["worse_accepted"]) == 0)
  assert np.all(np.asarray(summary["accepted"]) > 0)
  e0 = objective.make_runs_energy(model, 1, config.weight_decay)(
      params, jnp.zeros((3, 1) + SHAPE), targets)
  assert np.all(np.asarray(summary["energy"]) < np.asarray(e0))
  # Hot early steps do take worse states.
  config = annealing.AnnealingConfig(num_steps=100, num_runs=2, loop="scan",
                                     initial_temperature=0.1,
                                     schedule="exponential",
                                     radius_units="input_rms")
  _, _, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(4), config, input_scale=2.0)
  assert np.sum(np.asarray(summary["worse_accepted"])) > 0
  np.testing.assert_allclose(summary["radius"], 0.1, rtol=1e-6)
  _, _, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(4), config)  # estimated
  estimate = annealing.estimate_input_rms(model, params, 1, targets)
  np.testing.assert_allclose(
      summary["radius"],
      np.broadcast_to(0.05 * np.asarray(estimate)[:, None], (3, 2)), rtol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.003])
def test_input_rms_estimate_tracks_the_data_scale(scale):
  """The neighbour radius's default units follow the data's scale: the
  estimate is rough (a lower bound, loose where layer 1 is not injective,
  as in a narrow net) but within a small factor of the true RMS at any scale."""
  model = models.PhoneCNN(conv_features=(32, 8, 8), dense_features=(32, 16),
                          num_classes=5, padding="SAME")
  params = numpy_params(model)
  _, x, _ = synthetic_spectrograms(3, seed=5)
  x = x * scale
  rms = np.sqrt(np.mean(x**2, axis=(1, 2)))
  for layer in (1, 9):
    targets = objective.layer_targets(model, params, x, layer)
    got = np.asarray(annealing.estimate_input_rms(model, params, layer,
                                                  targets))
    assert np.all((got > 0.25 * rms) & (got < 2.5 * rms)), (layer, got, rms)


def test_bad_inputs_raise_clear_errors(small):
  model, params = small
  targets = objective.layer_targets(model, params, jnp.zeros((2,) + SHAPE), 9)
  config = annealing.AnnealingConfig(num_steps=2, num_runs=1)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="layer 0 does not exist"):
    inversion.reconstruct_by_annealing(model, params, 0, targets, key, config)
  with pytest.raises(ValueError, match=r"layer 12 \(fc2\) must have shape"):
    inversion.reconstruct_by_annealing(model, params, 12, targets, key, config)
  bad = np.asarray(targets).copy()
  bad[0, 3, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    inversion.reconstruct_by_annealing(model, params, 9, bad, key, config)
  with pytest.raises(ValueError, match="schedule"):
    annealing.AnnealingConfig(schedule="cosine")
  with pytest.raises(ValueError, match="input_scale"):
    inversion.reconstruct_by_annealing(
        model, params, 9, targets, key,
        annealing.AnnealingConfig(num_steps=2, num_runs=1,
                                  radius_units="input_rms"),
        input_scale=-1.0)
