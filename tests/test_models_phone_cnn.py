"""PhoneCNN: the thesis's layer numbering, shapes, switches and bad input."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from recon_jax import models
from recon_jax import ops

X = np.random.default_rng(0).normal(size=(3, 201, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def nets():
  out = {}
  for padding in ("VALID", "SAME"):
    model = models.PhoneCNN(padding=padding)
    out[padding] = model, model.init(jax.random.key(0), X)["params"]
  return out


def test_layer_numbering_matches_thesis():
  names = [l.name for l in models.PhoneCNN().layers]
  assert names[:12] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                        "conv3", "relu3", "pool3", "fc1", "relu_fc1", "fc2"]
  assert len(names) == 16 and names[-1] == "fc4"


@pytest.mark.parametrize("padding,shapes", [
    ("VALID", {1: (195, 32), 3: (96, 32), 6: (44, 64), 9: (19, 64), 12: (256,),
               16: (48,)}),
    ("SAME", {1: (201, 32), 3: (99, 32), 6: (48, 64), 9: (22, 64), 12: (256,),
              16: (48,)}),
])
def test_activation_shapes(nets, padding, shapes):
  model, params = nets[padding]
  for layer, shape in shapes.items():
    y = model.apply({"params": params}, X, layer=layer)
    assert y.shape == (3,) + shape, (padding, layer)


def test_layers_compose_by_hand(nets):
  """Layer 3 = pool(relu(conv1(x))) and the logits = the full network."""
  model, params = nets["VALID"]
  conv = nn.Conv(32, (7,), padding="VALID")
  h = conv.apply({"params": params["conv1"]}, X)
  want, _ = ops.max_pool_with_argmax(jax.nn.relu(h), 5, 2)
  np.testing.assert_allclose(model.apply({"params": params}, X, layer=3), want,
                             rtol=1e-6)
  np.testing.assert_allclose(model.apply({"params": params}, X, layer=16),
                             model.apply({"params": params}, X), rtol=1e-6)


def test_switches_are_recorded_per_pool_layer(nets):
  model, params = nets["SAME"]
  y, switches = model.apply({"params": params}, X, layer=6, with_switches=True)
  assert sorted(switches) == [3, 6]
  pre = model.apply({"params": params}, X, layer=5)
  np.testing.assert_array_equal(
      np.take_along_axis(np.asarray(pre), np.asarray(switches[6]), axis=1), y)


def test_dropout_only_when_training(nets):
  model, params = nets["VALID"]
  a = model.apply({"params": params}, X, train=True,
                  rngs={"dropout": jax.random.key(1)})
  b = model.apply({"params": params}, X, train=True,
                  rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply({"params": params}, X),
                                model.apply({"params": params}, X))


@pytest.mark.parametrize("layer", [0, 17, -1, 2.0, True, "3"])
def test_missing_layer_is_a_clear_error(nets, layer):
  model, params = nets["VALID"]
  with pytest.raises(ValueError, match="does not exist.*layers 1..16"):
    model.apply({"params": params}, X, layer=layer)


def test_wrong_input_rank_is_a_clear_error(nets):
  model, params = nets["VALID"]
  with pytest.raises(ValueError, match=r"\(N, freq, frames\)"):
    model.apply({"params": params}, X[0], layer=1)


def test_activation_shape_helper():
  assert models.activation_shape(models.PhoneCNN(), (2, 201, 16), 9) == (2, 19, 64)


def test_numpy_integer_layer_numbers_are_accepted(nets):
  model, params = nets["VALID"]
  np.testing.assert_array_equal(
      model.apply({"params": params}, X, layer=np.int64(3)),
      model.apply({"params": params}, X, layer=3))


def test_every_subpackage_is_reachable_from_the_top_level():
  import recon_jax  # pylint: disable=g-import-not-at-top
  for name in ("data", "inversion", "models", "report", "train", "ops",
               "metrics"):
    assert getattr(recon_jax, name).__name__ == f"recon_jax.{name}"
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    recon_jax.nope  # pylint: disable=pointless-statement
