"""The search methods on any network of the inversion protocol: CNN12 on
waveforms (E's gradient against finite differences, backprop, annealing)
and a user's declared net, written only here, through every method
(sonify, backprop, annealing)."""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import models
from recon_jax.inversion import annealing
from recon_jax.inversion import backprop
from recon_jax.inversion import decoder_model
from recon_jax.inversion import objective
from recon_jax.models import invertible as inv
from recon_jax.train import metric_writers

CNN12 = models.CNN12(widths=(2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8))
T = 2400
# Neither paper's kernels, strides, paddings or pools: a strided SAME conv,
# a padded overlapping pool, an explicitly padded conv, a stride-3 conv.
USER = inv.InvertibleNet(
    ops=(inv.conv(6, 7, stride=2, padding="SAME", name="c1"), inv.relu(),
         inv.max_pool(3, 2, padding=(1, 1)),
         inv.conv(8, 4, padding=(2, 1), name="c2"), inv.relu(),
         inv.conv(4, 3, stride=3, name="c3"), inv.relu(),
         inv.temporal_mean(), inv.dense(3, name="out")),
    waveform=True, name="UserNet")
USER_T = 120


def _params(net, example_shape, seed=0):
  rng = np.random.default_rng(seed)
  params = {}
  # pylint: disable-next=protected-access
  shapes = inv._param_shapes(net, example_shape)
  for path, shape in shapes.items():
    if path[-1] == "kernel":
      value = rng.normal(size=shape) * np.sqrt(2 / np.prod(shape[:-1]))
    else:
      value = rng.uniform(0.0, 0.1, size=shape)
    params.setdefault(path[0], {})[path[1]] = value.astype(np.float32)
  return params


def _waves(n, length, seed=1):
  return np.random.default_rng(seed).uniform(-1, 1, (n, length)).astype(
      np.float32)


@pytest.fixture(scope="module")
def cnn12():
  return CNN12, _params(CNN12.invertible(), (T,))


@pytest.mark.parametrize("layer", [1, 3, 9])
def test_cnn12_energy_gradient_matches_central_differences(cnn12, layer):
  """dE/dx on a waveform x (T,) against float64 central differences."""
  model, params = cnn12
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x_true = jnp.asarray(_waves(1, T)[0], jnp.float64)
    target = objective.layer_activation(model, p64, x_true, layer)
    e = objective.make_energy(model, p64, layer, weight_decay=0.3)
    energy = lambda x: e(x, target)  # noqa: E731
    x = jnp.asarray(_waves(1, T, seed=7)[0], jnp.float64)
    grad = jax.grad(energy)(x)
    assert grad.shape == (T,) and grad.dtype == jnp.float64
    h = 1e-6
    for i in range(3):
      v = jax.random.normal(jax.random.key(100 + i), (T,), jnp.float64)
      fd = (energy(x + h * v) - energy(x - h * v)) / (2 * h)
      np.testing.assert_allclose(float(jnp.vdot(grad, v)), float(fd),
                                 rtol=1e-5, atol=1e-8)
    y = np.asarray(model.apply({"params": p64}, x[None], block=layer).output)
    want = 0.5 * np.sum((y[0] - np.asarray(target))**2) + 0.15 * np.sum(
        np.asarray(x)**2)
    np.testing.assert_allclose(float(energy(x)), want, rtol=1e-10)


def test_cnn12_backprop_on_waveforms(cnn12):
  model, params = cnn12
  x = _waves(2, T)
  targets = objective.layer_targets(model, params, x, 3)
  assert targets.shape == (2, 295, 4)
  config = backprop.BackpropConfig(max_steps=30, num_starts=2,
                                   learning_rate=0.05, loop="python")
  rec, runs, summary = inversion.reconstruct(
      "backprop", model, params, 3, targets, jax.random.key(0),
      inversion.ReconstructionConfig(backprop=config), input_shape=(T,))
  assert rec.shape == (2, T) and runs.shape == (2, 2, T)
  start = backprop.starting_points(jax.random.key(0), 2, config, (T,))
  e0 = objective.make_runs_energy(model, 3, config.weight_decay)(
      params, start, targets)
  assert np.all(np.asarray(summary["energy"]) < 0.5 * np.asarray(e0))
  assert not np.any(np.asarray(summary["run_diverged"]))
  np.testing.assert_allclose(rec, np.asarray(runs).mean(1), rtol=1e-6,
                             atol=1e-7)
  # A start with the K axis; the input shape from it.
  _, runs2, _ = inversion.reconstruct_by_backprop(
      model, params, 3, targets, jax.random.key(0),
      config.replace(max_steps=1), init=np.zeros((2, 2, T), np.float32))
  assert runs2.shape == (2, 2, T)


