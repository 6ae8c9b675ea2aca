"""Decoders: structure, stacked training, checkpoints, decoding, the mangled
network check, decoder-then-backprop."""
import dataclasses
import json
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
from recon_jax.inversion import decoder as dec
from recon_jax.inversion import objective
from recon_jax.train import metric_writers

sys.path.insert(0, os.path.dirname(__file__))
from test_inversion_fixtures import numpy_params  # noqa: E402
from test_inversion_fixtures import synthetic_spectrograms  # noqa: E402

SHAPE = (201, 16)
# conv1 keeps the thesis's 32 maps (so layer 1 is injective: 32 > 16 frames);
# the rest is narrow to keep the tests fast.
SMALL = models.PhoneCNN(conv_features=(32, 8, 8), dense_features=(32, 16),
                        num_classes=5, padding="SAME")
FAST = dict(learning_rate=1e-2, log_every=10, checkpoint_every=1000)


@pytest.fixture(scope="module")
def data():
  _, x, _ = synthetic_spectrograms(96, seed=0, unit_scale=True)
  return x[:64], x[64:]  # train (2 batches of 32), held out


@pytest.fixture(scope="module")
def encoder():
  return SMALL, numpy_params(SMALL)


@pytest.fixture(scope="module")
def trained_l6(encoder, data, tmp_path_factory):
  model, params = encoder
  workdir = str(tmp_path_factory.mktemp("dec6"))
  config = dec.DecoderTrainConfig(stage_steps=30, finetune_steps=30, **FAST)
  trained = dec.train_decoder(model, params, 6, workdir=workdir,
                              epoch_batches=dec.array_batches(data[0], 32),
                              config=config)
  return trained, workdir, config


def test_stages_mirror_the_padded_encoder():
  model = models.PhoneCNN(padding="SAME")
  stages = dec.decoder_stages(model, 12)
  assert [(s.name, s.source_layer, s.target_layer, s.out_shape, s.pool_layer,
           s.relu) for s in stages] == [
               ("fc2", 12, 11, (512,), 0, True),
               ("fc1", 11, 9, (22, 64), 0, True),
               ("block3", 9, 6, (48, 64), 9, True),
               ("block2", 6, 3, (99, 32), 6, True),
               ("block1", 3, 0, (201, 16), 3, False)]
  assert [s.unpool_length for s in stages[2:]] == [48, 99, 201]
  assert [(s.name, s.pool_layer) for s in dec.decoder_stages(model, 1)] == [
      ("block1", 0)]
  assert [(s.name, s.source_layer, s.pool_layer)
          for s in dec.decoder_stages(model, 4)] == [("block2", 4, 0),
                                                     ("block1", 3, 3)]
  x = jnp.zeros((2,) + SHAPE)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  for layer in (1, 6, 12):
    y, sw = jax.eval_shape(lambda v: model.apply(v, x, layer=layer,
                                                 with_switches=True), variables)
    for unpooling in dec.UNPOOLING:
      d = dec.make_decoder(model, layer, unpooling)
      out = jax.eval_shape(lambda y, sw: d.apply(d.init(jax.random.key(0), y,
                                                        sw), y, sw), y, sw)
      assert out.shape == (2,) + SHAPE, (layer, unpooling)


def test_stacked_training_lowers_each_loss_and_resumes(trained_l6, encoder,
                                                       data):
  trained, workdir, config = trained_l6
  model, params = encoder
  names = sorted(os.listdir(workdir))
  assert names == ["decoder.json", "decoder.msgpack", "finetune",
                   "stage1_block2", "stage2_block1"]
  for stage in ("stage1_block2", "stage2_block1", "finetune"):
    losses = [r["train/loss"] for r in metric_writers.read_jsonl_metrics(
        os.path.join(workdir, stage)) if "train/loss" in r]
    assert losses[-1] < 0.7 * losses[0], (stage, losses)
  # Held out, the decoder beats silence (the thesis's trap) by far.
  silence = 0.5 * np.mean(np.sum(data[1].reshape(len(data[1]), -1)**2, -1))
  assert dec.decoder_loss(trained, model, params, data[1]) < 0.5 * silence
  # The encoder did not train: its parameters still give the same targets.
  assert trained.encoder_fingerprint == dec.params_fingerprint(params)
  # A second run resumes every stage from its last checkpoint: same result.
  again = dec.train_decoder(model, params, 6, workdir=workdir,
                            epoch_batches=dec.array_batches(data[0], 32),
                            config=config)
  jax.tree.map(np.testing.assert_array_equal, again.params, trained.params)


def test_saved_decoder_loads_and_mismatches_are_refused(trained_l6, encoder):
  trained, workdir, _ = trained_l6
  model, params = encoder
  loaded = dec.load_decoder(workdir, model, params, layer=6)
  jax.tree.map(np.testing.assert_array_equal, loaded.params, trained.params)
  assert json.load(open(os.path.join(workdir, "decoder.json")))["layer"] == 6
  with pytest.raises(ValueError, match="trained to decode layer 6, not layer 9"):
    dec.load_decoder(workdir, model, params, layer=9)
  other = models.PhoneCNN(conv_features=(32, 8, 16), dense_features=(32, 16),
                          num_classes=5, padding="SAME")
  with pytest.raises(ValueError, match="different config.*conv_features"):
    dec.load_decoder(workdir, other, None, layer=6)
  retrained = jax.tree.map(lambda a: a + 1.0, params)
  with pytest.raises(ValueError, match="fingerprint"):
    dec.load_decoder(workdir, model, retrained, layer=6)
  with pytest.raises(ValueError, match="no decoder"):
    dec.load_decoder(os.path.join(workdir, "nothing"), model, params)
  y = objective.layer_targets(model, params, jnp.zeros((2,) + SHAPE), 6)
  with pytest.raises(ValueError, match="fingerprint"):
    inversion.reconstruct_by_decoder(trained, model, retrained, 6, y,
                                     jax.random.key(0))


