"""Simulated annealing: the band neighbour, the schedule, acceptance."""
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import models
from recon_jax.inversion import annealing
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
  # Exactly half of Q's 6 x 16 entries change: all of them inside the
  # border for a band that does not hang over, at most that many otherwise.
  counts = np.count_nonzero(deltas, axis=(1, 2))
  first = [r[0] if len(r) else -1 for r in rows_touched]
  inside = np.array([0 < f and r[-1] < SHAPE[0] - 1 and len(r) == 6
                     for f, r in zip(first, rows_touched)])
  assert inside.sum() > 500
  assert np.all(counts[inside] == 48)
  assert np.all(counts <= 48) and np.any(counts[~inside] < 48)


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
        model, params, 1, targets, jax.random.key(4), config,
        input_shape=SHAPE)
  rec, runs, summary = cold["scan"]
  via = inversion.reconstruct(
      "annealing", model, params, 1, targets, jax.random.key(4),
      inversion.ReconstructionConfig(annealing=config.__class__(
          num_steps=100, num_runs=2, loop="python", initial_temperature=0.0)),
      input_shape=SHAPE)
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
  # What each run did: accepted / proposals, and the RMS distance X moved
  # from its start (silence here).
  np.testing.assert_array_equal(summary["proposals"], 100)
  np.testing.assert_allclose(summary["acceptance_rate"],
                             np.asarray(summary["accepted"]) / 100.0)
  np.testing.assert_allclose(
      summary["distance_moved"],
      np.sqrt(np.mean(np.asarray(runs)**2, axis=(-2, -1))), rtol=1e-5)
  assert np.all(np.asarray(summary["distance_moved"]) > 0)
  assert not np.any(np.asarray(summary["run_diverged"]))
  assert not np.any(np.asarray(summary["diverged"]))
  # Hot early steps do take worse states.
  config = annealing.AnnealingConfig(num_steps=100, num_runs=2, loop="scan",
                                     initial_temperature=0.1,
                                     schedule="exponential",
                                     radius_units="input_rms")
  _, _, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(4), config, input_scale=2.0,
      input_shape=SHAPE)
  assert np.sum(np.asarray(summary["worse_accepted"])) > 0
  np.testing.assert_allclose(summary["radius"], 0.1, rtol=1e-6)
  _, _, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(4), config,
      input_shape=SHAPE)  # estimated
  estimate = annealing.estimate_input_rms(model, params, 1, targets, SHAPE)
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
                                                  targets, SHAPE))
    assert np.all((got > 0.25 * rms) & (got < 2.5 * rms)), (layer, got, rms)


def test_neighbour_matrix_changes_exactly_the_fraction():
  """round(fraction * n * w) entries (half up) of Q, every draw; each
  nonzero value in (-r, 0) or (0, r); the positions differ between draws."""
  keys = jax.random.split(jax.random.key(1), 200)
  for rows, width, fraction, count in [(5, 16, 0.5, 40), (3, 5, 0.3, 5),
                                       (1, 16, 1.0, 16), (2, 3, 0.01, 0)]:
    config = annealing.AnnealingConfig(band_rows=rows, fraction=fraction,
                                       radius=0.05)
    assert annealing.neighbour_count(config, width) == count
    qs = np.asarray(jax.jit(jax.vmap(lambda k, c=config, w=width: (
        annealing.neighbour_matrix(k, w, c))))(keys))
    assert qs.shape == (200, rows, width)
    np.testing.assert_array_equal(np.count_nonzero(qs, axis=(1, 2)), count)
    assert np.all(np.abs(qs) < 0.05)
    if 0 < count < rows * width:
      assert len({tuple(np.flatnonzero(q)) for q in qs}) > 100
      assert np.any(qs > 0) and np.any(qs < 0)
  # band_neighbour adds exactly this Q (drawn with its second key) on rows
  # first .. first + 4 of X, first from its first key; overhang dropped.
  config = annealing.AnnealingConfig(band_rows=5)

  @jax.jit
  def parts(key):
    k_start, k_q = jax.random.split(key)
    return (annealing.band_neighbour(key, jnp.zeros((40, 16)), config),
            annealing.neighbour_matrix(k_q, 16, config),
            jax.random.randint(k_start, (), -4, 40))

  firsts = set()
  for seed in range(12):
    delta, q, first = map(np.asarray, parts(jax.random.key(seed)))
    want = np.zeros((50, 16), np.float32)
    want[first + 5:first + 10] = q
    np.testing.assert_array_equal(delta, want[5:45])
    firsts.add(int(first))
  assert len(firsts) > 6