def test_cnn12_annealing_on_waveforms(cnn12):
  model, params = cnn12
  x = _waves(2, T)
  targets = objective.layer_targets(model, params, x, 1)
  config = annealing.AnnealingConfig(num_steps=60, num_runs=2,
                                     initial_temperature=0.0, band_rows=40,
                                     radius=0.3)
  rec, runs, summary = inversion.reconstruct_by_annealing(
      model, params, 1, targets, jax.random.key(1), config, input_shape=(T,))
  assert rec.shape == (2, T) and runs.shape == (2, 2, T)
  e0 = objective.make_runs_energy(model, 1, config.weight_decay)(
      params, jnp.zeros((2, 1, T)), targets)
  assert np.all(np.asarray(summary["accepted"]) > 0)
  assert np.all(np.asarray(summary["energy"]) < np.asarray(e0))
  assert np.all(np.asarray(summary["worse_accepted"]) == 0)
  # Each accepted proposal changed 20 consecutive samples (half of 40).
  moved = np.count_nonzero(np.asarray(runs), axis=-1)
  assert np.all(moved >= 20)
  rms = annealing.estimate_input_rms(model, params, 1, targets, (T,))
  assert rms.shape == (2,) and np.all(np.asarray(rms) > 0)


def test_band_neighbour_of_a_waveform_is_a_run_of_samples():
  config = annealing.AnnealingConfig(band_rows=6, fraction=0.5, radius=0.05)
  x = jnp.zeros(50)
  deltas = np.asarray(jax.vmap(lambda k: annealing.band_neighbour(
      k, x, config))(jax.random.split(jax.random.key(0), 300)))
  assert deltas.shape == (300, 50)
  for d in deltas:
    nz = np.flatnonzero(d)
    assert len(nz) <= 3 and (len(nz) == 0 or nz[-1] - nz[0] < 6)
  assert np.all(np.abs(deltas) < 0.05)


@pytest.fixture(scope="module")
def user():
  module = inv.DeclaredNet(USER)
  x = _waves(3, USER_T, seed=4)
  params = module.init(jax.random.key(0), x)["params"]
  params = jax.tree.map(lambda a: a + 0.05 if a.ndim == 1 else a, params)
  return module, params, x


def test_user_net_through_every_method(user):
  module, params, x = user
  # Sonification: the input's shape.
  s = np.asarray(inversion.sonify(module, params, x, 6, 2))
  assert s.shape == (3, USER_T) and np.all(np.isfinite(s))
  # Backprop and annealing from layer 6 (ReLU after the stride-3 conv) and
  # layer 3 (the padded pool), by the one entry point.
  config = inversion.ReconstructionConfig.from_dict({
      "backprop": dict(max_steps=60, num_starts=2, learning_rate=0.05),
      "annealing": dict(num_steps=150, num_runs=2, initial_temperature=0.0,
                        band_rows=8, radius=0.2)})
  for layer in (3, 6):
    targets = objective.layer_targets(module, params, x, layer)
    for method in ("backprop", "annealing"):
      rec, runs, summary = inversion.reconstruct(
          method, module, params, layer, targets, jax.random.key(layer),
          config, input_shape=(USER_T,))
      assert rec.shape == (3, USER_T) and runs.shape == (3, 2, USER_T)
      start = (jnp.zeros((3, 2, USER_T)) if method == "annealing" else
               backprop.starting_points(jax.random.key(layer), 3,
                                        config.backprop, (USER_T,)))
      e0 = objective.make_runs_energy(module, layer, 1e-3)(params, start,
                                                            targets)
      assert np.all(np.asarray(summary["energy"]) < np.asarray(e0)), (
          method, layer)
      assert not np.any(np.asarray(summary["diverged"]))
  # The same with the plain description instead of the module.
  targets = objective.layer_targets(USER, params, x, 3)
  np.testing.assert_array_equal(
      targets, objective.layer_targets(module, params, x, 3))


def test_user_net_curvature_is_the_gauss_newton_top_eigenvalue(user):
  module, params, x = user
  fn = lambda z: objective.layer_activation(module, params, z, 4)  # noqa: E731
  x0 = jnp.asarray(x[0])
  jac = jax.jacrev(fn)(x0).reshape((-1, x0.size))
  top = np.linalg.eigvalsh(np.asarray(jac.T @ jac, np.float64))[-1] + 0.01
  got = float(objective.curvature(module, params, 4, x0, 0.01, iters=60))
  assert 0.9 * top <= got <= 1.0001 * top


def test_user_net_problems_are_named(user):
  module, params, x = user
  targets = objective.layer_targets(module, params, x, 6)
  run = functools.partial(inversion.reconstruct_by_backprop, module, params,
                          config=backprop.BackpropConfig(max_steps=2))
  with pytest.raises(ValueError, match=r"input_shape must be \(samples,\), "
                     "one integer >= 1"):
    run(6, targets, jax.random.key(0), input_shape=(USER_T, 1))
  with pytest.raises(ValueError, match=r"target activations for layer 3 "
                     r"\(pool1\) must have shape \(N, 30, 6\)"):
    run(3, targets, jax.random.key(0), input_shape=(USER_T,))
  with pytest.raises(ValueError, match="layer 10 does not exist: UserNet"):
    run(10, targets, jax.random.key(0), input_shape=(USER_T,))
  with pytest.raises(ValueError, match=r"inputs of shape \(3,\) do not fit "
                     "this UserNet"):
    run(6, targets, jax.random.key(0), input_shape=(3,))
  with pytest.raises(ValueError, match=r"originals must have rank in \(2,\)"):
    objective.layer_targets(module, params, x[..., None], 6)
  with pytest.raises(ValueError, match=r"the start X0's \(T,\) \(100,\)"):
    run(6, targets, jax.random.key(0), input_shape=(USER_T,),
        init=np.zeros((3, 100), np.float32))