def test_decoding_averages_noisy_draws(trained_l6, encoder, data):
  trained, _, _ = trained_l6
  model, params = encoder
  x = data[1][:4]
  y = objective.layer_targets(model, params, x, 6)
  rec, runs, summary = inversion.reconstruct_by_decoder(
      trained, model, params, 6, y, jax.random.key(1),
      dec.DecoderConfig(num_draws=3, noise_scale=0.05))
  assert runs.shape == (4, 3) + SHAPE and summary["energy"].shape == (4, 3)
  np.testing.assert_allclose(rec, runs.mean(axis=1), rtol=1e-5, atol=1e-6)
  assert not np.allclose(runs[:, 0], runs[:, 1])
  plain, runs0, _ = inversion.reconstruct_by_decoder(
      trained, model, params, 6, y, jax.random.key(1),
      dec.DecoderConfig(num_draws=2, noise_scale=0.0))
  np.testing.assert_allclose(runs0[:, 0], runs0[:, 1])
  want = trained.module.apply({"params": trained.params}, y)
  np.testing.assert_allclose(plain, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match=r"layer 6 \(pool2\) must have shape"):
    inversion.reconstruct_by_decoder(trained, model, params, 6, y[:, :5],
                                     jax.random.key(1))
  with pytest.raises(ValueError, match="not layer 3"):
    inversion.reconstruct_by_decoder(
        trained, model, params, 3, objective.layer_targets(model, params, x, 3),
        jax.random.key(1))


def test_decoder_then_backprop_lowers_the_energy(trained_l6, encoder, data):
  trained, _, _ = trained_l6
  model, params = encoder
  x = data[1][:4]
  y = objective.layer_targets(model, params, x, 6)
  config = inversion.ReconstructionConfig(
      decoder=dec.DecoderConfig(num_draws=2),
      backprop=backprop.BackpropConfig(max_steps=30, learning_rate=0.02))
  rec, runs, summary = inversion.reconstruct(
      "decoder_backprop", model, params, 6, y, jax.random.key(2), config,
      decoder=trained)
  direct = inversion.reconstruct_by_decoder_then_backprop(
      trained, model, params, 6, y, jax.random.key(2), config.decoder,
      config.backprop)
  np.testing.assert_array_equal(direct[0], rec)
  assert runs.shape == (4, 2) + SHAPE
  assert np.all(np.asarray(summary["energy"])
                < np.asarray(summary["decoder_energy"]))


def test_layer1_decoder_is_near_perfect(encoder, data, tmp_path):
  """Layer 1 is linear and injective (32 maps > 16 frames), so one transposed
  conv of the same width can undo it almost exactly: a briefly trained
  decoder already gives mxcorr2 > 0.95 on held-out inputs."""
  model, params = encoder
  config = dec.DecoderTrainConfig(stage_steps=0, finetune_steps=200, **FAST)
  trained = dec.train_decoder(model, params, 1, workdir=str(tmp_path),
                              epoch_batches=dec.array_batches(data[0], 32),
                              config=config)
  y = objective.layer_targets(model, params, data[1], 1)
  rec, _, _ = inversion.reconstruct_by_decoder(
      trained, model, params, 1, y, jax.random.key(0),
      dec.DecoderConfig(num_draws=1, noise_scale=0.0))
  assert np.all(np.asarray(metrics.spectrogram_mxcorr(data[1], rec)) > 0.95)


def test_mangled_network_switch_unpooling_leaks_blind_does_not(encoder, data,
                                                               tmp_path):
  """Zero the first decoding conv (innermost, block3) of a layer-9 decoder.
  With switches, block2's bias unpooled at the switches of x still draws x;
  with blind unpooling (same parameters) the output is the same for every
  input. Linear stages (stage_relu=False) let every nonzero bias through, so
  the leak does not hinge on the sign the biases happened to train to."""
  model, params = encoder
  config = dec.DecoderTrainConfig(unpooling="switch", stage_relu=False,
                                  stage_steps=0, finetune_steps=60, **FAST)
  switch = dec.train_decoder(model, params, 9, workdir=str(tmp_path),
                             epoch_batches=dec.array_batches(data[0], 32),
                             config=config)
  blind = dataclasses.replace(
      switch, module=switch.module.clone(unpooling="blind"), unpooling="blind")
  leaky = dec.mangled_decoder_check(switch, model, params, data[1])
  sealed = dec.mangled_decoder_check(blind, model, params, data[1])
  assert leaky["stage"] == sealed["stage"] == "block3"
  assert sealed["mangled_spread"] < 1e-5 and abs(sealed["leak"]) < 1e-6
  assert leaky["mangled_spread"] > 0.05
  assert leaky["leak"] > 0.05 + sealed["leak"]
  assert leaky["mangled_mxcorr2"] > sealed["mangled_mxcorr2"] + 0.05
  with pytest.raises(ValueError, match="switches"):
    inversion.reconstruct_by_decoder(
        switch, model, params, 9,
        objective.layer_targets(model, params, data[1], 9), jax.random.key(0))
