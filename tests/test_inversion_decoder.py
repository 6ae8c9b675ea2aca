"""Decoders: structure, stacked training, checkpoints, decoding, the mangled
network check, decoder-then-backprop."""
import dataclasses
import functools
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
from recon_jax import provenance
from recon_jax.inversion import backprop
from recon_jax.inversion import decoder_io
from recon_jax.inversion import decoder_model
from recon_jax.inversion import decoder_train
from recon_jax.inversion import objective
from recon_jax.models import invertible
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
  config = inversion.DecoderTrainConfig(stage_steps=30, finetune_steps=30,
                                        **FAST)
  trained = inversion.train_decoder(
      model, params, 6, workdir=workdir,
      epoch_batches=inversion.array_batches(data[0], 32), config=config)
  return trained, workdir, config


def test_stages_mirror_the_padded_encoder():
  model = models.PhoneCNN(padding="SAME")
  stages = decoder_model.decoder_stages(model, 12, SHAPE)
  assert [(s.name, s.source_layer, s.target_layer, s.out_shape, s.pool_layer,
           s.relu) for s in stages] == [
               ("fc2", 12, 11, (512,), 0, True),
               ("fc1", 11, 9, (22, 64), 0, True),
               ("block3", 9, 6, (48, 64), 9, True),
               ("block2", 6, 3, (99, 32), 6, True),
               ("block1", 3, 0, (201, 16), 3, False)]
  assert [s.unpool_length for s in stages[2:]] == [48, 99, 201]
  assert [(s.name, s.pool_layer)
          for s in decoder_model.decoder_stages(model, 1, SHAPE)] == [
              ("block1", 0)]
  assert [(s.name, s.source_layer, s.pool_layer)
          for s in decoder_model.decoder_stages(model, 4, SHAPE)] == [
              ("block2", 4, 0), ("block1", 3, 3)]
  x = jnp.zeros((2,) + SHAPE)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  for layer in (1, 6, 12):
    y, sw = jax.eval_shape(lambda v: model.apply(v, x, layer=layer,
                                                 with_switches=True), variables)
    for unpooling in decoder_model.UNPOOLING:
      d = inversion.make_decoder(model, layer, unpooling, SHAPE)
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
  assert decoder_train.decoder_loss(trained, model, params,
                                    data[1]) < 0.5 * silence
  # The encoder did not train: its parameters still give the same targets.
  assert trained.encoder_fingerprint == decoder_io.params_fingerprint(params)
  # A second run resumes every stage from its last checkpoint: same result.
  again = inversion.train_decoder(
      model, params, 6, workdir=workdir,
      epoch_batches=inversion.array_batches(data[0], 32), config=config)
  jax.tree.map(np.testing.assert_array_equal, again.params, trained.params)


def test_saved_decoder_loads_and_mismatches_are_refused(trained_l6, encoder):
  trained, workdir, _ = trained_l6
  model, params = encoder
  loaded = inversion.load_decoder(workdir, model, params, layer=6)
  jax.tree.map(np.testing.assert_array_equal, loaded.params, trained.params)
  assert json.load(open(os.path.join(workdir, "decoder.json")))["layer"] == 6
  with pytest.raises(ValueError, match="trained to decode layer 6, not layer 9"):
    inversion.load_decoder(workdir, model, params, layer=9)
  other = models.PhoneCNN(conv_features=(32, 8, 16), dense_features=(32, 16),
                          num_classes=5, padding="SAME")
  with pytest.raises(ValueError, match="different config.*conv_features"):
    inversion.load_decoder(workdir, other, None, layer=6)
  retrained = jax.tree.map(lambda a: a + 1.0, params)
  with pytest.raises(ValueError, match="fingerprint"):
    inversion.load_decoder(workdir, model, retrained, layer=6)
  with pytest.raises(FileNotFoundError, match="no decoder"):
    inversion.load_decoder(os.path.join(workdir, "nothing"), model, params)
  assert inversion.decoder_exists(workdir)
  assert not inversion.decoder_exists(os.path.join(workdir, "nothing"))
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
      inversion.DecoderConfig(num_draws=3, noise_scale=0.05))
  assert runs.shape == (4, 3) + SHAPE and summary["energy"].shape == (4, 3)
  np.testing.assert_allclose(rec, runs.mean(axis=1), rtol=1e-5, atol=1e-6)
  assert not np.allclose(runs[:, 0], runs[:, 1])
  plain, runs0, _ = inversion.reconstruct_by_decoder(
      trained, model, params, 6, y, jax.random.key(1),
      inversion.DecoderConfig(num_draws=2, noise_scale=0.0))
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
      decoder=inversion.DecoderConfig(num_draws=2),
      backprop=backprop.BackpropConfig(max_steps=30, learning_rate=0.02))
  rec, runs, summary = inversion.reconstruct(
      "decoder_backprop", model, params, 6, y, jax.random.key(2), config,
      decoder=trained, input_shape=SHAPE)
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
  config = inversion.DecoderTrainConfig(stage_steps=0, finetune_steps=200,
                                        **FAST)
  trained = inversion.train_decoder(
      model, params, 1, workdir=str(tmp_path),
      epoch_batches=inversion.array_batches(data[0], 32), config=config)
  y = objective.layer_targets(model, params, data[1], 1)
  rec, _, _ = inversion.reconstruct_by_decoder(
      trained, model, params, 1, y, jax.random.key(0),
      inversion.DecoderConfig(num_draws=1, noise_scale=0.0))
  assert np.all(np.asarray(metrics.spectrogram_mxcorr(data[1], rec)) > 0.95)