def _tones(n, length, seed=0):
  """Waveforms a decoder can learn: a few random sinusoids each."""
  rng = np.random.default_rng(seed)
  t = np.arange(length)
  out = np.zeros((n, length))
  for i in range(n):
    for _ in range(3):
      out[i] += rng.uniform(0.2, 1) * np.sin(
          2 * np.pi * rng.uniform(0.002, 0.05) * t + rng.uniform(0, 6.3))
  return (out / np.abs(out).max(axis=1, keepdims=True)).astype(np.float32)


def _stage_losses(workdir, stage):
  return [r["train/loss"] for r in metric_writers.read_jsonl_metrics(
      os.path.join(workdir, stage)) if "train/loss" in r]


def test_stacked_decoder_on_cnn12_waveforms(cnn12, tmp_path):
  """Innermost stage first, then outwards, then fine-tuned, on CNN12's
  blocks over waveforms; decoding, decoder-then-backprop, save and load."""
  model, params = cnn12
  x = _tones(40, T)
  config = inversion.DecoderTrainConfig(stage_steps=15, finetune_steps=15,
                                        learning_rate=1e-2, log_every=5,
                                        checkpoint_every=1000)
  workdir = str(tmp_path / "dec")
  trained = inversion.train_decoder(
      model, params, 2, workdir=workdir,
      epoch_batches=inversion.array_batches(x[:32], 16), config=config)
  stages = trained.module.stages
  assert [(s.name, s.source_layer, s.target_layer, s.out_shape)
          for s in stages] == [("block2", 6, 3, (1197, 2)),
                               ("block1", 3, 0, (T,))]
  for stage in ("stage1_block2", "stage2_block1", "finetune"):
    losses = _stage_losses(workdir, stage)
    assert losses[-1] < losses[0], (stage, losses)
  targets = objective.layer_targets(model, params, x[32:], 2)
  rec, runs, summary = inversion.reconstruct_by_decoder(
      trained, model, params, 2, targets, jax.random.key(0))
  assert rec.shape == (8, T) and runs.shape == (8, 4, T)
  assert not np.any(np.asarray(summary["diverged"]))
  rec2, runs2, summary2 = inversion.reconstruct_by_decoder_then_backprop(
      trained, model, params, 2, targets, jax.random.key(0),
      backprop_config=backprop.BackpropConfig(max_steps=5))
  assert rec2.shape == (8, T) and "decoder_energy" in summary2
  loaded = inversion.load_decoder(workdir, model, params, layer=2)
  jax.tree.map(np.testing.assert_array_equal, loaded.params, trained.params)


def test_stacked_decoder_on_a_user_net(user, tmp_path):
  """The declared net's strided and padded convs, padded pool, temporal
  mean and dense layer, each mirrored by a stage; blind and switch
  unpooling; the mangled-network check on waveforms."""
  module, params, _ = user
  x = _tones(40, USER_T, seed=3)
  config = inversion.DecoderTrainConfig(stage_steps=15, finetune_steps=15,
                                        learning_rate=1e-2, log_every=5,
                                        checkpoint_every=1000)
  for unpooling in ("blind", "switch"):
    workdir = str(tmp_path / unpooling)
    trained = inversion.train_decoder(
        module, params, 9, workdir=workdir,
        epoch_batches=inversion.array_batches(x[:32], 16),
        config=config.replace(unpooling=unpooling))
    stages = trained.module.stages
    assert [(s.name, s.kind, s.source_layer, s.target_layer)
            for s in stages] == [("out", "dense", 9, 8),
                                 ("block3", "conv", 8, 5),
                                 ("block2", "conv", 5, 3),
                                 ("block1", "conv", 3, 0)]
    assert stages[1].mean_length == 10 and stages[1].stride == 3
    assert stages[3].pool_padding == (1, 1) and stages[3].stride == 2
    assert stages[3].out_shape == (USER_T,)
    losses = _stage_losses(workdir, "finetune")
    assert losses[-1] < losses[0]
    targets = objective.layer_targets(module, params, x[32:], 9)
    switches = None
    if unpooling == "switch":
      _, switches = decoder_model.encoder_views(module, params, x[32:], 9)
    rec, _, _ = inversion.reconstruct_by_decoder(
        trained, module, params, 9, targets, jax.random.key(0),
        switches=switches)
    assert rec.shape == (8, USER_T)
    loaded = inversion.load_decoder(workdir, module, params, layer=9)
    jax.tree.map(np.testing.assert_array_equal, loaded.params,
                 trained.params)
    check = inversion.mangled_decoder_check(trained, module, params, x[32:])
    assert np.isfinite(check["intact_mxcorr2"])
    if unpooling == "blind":
      assert check["mangled_spread"] < 1e-6  # input-independent
