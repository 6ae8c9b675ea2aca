"""CNN12 SimCLR: the NT-Xent step over the global batch, and the recipe."""
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from recon_jax import provenance
from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.train import cnn12_contrastive as con
from recon_jax.train import cnn12_eval
from recon_jax.train import loop
from recon_jax.train import losses

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from configs import cnn12_simclr  # noqa: E402

CLIP = 2400


def clip_data(n_train=16, n_eval=8, seed=0, fingerprint="clips"):
  """Keyword-style data of varied tones (labels unused by SimCLR)."""
  rng = np.random.default_rng(seed)
  t = np.arange(CLIP) / 8000.0

  def split(n):
    f = rng.uniform(100, 3000, (n, 1))
    am = 1 + rng.uniform(0, 1, (n, 1)) * np.sin(
        2 * np.pi * rng.uniform(1, 20, (n, 1)) * t)
    x = np.sin(2 * np.pi * f * t) * am + 0.3 * rng.normal(size=(n, CLIP))
    x /= np.abs(x).max(1, keepdims=True)
    return audio_folder.KeywordSplit(x.astype(np.float32),
                                     np.zeros(n, np.int32),
                                     tuple(f"a/{i}.wav" for i in range(n)))

  return audio_folder.KeywordData(
      train=split(n_train), validation=split(n_eval), test=split(n_eval),
      class_names=("a",),
      background=(rng.normal(size=3000).astype(np.float32),
                  rng.normal(size=1500).astype(np.float32)),
      background_names=("a.wav", "b.wav"), sample_rate=8000,
      fingerprint=fingerprint)


def simclr_config(**train):
  c = cnn12_simclr.get_config("tiny")
  c.data.source = "generated_keywords"
  c.background.source = "data"
  c.contrastive.view_seconds = CLIP / 8000
  c.contrastive.min_gap_seconds = 100 / 8000
  c.train.batch_size = 16
  for k, v in train.items():
    c.train[k] = v
  return c


def he_init(shapes, seed=0):
  """Host parameters that keep CNN12's activations alive (He-scaled convs),
  so gradients are well above rounding noise and comparisons are tight."""
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = jax.tree_util.keystr(path)
    if name.endswith("['bias']"):
      return (0.01 * rng.normal(size=s.shape)).astype(np.float32)
    fan_in = int(np.prod(s.shape[:-1]))
    gain = 2.0 if "conv" in name else 1.0
    return (rng.normal(size=s.shape) * np.sqrt(gain / fan_in)).astype(
        np.float32)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