def test_non_finite_energy_marks_the_run_diverged(small):
  """A run whose E is Inf (here its start overflows float32) makes no
  proposals, is marked diverged and is left out of its example's average;
  an example whose runs all diverged gets a zero reconstruction. (Same
  shapes and settings as the cold-run test: no new compile.)"""
  model, params = small
  x = 0.1 * jax.random.normal(jax.random.key(2), (3,) + SHAPE)
  targets = objective.layer_targets(model, params, x, 1)
  starts = np.zeros((3, 2) + SHAPE, np.float32)
  starts[0, 1] = 1e19
  starts[2] = 1e19
  config = annealing.AnnealingConfig(num_steps=100, num_runs=2, loop="scan",
                                     initial_temperature=0.0)
  rec, runs, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(0), config, init=starts)
  assert np.asarray(summary["run_diverged"]).tolist() == [
      [False, True], [False, False], [True, True]]
  assert np.asarray(summary["diverged"]).tolist() == [False, False, True]
  np.testing.assert_array_equal(np.asarray(summary["proposals"]),
                                [[100, 0], [100, 100], [0, 0]])
  np.testing.assert_array_equal(summary["acceptance_rate"][2], 0.0)
  np.testing.assert_array_equal(rec[0], runs[0, 0])
  np.testing.assert_allclose(rec[1], runs[1].mean(0), rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(rec[2], 0.0)


def test_bad_inputs_raise_clear_errors(small):
  model, params = small
  targets = objective.layer_targets(model, params, jnp.zeros((2,) + SHAPE), 9)
  config = annealing.AnnealingConfig(num_steps=2, num_runs=1)
  key = jax.random.key(0)
  run = functools.partial(inversion.reconstruct_by_annealing, model, params,
                          input_shape=SHAPE)
  with pytest.raises(ValueError, match="layer 0 does not exist"):
    run(0, targets, key, config)
  with pytest.raises(ValueError, match=r"layer 12 \(fc2\) must have shape"):
    run(12, targets, key, config)
  bad = np.asarray(targets).copy()
  bad[0, 3, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    run(9, bad, key, config)
  with pytest.raises(ValueError, match="input_scale"):
    run(9, targets, key,
        annealing.AnnealingConfig(num_steps=2, num_runs=1,
                                  radius_units="input_rms"),
        input_scale=-1.0)
  with pytest.raises(ValueError, match="input_shape is needed"):
    inversion.reconstruct_by_annealing(model, params, 9, targets, key, config)
  with pytest.raises(ValueError, match=r"start X0 \(N, K, F, T\) holds"):
    run(9, targets, key, config,
        init=np.full((2, 1) + SHAPE, np.nan, np.float32))
  with pytest.raises(ValueError, match="start X0 holds"):
    run(9, targets, key, config,
        init=np.full((2,) + SHAPE, np.inf, np.float32))
  with pytest.raises(ValueError, match=r"start X0 must have shape"):
    run(9, targets, key, config, init=np.zeros((2, 2) + SHAPE, np.float32))


@pytest.mark.parametrize("field,value,message", [
    ("num_steps", 1, "num_steps=1: must be >= 2"),
    ("num_steps", 10.0, "num_steps=10.0: must be an integer"),
    ("band_rows", 0, "band_rows=0: must be >= 1"),
    ("fraction", 0.0, "fraction=0.0"),
    ("fraction", 1.5, "fraction=1.5"),
    ("radius", 0.0, "radius=0.0"),
    ("radius", float("inf"), "radius=inf"),
    ("radius_units", "rms", "radius_units='rms': must be one of"),
    ("initial_temperature", -1.0, "initial_temperature=-1.0"),
    ("relative_temperature", 1, "relative_temperature=1: must be True or "
     "False"),
    ("schedule", "cosine", "schedule='cosine': must be one of"),
    ("final_ratio", 1.5, "final_ratio=1.5"),
    ("final_ratio", -0.1, "final_ratio=-0.1"),
    ("final_ratio", 0.0, "final_ratio=0.0"),
    ("weight_decay", -1.0, "weight_decay=-1.0"),
    ("num_runs", 0, "num_runs=0: must be >= 1"),
    ("init_scale", -0.5, "init_scale=-0.5"),
    ("loop", "for", "loop='for'"),
])
def test_impossible_settings_are_refused_when_built(field, value, message):
  with pytest.raises(ValueError, match=f"AnnealingConfig.{message}"):
    annealing.AnnealingConfig(**{field: value})
