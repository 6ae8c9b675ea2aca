"""Layer importance: a classifier on CNN12 cut after each layer, fc-only and
full fine-tuning (paper Fig. 4; docs/methods.md, B4), through the probe/fine-tune
recipe."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import analysis
from recon_jax import provenance
from recon_jax.models import cnn12
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from configs import cnn12_probe  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import test_train_cnn12 as train_tests  # noqa: E402

CLIP = train_tests.CLIP  # Just over CNN12's receptive field (2370).
WIDTHS = (2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8)


def keyword_data():
  """Two classes of tones, one octave apart (test_train_cnn12's data)."""
  return train_tests.keyword_data(classes=2, n_train=16, n_eval=8)


def probe_config(seeds=(0,)):
  """The tiny probe config: 1 epoch of 2 steps, no augmentation."""
  c = cnn12_probe.get_config("tiny")
  c.seeds = seeds
  c.train.batch_size = 8
  c.train.eval_batch_size = 8
  c.train.crop_seconds = CLIP / 8000
  c.train.num_epochs = 1
  c.train.warmup_epochs = 0
  c.train.learning_rate = 1e-2
  for name in ("gain_p", "noise_p", "mask_p", "mixup_p"):
    c.augment[name] = 0.0
  return c


def numpy_params(model, seed=0):
  """CNN12's initial parameters drawn by NumPy (std 1/sqrt(fan_in), as its
  init; zero biases): nothing to compile."""
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, CLIP)))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, s):
    if path[-1].key == "bias":
      return np.zeros(s.shape, np.float32)
    fan_in = int(np.prod(s.shape[:-1]))
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def random_encoder(config):
  model = sup.encoder_from_config(config.model)
  params = numpy_params(model, seed=1)
  record = {"kind": "random", "step": 0,
            "fingerprint": provenance.fingerprint_arrays(params)}
  return cnn12_eval.Encoder(model, params, record)


def test_truncated_features_are_the_mean_of_the_block_output():
  model = cnn12.CNN12(widths=WIDTHS)
  x = np.random.default_rng(0).normal(size=(3, CLIP)).astype(np.float32)
  params = numpy_params(model)
  trace = model.apply({"params": params}, x, block=11)
  for block in (3, 10):
    cut = analysis.truncate(model, block)
    assert cut.block == block and cut.embedding_dim == WIDTHS[block - 1]
    cut_params = analysis.truncate_params(params, block)
    assert sorted(cut_params) == sorted(f"conv{b}" for b in range(1, block + 1))
    # The same tree as CNN12's blocks 1..block.
    shapes = jax.eval_shape(cut.init, jax.random.key(0), x[:1])["params"]
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(
        np.shape, cut_params)
    h = cut.apply({"params": cut_params}, x)
    assert h.shape == (3, WIDTHS[block - 1])
    np.testing.assert_allclose(
        h, np.asarray(trace.outputs[block - 1]).mean(axis=1), rtol=1e-5,
        atol=1e-7)
    # Its trace is CNN12's up to the cut.
    sub = cut.apply({"params": cut_params}, x, block=2)
    np.testing.assert_allclose(sub.output, trace.outputs[1], rtol=1e-6)
    with pytest.raises(ValueError, match="cut off"):
      cut.apply({"params": cut_params}, x, block=block + 1)
  with pytest.raises(ValueError, match="block 12 does not exist"):
    analysis.TruncatedCNN12(widths=WIDTHS, block=12)
  with pytest.raises(ValueError, match="lack"):
    analysis.truncate_params({"conv1": {}}, 2)


def test_layer_importance_trains_each_layer_and_mode(tmp_path):
  config = probe_config()
  data = keyword_data()
  encoder = random_encoder(config)
  result = analysis.layer_importance(config, str(tmp_path), data, [9, 2],
                                     encoder=encoder)
  assert result["layers"] == [2, 9]
  assert result["modes"] == ["fc_only", "full"]
  assert result["metric"] == "validation/accuracy"
  assert result["encoder"] == encoder.record
  for mode in ("fc_only", "full"):
    assert len(result["mean"][mode]) == len(result["ci95"][mode]) == 2
    assert all(0 <= m <= 1 for m in result["mean"][mode])
    assert np.all(np.isnan(result["ci95"][mode]))  # One seed: no interval.
    for layer in (2, 9):
      summary = result["summaries"][mode][layer]
      assert summary["seeds"] == [0]
      assert summary["metrics"]["validation/accuracy"]["mean"] == (
          result["mean"][mode][result["layers"].index(layer)])
      run = cnn12_eval.seed_dir(result["run_dirs"][mode][layer], 0)
      record = provenance.read_json(os.path.join(run, "model_config.json"))
      assert record["encoder"]["block"] == layer
      assert record["encoder"]["embedding_dim"] == (
          encoder.model.conv_widths[layer - 1])
      made_by = provenance.read_json(os.path.join(run, "made_by.json"))
      assert made_by["recipe"] == analysis.MODES[mode]
      steps = loop.list_checkpoint_steps(run)
      start, end = (loop.restore_params_at(run, s)["encoder"]
                    for s in (steps[0], steps[-1]))
      want = analysis.truncate_params(encoder.params, layer)
      assert sorted(end) == sorted(want)  # conv1..conv<layer> only.
      for name in want:
        np.testing.assert_array_equal(start[name]["kernel"],
                                      want[name]["kernel"])
      moved = [float(np.max(np.abs(a - b))) for a, b in zip(
          jax.tree.leaves(end), jax.tree.leaves(want))]
      if mode == "fc_only":
        assert max(moved) == 0.0, (layer, moved)
      else:
        assert max(moved) > 0.0, (layer, moved)
      # A cut encoder is not an encoder run to start other runs from.
      with pytest.raises(ValueError, match="cut after block"):
        cnn12_eval.load_encoder(run)


def test_bad_requests_are_refused(tmp_path):
  config = probe_config()
  data = keyword_data()
  encoder = random_encoder(config)
  for kwargs, message in (({"modes": ("linear",)}, "modes"),
                          ({"metric": "train/loss"}, "metric"),
                          ({"layers": [0]}, "block 0 does not exist"),
                          ({"layers": [12]}, "block 12 does not exist")):
    args = {"layers": [2], "encoder": encoder, **kwargs}
    with pytest.raises(ValueError, match=message):
      analysis.layer_importance(config, str(tmp_path), data, **args)
  other = encoder._replace(model=cnn12.CNN12(widths=WIDTHS))
  with pytest.raises(ValueError, match="widths"):
    analysis.layer_importance(config, str(tmp_path), data, [2], encoder=other)
  # No encoder given and none named by the config.
  with pytest.raises(ValueError, match="encoder.workdir is empty"):
    analysis.layer_importance(config, str(tmp_path), data, [2])
  assert not os.listdir(tmp_path)