def test_step_on_eight_devices_equals_one_device_and_per_device_differs(
    tmp_path):
  """A whole step (views, augmentation with background mixing, dropout,
  encoder, projection, NT-Xent in shard_map, Adam) through `fit` on 8
  devices ends in the parameters one device gets from the same batch/key."""
  config = simclr_config(num_epochs=1, warmup_epochs=0)
  config.model.width_divisor = 16
  data = clip_data()
  mesh8, mesh1 = loop.make_mesh(), loop.make_mesh(jax.devices()[:1])
  setup8 = con.contrastive_setup(config, str(tmp_path), data, 0, mesh=mesh8)
  setup1 = con.contrastive_setup(config, str(tmp_path), data, 0, mesh=mesh1)
  assert setup8.num_steps == 1
  start = he_init(jax.eval_shape(setup8.init_fn, jax.random.key(0)))
  init_fn = lambda key: jax.tree.map(jnp.asarray, start)  # noqa: E731
  # Plain SGD: the parameters then differ by lr x the gradients' difference.
  # (Adam's first step, lr * g / (|g| + 1e-8), turns the summation-order
  # rounding of elements with |g| near 1e-8 into a good part of a step.)
  sgd = optax.sgd(0.1)

  state8 = loop.fit(workdir=str(tmp_path / "fit"), init_fn=init_fn,
                    loss_fn=setup8.loss_fn, optimizer=sgd,
                    epoch_batches=setup8.epoch_batches, num_steps=1, seed=0,
                    log_every=1, mesh=mesh8)
  loss8 = json.loads(open(tmp_path / "fit" / "metrics.jsonl").readline())

  _, loop_key = jax.random.split(jax.random.key(0))  # As fit splits it.
  state1 = loop.init_train_state(init_fn, sgd, jax.random.key(0), mesh1)
  step1 = loop.make_train_step(setup1.loss_fn, sgd, loop_key, mesh1)
  batch = setup1.epoch_batches(0)[0]
  state1, metrics1, finite = step1(state1, loop.shard_batch(batch, mesh1))
  assert bool(finite)
  assert loss8["train/loss"] == pytest.approx(float(metrics1["loss"]),
                                              rel=1e-5)
  assert loss8["train/grad_norm"] == pytest.approx(
      float(metrics1["grad_norm"]), rel=1e-4)
  for (path, a), b in zip(
      jax.tree_util.tree_flatten_with_path(state8.params)[0],
      jax.tree.leaves(state1.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                               atol=1e-7, err_msg=jax.tree_util.keystr(path))
  moved = [np.max(np.abs(np.asarray(a) - b)) for a, b in zip(
      jax.tree.leaves(state1.params), jax.tree.leaves(start))]
  assert min(moved) > 1e-5, moved  # Every leaf has a real gradient.

  # The authors' per-device negatives: another loss on 8 devices.
  config.contrastive.negatives = "per_device"
  per_device = con.contrastive_setup(config, str(tmp_path), data, 0,
                                     mesh=mesh8)
  params8 = jax.device_put(start, jax.sharding.NamedSharding(
      mesh8, jax.sharding.PartitionSpec()))
  step_key = jax.random.fold_in(loop_key, 0)
  loss_pd, _ = jax.jit(per_device.loss_fn)(
      params8, loop.shard_batch(batch, mesh8), step_key)
  assert np.isfinite(float(loss_pd))
  # 2 negatives per anchor instead of 30: a much smaller loss.
  assert float(loss_pd) < loss8["train/loss"] - 0.5


def test_train_contrastive_records_keeps_a_series_and_its_encoder_loads(
    tmp_path):
  workdir = str(tmp_path / "simclr")
  data = clip_data()
  config = simclr_config(num_epochs=2, keep_period=1, checkpoint_every=10)
  for name in ("gain_p", "noise_p", "mask_p", "background_p"):
    config.augment[name] = 0.0  # The step above has them; compile less.
  result = con.train_contrastive(config, workdir, data, seed=0)
  v = result["validation"]
  assert result["steps"] == 2
  assert 0 <= v["pair_top1"] <= 1 and v["pair_top1_chance"] == 1 / 15
  assert np.isfinite(v["nt_xent"]) and v["nt_xent"] > 0
  assert v["collapsed"] in (0.0, 1.0)
  assert provenance.read_json(os.path.join(workdir, "eval.json")) == result
  # The kept series, from the initialisation.
  assert loop.list_checkpoint_steps(workdir) == [0, 1, 2]
  made_by = provenance.read_json(os.path.join(workdir, "made_by.json"))
  assert made_by["background"] == provenance.fingerprint_arrays(
      audio_folder.pad_clips(data.background))
  assert made_by["contrastive"]["negatives"] == "global"
  encoder = cnn12_eval.load_encoder(workdir, step=1)
  assert encoder.record["kind"] == "cnn12_contrastive"
  assert encoder.record["step"] == 1
  assert set(encoder.params) == {f"conv{i}" for i in range(1, 12)} | {"fc10"}
  # Another background is another run.
  config.background.source = "none"
  with pytest.raises(provenance.ProvenanceError, match="background"):
    con.train_contrastive(config, workdir, data, seed=0)


def test_a_collapsed_representation_is_named():
  # Identical embeddings: every similarity equal, loss log(2N - 1).
  n = 20
  z = np.ones((n, 8), np.float32)
  loss = float(losses.nt_xent_loss(z, z, 0.1))
  assert loss == pytest.approx(np.log(2 * n - 1), rel=1e-5)
  chance = 1 / (2 * n - 1)
  assert con.collapsed({"nt_xent": loss, "pair_top1": chance,
                        "pair_top1_chance": chance})
  # A representation that tells pairs apart is not collapsed.
  z1 = np.eye(n, 8 * 4, dtype=np.float32)
  learned = float(losses.nt_xent_loss(z1, z1, 0.1))
  assert not con.collapsed({"nt_xent": learned, "pair_top1": 1.0,
                            "pair_top1_chance": chance})
  assert not con.collapsed({"nt_xent": loss, "pair_top1": 0.5,
                            "pair_top1_chance": chance})


def test_background_from_a_folder_is_cut_and_padded(tmp_path):
  folder = tmp_path / "noises"
  folder.mkdir()
  rng = np.random.default_rng(0)
  audio_io.write_wav(str(folder / "a.wav"), 0.5 * rng.uniform(-1, 1, 12000))
  audio_io.write_wav(str(folder / "b.wav"), 0.5 * rng.uniform(-1, 1, 5000))
  (folder / "notes.txt").write_text("not audio")
  config = simclr_config()
  config.background.source = "wav_folder"
  config.background.dir = str(folder)
  config.background.max_seconds = 1.0
  con.check_config(config, 8)
  noise, lengths = con.load_background(config, str(tmp_path), clip_data())
  assert noise.shape == (2, 8000) and list(lengths) == [8000, 5000]
  assert np.max(np.abs(noise[1])) == pytest.approx(1.0)  # Unit peak.
  config.background.dir = str(tmp_path)
  with pytest.raises(FileNotFoundError, match="no .wav/.flac"):
    con.load_background(config, str(tmp_path), clip_data())


@pytest.mark.parametrize("field,value,message", [
    ("contrastive.tau", 0.0, "tau"),
    ("contrastive.negatives", "local", "negatives"),
    ("contrastive.view_seconds", 0.25, "receptive field"),
    ("contrastive.projection_variant", "mlp", "projection_variant"),
    ("background.source", "music", "background.source"),
    ("background.source", "wav_folder", "background.dir is empty"),
    ("train.batch_size", 20, "divisible by the 8 devices"),
    ("train.num_epochs", 0, "num_epochs"),
])
def test_bad_contrastive_values_are_refused(field, value, message):
  c = simclr_config()
  block, name = field.split(".")
  c[block][name] = value
  with pytest.raises(ValueError, match=message):
    cnn12_eval.check_config(c, num_devices=8)


def test_events_have_no_background_of_their_own():
  c = cnn12_simclr.get_config("tiny")
  c.background.source = "data"
  with pytest.raises(ValueError, match="no background clips"):
    con.check_config(c, 8)