def test_no_finetuning_keeps_the_stacked_stages(encoder, data, tmp_path):
  """finetune_steps=0 returns the stages as stacked training left them."""
  model, params = encoder
  config = inversion.DecoderTrainConfig(stage_steps=3, finetune_steps=0,
                                        **FAST)
  trained = inversion.train_decoder(
      model, params, 3, workdir=str(tmp_path),
      epoch_batches=inversion.array_batches(data[0], 32), config=config)
  assert not os.path.exists(os.path.join(str(tmp_path), "finetune"))
  loaded = inversion.load_decoder(str(tmp_path), model, params, 3)
  jax.tree.map(np.testing.assert_array_equal, loaded.params, trained.params)
  assert decoder_train.decoder_loss(trained, model, params, data[1]) > 0


def test_mangled_network_switch_unpooling_leaks_blind_does_not(encoder, data,
                                                               tmp_path):
  """Zero the first decoding conv (innermost, block3) of a layer-9 decoder.
  With switches, block2's bias unpooled at the switches of x still draws x;
  with blind unpooling (same parameters) the output is the same for every
  input. Linear stages (stage_relu=False) let every nonzero bias through, so
  the leak does not hinge on the sign the biases happened to train to."""
  model, params = encoder
  config = inversion.DecoderTrainConfig(
      unpooling="switch", stage_relu=False, stage_steps=0, finetune_steps=60,
      **FAST)
  switch = inversion.train_decoder(
      model, params, 9, workdir=str(tmp_path),
      epoch_batches=inversion.array_batches(data[0], 32), config=config)
  blind = dataclasses.replace(
      switch, module=switch.module.clone(unpooling="blind"), unpooling="blind")
  leaky = inversion.mangled_decoder_check(switch, model, params, data[1])
  sealed = inversion.mangled_decoder_check(blind, model, params, data[1])
  assert leaky["stage"] == sealed["stage"] == "block3"
  assert sealed["mangled_spread"] < 1e-5 and abs(sealed["leak"]) < 1e-6
  assert leaky["mangled_spread"] > 0.05
  assert leaky["leak"] > 0.05 + sealed["leak"]
  assert leaky["mangled_mxcorr2"] > sealed["mangled_mxcorr2"] + 0.05
  with pytest.raises(ValueError, match="switches"):
    inversion.reconstruct_by_decoder(
        switch, model, params, 9,
        objective.layer_targets(model, params, data[1], 9), jax.random.key(0))


def _untrained(encoder, layer, unpooling="blind", fill=0.0):
  """A TrainedDecoder for `encoder` whose parameters are all `fill` (made
  from their shapes, without compiling an init)."""
  model, params = encoder
  module = inversion.make_decoder(model, layer, unpooling, SHAPE)
  y, switches = decoder_model.dummy_inputs(model, layer, SHAPE)
  shapes = jax.eval_shape(module.init, jax.random.key(0), y,
                          switches)["params"]
  p = jax.tree.map(lambda s: np.full(s.shape, fill, np.float32), shapes)
  return decoder_io.TrainedDecoder(
      module, p, layer, unpooling, decoder_io.encoder_config(model),
      decoder_io.params_fingerprint(params), SHAPE)


def test_encoder_views_come_from_one_forward_pass(encoder, data,
                                                  monkeypatch):
  """Every activation a layer-12 decoder trains against, from ONE encoder
  forward pass (not one per layer), equal to running the encoder to each
  layer."""
  model, params = encoder
  x = jnp.asarray(data[1][:3])
  calls = []
  original = invertible.trace

  def count(net, params, x, layer=None):
    calls.append(layer)
    return original(net, params, x, layer)

  # (The first call also works out the activation shapes once, abstractly,
  # and caches them; every call after it is one forward pass.)
  decoder_model.encoder_views(model, params, x, 12)
  monkeypatch.setattr(invertible, "trace", count)
  views, switches = decoder_model.encoder_views(model, params, x, 12)
  assert calls == [12]
  assert sorted(views) == [0, 3, 6, 9, 11, 12]
  for number in (3, 6, 9, 11, 12):
    want = model.apply({"params": params}, x, layer=number)
    np.testing.assert_allclose(views[number], want, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(views[0], x)
  _, want_sw = model.apply({"params": params}, x, layer=12,
                           with_switches=True)
  assert sorted(switches) == sorted(want_sw) == [3, 6, 9]
  for k in want_sw:
    np.testing.assert_array_equal(switches[k], want_sw[k])


def test_decoder_files_record_their_origin_and_damage_is_named(
    trained_l6, encoder, tmp_path):
  trained, workdir, config = trained_l6
  model, params = encoder
  meta = provenance.read_json(os.path.join(workdir, "decoder.json"))
  assert meta["layer"] == 6 and meta["unpooling"] == "blind"
  assert meta["input_shape"] == [201, 16]
  assert meta["encoder"] == decoder_io.encoder_config(model)
  assert meta["encoder_fingerprint"] == provenance.fingerprint_arrays(
      jax.tree.map(lambda a: np.asarray(a, np.float32), params))
  assert meta["train_config"] == dataclasses.asdict(config)
  assert not [n for n in os.listdir(workdir) if n.startswith(".tmp")]
  copy = tmp_path / "copy"
  copy.mkdir()
  for name in ("decoder.json", "decoder.msgpack"):
    (copy / name).write_bytes(open(os.path.join(workdir, name), "rb").read())
  loaded = inversion.load_decoder(str(copy), model, params, 6)
  assert loaded.train_config == dataclasses.asdict(config)
  (copy / "decoder.msgpack").write_bytes(b"\x93\x01garbage")
  with pytest.raises(provenance.CorruptFileError, match="decoder.msgpack"):
    inversion.load_decoder(str(copy), model, params, 6)
  os.remove(copy / "decoder.msgpack")
  with pytest.raises(FileNotFoundError, match="no decoder.msgpack"):
    inversion.load_decoder(str(copy), model, params, 6)
  (copy / "decoder.json").write_text('{"layer": 6, "unpool')
  with pytest.raises(provenance.CorruptFileError,
                     match=f"{copy / 'decoder.json'} is damaged"):
    inversion.load_decoder(str(copy), model, params, 6)
  (copy / "decoder.json").write_text('{"layer": 6}')
  with pytest.raises(provenance.CorruptFileError, match="lacks"):
    inversion.load_decoder(str(copy), model, params, 6)


def test_switches_are_checked(encoder, data):
  model, params = encoder
  decoder = _untrained(encoder, 6, "switch")
  x = data[1][:2]
  y, switches = model.apply({"params": params}, jnp.asarray(x), layer=6,
                            with_switches=True)
  check = functools.partial(decoder_model.check_switches, decoder.module,
                            num_examples=2)
  checked = check(switches)
  assert sorted(checked) == [3, 6]
  for k in checked:
    np.testing.assert_array_equal(checked[k], switches[k])
  with pytest.raises(ValueError, match=r"pool layers \[3\] are missing"):
    check({6: switches[6]})
  with pytest.raises(ValueError, match="must be integer indices, got dtype "
                     "float32"):
    check({**switches, 3: np.asarray(switches[3], np.float32)})
  out_of_range = np.asarray(switches[6]).copy()
  out_of_range[0, 0, 0] = 99
  with pytest.raises(ValueError, match=r"pool layer 6 span \[\d+, 99\], "
                     r"outside \[0, 99\)"):
    check({**switches, 6: out_of_range})
  with pytest.raises(ValueError, match=r"span \[-1, "):
    check({**switches, 3: np.asarray(switches[3]) - 1 - np.asarray(
        switches[3]).min()})
  with pytest.raises(ValueError, match=r"must have shape \(2, 48, C\)"):
    check({**switches, 6: np.asarray(switches[6])[:, :40]})
  with pytest.raises(ValueError, match="needs the encoder's switches"):
    inversion.reconstruct_by_decoder(decoder, model, params, 6, y,
                                     jax.random.key(0))


def test_diverged_decodings_are_marked_not_averaged(encoder, data):
  """A decoder whose output is NaN (here NaN parameters) gives diverged
  draws; decoder-then-backprop marks those runs diverged (never converged)
  instead of failing on a NaN start."""
  model, params = encoder
  decoder = _untrained(encoder, 3, fill=np.nan)
  y = objective.layer_targets(model, params, data[1][:2], 3)
  rec, _, summary = inversion.reconstruct_by_decoder(
      decoder, model, params, 3, y, jax.random.key(0),
      inversion.DecoderConfig(num_draws=2))
  assert np.all(np.asarray(summary["run_diverged"]))
  assert np.asarray(summary["diverged"]).tolist() == [True, True]
  np.testing.assert_array_equal(rec, 0.0)
  rec, _, summary = inversion.reconstruct_by_decoder_then_backprop(
      decoder, model, params, 3, y, jax.random.key(0),
      inversion.DecoderConfig(num_draws=2),
      inversion.BackpropConfig(max_steps=3))
  assert np.all(np.asarray(summary["run_diverged"]))
  assert not np.any(np.asarray(summary["converged"]))
  assert np.asarray(summary["diverged"]).tolist() == [True, True]
  np.testing.assert_array_equal(rec, 0.0)


def test_decoder_input_shape_must_match(encoder, data, tmp_path):
  model, params = encoder
  decoder = _untrained(encoder, 3)
  y = objective.layer_targets(model, params, data[1][:2], 3)
  with pytest.raises(ValueError, match=r"input_shape \(200, 16\) does not "
                     r"match the decoder's input shape \(201, 16\)"):
    inversion.reconstruct("decoder", model, params, 3, y, jax.random.key(0),
                          decoder=decoder, input_shape=(200, 16))
  with pytest.raises(ValueError, match=r"input_shape \(200, 16\) does not "
                     r"match the training batches' \(freq, frames\) "
                     r"\(201, 16\)"):
    inversion.train_decoder(
        model, params, 3, workdir=str(tmp_path),
        epoch_batches=inversion.array_batches(data[0], 32),
        config=inversion.DecoderTrainConfig(stage_steps=1, finetune_steps=1),
        input_shape=(200, 16))
  assert not os.listdir(tmp_path)
  with pytest.raises(ValueError, match="DecoderTrainConfig"):
    inversion.train_decoder(model, params, 3, workdir=str(tmp_path),
                            epoch_batches=inversion.array_batches(data[0], 32),
                            config={"stage_steps": 1})


@pytest.mark.parametrize("cls,field,value,message", [
    ("DecoderTrainConfig", "stage_steps", -1, "stage_steps=-1: must be >= 0"),
    ("DecoderTrainConfig", "finetune_steps", -5,
     "finetune_steps=-5: must be >= 0"),
    ("DecoderTrainConfig", "unpooling", "max", "unpooling='max': must be one"),
    ("DecoderTrainConfig", "stage_relu", "yes", "stage_relu='yes'"),
    ("DecoderTrainConfig", "optimizer", "lbfgs", "optimizer='lbfgs'"),
    ("DecoderTrainConfig", "learning_rate", 0.0, "learning_rate=0.0"),
    ("DecoderTrainConfig", "checkpoint_every", 0, "checkpoint_every=0"),
    ("DecoderTrainConfig", "keep_checkpoints", 0, "keep_checkpoints=0"),
    ("DecoderTrainConfig", "log_every", 0, "log_every=0: must be >= 1"),
    ("DecoderTrainConfig", "seed", -1, "seed=-1"),
    ("DecoderConfig", "num_draws", 0, "num_draws=0: must be >= 1"),
    ("DecoderConfig", "noise_scale", -0.1, "noise_scale=-0.1"),
    ("DecoderConfig", "relative_noise", None, "relative_noise=None"),
    ("DecoderConfig", "weight_decay", -1.0, "weight_decay=-1.0"),
])
def test_impossible_settings_are_refused_when_built(cls, field, value,
                                                     message):
  cls = getattr(inversion, cls)
  with pytest.raises(ValueError, match=f"{cls.__name__}.{message}"):
    cls(**{field: value})
  with pytest.raises(ValueError, match=f"{cls.__name__}.{message}"):
    inversion.config_from_dict(cls, {field: value})


def test_training_nothing_is_refused():
  with pytest.raises(ValueError, match="stage_steps=0 and finetune_steps=0 "
                     "would train nothing"):
    inversion.DecoderTrainConfig(stage_steps=0, finetune_steps=0)
  with pytest.raises(ValueError, match="stage_steps=0 and finetune_steps=0"):
    inversion.DecoderTrainConfig().replace(stage_steps=0, finetune_steps=0)
  with pytest.raises(ValueError, match=r"unknown DecoderTrainConfig fields "
                     r"\['steps'\]"):
    inversion.config_from_dict(inversion.DecoderTrainConfig, {"steps": 3})
