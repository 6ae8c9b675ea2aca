"""CNN12 (Fig. A.1): sizes, receptive field, traces, heads, PyTorch interop."""
import collections

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import models
from recon_jax import ops
from recon_jax.models import cnn12 as cnn12_lib

NARROW = tuple(w // 16 for w in cnn12_lib.WIDTHS)  # 4, 4, 8, ..., 128
T = 2600
X = np.random.default_rng(0).uniform(-1, 1, size=(2, T)).astype(np.float32)


def _random_params(model, seed=0):
  """Params of `model` drawn in NumPy: Kaiming-scaled kernels, non-zero biases.

  (model.init compiles one RNG program per layer, ~2 s each on CPU.)
  """
  return _draw(jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 2370))))["params"],
               seed)


def _draw(shapes, seed):
  rng = np.random.default_rng(seed)

  def draw(s):
    fan_in = np.prod(s.shape[:-1]) if len(s.shape) > 1 else 100.0
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree.map(draw, shapes)


@pytest.fixture(scope="module")
def net():
  model = models.CNN12(widths=NARROW)
  return model, _random_params(model)


def test_init_follows_the_authors_code():
  """Kaiming-normal (fan-in, linear) convs, N(0, 0.01) fc10, zero biases."""
  model = models.CNN12(widths=(64,) * 11)
  params = jax.jit(model.init)(jax.random.key(0), X)["params"]
  for spec in model.blocks[1:]:
    kernel = np.asarray(params[spec.name]["kernel"])
    std = 1 / np.sqrt(spec.kernel * spec.in_features)
    assert abs(kernel.std() / std - 1) < 0.15, spec.name
    np.testing.assert_array_equal(params[spec.name]["bias"], 0)
  assert abs(np.asarray(params["fc10"]["kernel"]).std() / 0.01 - 1) < 0.05
  np.testing.assert_array_equal(params["fc10"]["bias"], 0)


@pytest.fixture(scope="module")
def trace(net):
  model, params = net
  return model.apply({"params": params}, X, block=11)


def test_architecture_is_fig_a1():
  blocks = models.CNN12().blocks
  assert [b.name for b in blocks] == [f"conv{i}" for i in range(1, 12)]
  assert [b.kernel for b in blocks] == [7, 7, 5, 5, 5, 3, 3, 3, 3, 3, 3]
  assert [b.features for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512,
                                          1024, 1024, 2048]
  assert [b.in_features for b in blocks] == [1, 64, 64, 128, 128, 256, 256,
                                             512, 512, 1024, 1024]
  assert [b.pool for b in blocks] == [2] * 8 + [None] * 3
  assert [b.features for b in models.CNN12(width_multiplier=2).blocks] == [
      2 * w for w in cnn12_lib.WIDTHS]


@pytest.mark.parametrize("wm,count", [(1, 13_757_248), (2, 52_917_376)])
def test_parameter_counts_from_shapes_only(wm, count):
  model = models.CNN12(width_multiplier=wm)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 2370))))
  assert sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)) == count
  assert cnn12_lib.num_params(model) == count
  p = shapes["params"]
  assert sorted(p) == sorted([f"conv{i}" for i in range(1, 12)] + ["fc10"])
  assert p["conv1"]["kernel"].shape == (7, 1, 64 * wm)
  assert p["fc10"]["kernel"].shape == (2048 * wm, 512)
  tr = jax.eval_shape(lambda v, x: model.apply(v, x, block=11), shapes,
                      jax.ShapeDtypeStruct((2, 20000), jnp.float32))
  assert [o.shape for o in tr.outputs] == [
      (2, l, w * wm) for l, w in zip(cnn12_lib.block_output_lengths(20000),
                                     cnn12_lib.WIDTHS)]
  assert tr.pre_pool_lengths == (19994, 9991, 4991, 2491, 1241, 618, 307, 151)


def test_receptive_field_is_2370():
  assert cnn12_lib.min_input_length() == 2370
  assert cnn12_lib.receptive_field() == 2370
  assert cnn12_lib.MIN_INPUT_LENGTH == models.CNN12_MIN_INPUT_LENGTH == 2370
  # Hand check on a tiny net: conv k=3, pool 2, conv k=2 -> one output
  # needs 2 conv inputs -> 4 pre-pool -> 6 input samples.
  assert cnn12_lib.min_input_length((3, 2), (2, None)) == 6
  assert cnn12_lib.receptive_field((3, 2), (2, None)) == 6
  assert cnn12_lib.block_output_lengths(2370)[-1] == 1
  assert cnn12_lib.block_output_lengths(2369)[-1] == 0


def test_shortest_input_works_and_one_sample_less_fails(net):
  model, params = net
  x = X[:, :2370]
  tr = model.apply({"params": params}, x, block=11)
  assert tr.output.shape == (2, 1, NARROW[-1])
  assert model.apply({"params": params}, x).shape == (2, 512)
  with pytest.raises(ValueError, match="2369 samples.*receptive field of 2370"):
    model.apply({"params": params}, X[:, :2369])
  with pytest.raises(ValueError, match="2370"):
    jax.eval_shape(lambda: model.init(jax.random.key(0), X[:, :2369]))


def test_trace_shapes_and_lengths(trace):
  lengths = cnn12_lib.block_output_lengths(T)
  assert trace.block == 11 and trace.input_length == T
  assert [o.shape for o in trace.outputs] == [
      (2, l, w) for l, w in zip(lengths, NARROW)]
  pre = []
  length = T
  for kernel, pool in zip(cnn12_lib.KERNELS, cnn12_lib.POOLS):
    length -= kernel - 1
    if pool:
      pre.append(length)
      length //= 2
  assert trace.pre_pool_lengths == tuple(pre)
  assert len(trace.switches) == 8
  for b in range(8):
    assert trace.activations[b].shape[1] == pre[b]
    assert trace.switches[b].shape == trace.outputs[b].shape
    assert trace.switches[b].dtype == jnp.int32
  for b in range(8, 11):
    assert trace.activations[b] is trace.outputs[b]


def test_trace_composes_by_hand(net, trace):
  """Each block = pool(relu(conv(previous output))); switches index maxima."""
  model, params = net
  h = X[..., None]
  for spec in model.blocks:
    conv = nn.Conv(spec.features, (spec.kernel,), padding="VALID")
    h = jax.nn.relu(conv.apply({"params": params[spec.name]}, h))
    np.testing.assert_allclose(trace.activations[spec.number - 1], h,
                               rtol=1e-5, atol=1e-6)
    if spec.pool:
      h, _ = ops.max_pool_with_argmax(h, 2, 2)
      i = spec.number - 1
      np.testing.assert_array_equal(
          np.take_along_axis(np.asarray(trace.activations[i]),
                             np.asarray(trace.switches[i]), axis=1),
          trace.outputs[i])
    np.testing.assert_allclose(trace.outputs[spec.number - 1], h, rtol=1e-5,
                               atol=1e-6)
  dense = nn.Dense(512)
  want = dense.apply({"params": params["fc10"]}, jnp.mean(h, axis=1))
  np.testing.assert_allclose(model.apply({"params": params}, X), want,
                             rtol=1e-5, atol=1e-6)


def test_truncated_trace_is_a_prefix_of_the_full_one(net, trace):
  model, params = net
  for block in (1, 8, 9):
    tr = model.apply({"params": params}, X, block=block)
    assert tr.block == block
    assert len(tr.switches) == min(block, 8)
    assert tr.pre_pool_lengths == trace.pre_pool_lengths[:min(block, 8)]
    np.testing.assert_array_equal(tr.output, trace.outputs[block - 1])
    for a, b in zip(tr.switches, trace.switches):
      np.testing.assert_array_equal(a, b)


def test_trace_survives_jit_with_static_lengths(net, trace):
  model, params = net
  tr = jax.jit(lambda p, x: model.apply({"params": p}, x, block=11))(params, X)
  assert isinstance(tr, models.CNN12Trace)
  assert tr.pre_pool_lengths == trace.pre_pool_lengths
  assert tr.input_length == T
  np.testing.assert_allclose(tr.output, trace.output, rtol=1e-5, atol=1e-6)


def test_input_with_channel_axis_is_the_same(net):
  model, params = net
  np.testing.assert_array_equal(model.apply({"params": params}, X),
                                model.apply({"params": params}, X[..., None]))


def test_integer_block_numbers_from_numpy(net):
  model, params = net
  tr = model.apply({"params": params}, X, block=np.int64(2))
  assert tr.block == 2


def test_dropout_only_when_training(net):
  model, params = net
  a, b = (model.apply({"params": params}, X, train=True,
                      rngs={"dropout": jax.random.key(k)}) for k in (1, 2))
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply({"params": params}, X),
                                model.apply({"params": params}, X))


def test_gradients_flow_through_every_layer(net):
  model, params = net
  grads = jax.jit(jax.grad(
      lambda p: jnp.sum(model.apply({"params": p}, X))))(params)
  for name, g in grads.items():
    assert np.all(np.isfinite(g["kernel"])) and np.any(g["kernel"] != 0), name


@pytest.mark.parametrize("block", [0, 12, -1, 2.0, True, "3"])
def test_missing_block_is_a_clear_error(net, block):
  model, params = net
  with pytest.raises(ValueError, match="does not exist.*blocks 1..11"):
    model.apply({"params": params}, X, block=block)


@pytest.mark.parametrize("shape", [(T,), (2, T, 2), (1, 2, T, 1)])
def test_wrong_input_shape_is_a_clear_error(net, shape):
  model, params = net
  with pytest.raises(ValueError, match=r"\(N, T\) or \(N, T, 1\)"):
    model.apply({"params": params}, np.zeros(shape, np.float32))


def test_nan_input_is_a_clear_error(net):
  model, params = net
  x = X.copy()
  x[1, 5] = np.nan
  with pytest.raises(ValueError, match="CNN12 input holds 1 NaN"):
    model.apply({"params": params}, x)


@pytest.mark.parametrize("kwargs,match", [
    ({"width_multiplier": 0}, "width_multiplier"),
    ({"width_multiplier": 1.5}, "width_multiplier"),
    ({"widths": (4,) * 10}, "11 integers"),
    ({"widths": (4,) * 10 + (0,)}, "11 integers"),
    ({"dropout_rate": 1.0}, "dropout_rate"),
])
def test_bad_fields_are_clear_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.CNN12(**kwargs)


# ---------------------------------------------------------------- heads


H = np.random.default_rng(1).normal(size=(5, 512)).astype(np.float32)


def _head_params(head):
  return _draw(jax.eval_shape(head.init, jax.random.key(0), H)["params"], 0)


@pytest.mark.parametrize("relu_input", [False, True])
def test_classifier_head(relu_input):
  head = models.ClassifierHead(7, relu_input=relu_input)
  params = _head_params(head)
  assert params["fc"]["kernel"].shape == (512, 7)
  h = np.maximum(H, 0) if relu_input else H
  want = h @ params["fc"]["kernel"] + params["fc"]["bias"]
  np.testing.assert_allclose(head.apply({"params": params}, H), want,
                             rtol=1e-5, atol=1e-5)


def test_projection_head_as_the_authors_code():
  head = models.ProjectionHead()
  params = _head_params(head)
  assert set(params["fc3"]) == {"kernel"}  # no bias
  z = head.apply({"params": params}, H)
  hidden = np.maximum(
      np.maximum(H, 0) @ params["fc2"]["kernel"] + params["fc2"]["bias"], 0)
  want = hidden @ params["fc3"]["kernel"]
  want /= np.linalg.norm(want, axis=1, keepdims=True)
  np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, rtol=1e-6)


def test_projection_head_as_the_paper_text():
  head = models.ProjectionHead(variant="paper")
  params = _head_params(head)
  assert set(params["fc3"]) == {"kernel", "bias"}
  want = np.maximum(H @ params["fc2"]["kernel"] + params["fc2"]["bias"], 0)
  want = want @ params["fc3"]["kernel"] + params["fc3"]["bias"]
  np.testing.assert_allclose(head.apply({"params": params}, H), want,
                             rtol=1e-5, atol=1e-5)


def test_l2_normalize_of_zero_is_zero():
  z = models.l2_normalize(jnp.zeros((2, 3)))
  np.testing.assert_array_equal(z, 0)


@pytest.mark.parametrize("make,match", [
    (lambda: models.ProjectionHead(variant="simclr"), "variant"),
    (lambda: models.ProjectionHead(hidden=0), "hidden"),
    (lambda: models.ClassifierHead(0), "num_classes"),
])
def test_bad_head_fields(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_heads_refuse_non_embeddings():
  head = models.ClassifierHead(3)
  with pytest.raises(ValueError, match=r"\(N, D\)"):
    jax.eval_shape(head.init, jax.random.key(0), X[..., None])


# ---------------------------------------------------------------- PyTorch


def _torch_encoder(widths):
  """The Encoder of Fig. A.1 in PyTorch, narrow widths."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn as tnn  # pylint: disable=g-import-not-at-top

  layers = collections.OrderedDict()
  c = 1
  for i, (k, w) in enumerate(zip(cnn12_lib.KERNELS, widths), start=1):
    layers[f"conv{i}"] = tnn.Conv1d(c, w, kernel_size=(k,), stride=(1,))
    layers[f"act{i}"] = tnn.ReLU()
    if i <= 8:
      layers[f"mp{i}"] = tnn.MaxPool1d(2, 2, return_indices=True)
    c = w

  class Encoder(tnn.Module):

    def __init__(self):
      super().__init__()
      self.features = tnn.Sequential(layers)
      self.fc1 = tnn.Sequential(collections.OrderedDict([
          ("drop10", tnn.Dropout(0.4)), ("fc10", tnn.Linear(c, 512))]))

    def forward(self, x):
      outputs, switches = [], []
      for name, layer in self.features.named_children():
        if name.startswith("mp"):
          x, idx = layer(x)
          switches.append(idx)
          outputs[-1] = x
        else:
          x = layer(x)
          if name.startswith("act"):
            outputs.append(x)
      return self.fc1(x.mean(2)), outputs, switches

  torch.manual_seed(0)
  return Encoder().eval()


@pytest.fixture(scope="module")
def torch_net():
  torch = pytest.importorskip("torch")
  torch.set_flush_denormal(True)
  return _torch_encoder(NARROW)


def test_torch_names_and_shapes_are_fig_a1(torch_net):
  sd = torch_net.state_dict()
  assert list(sd) == list(models.cnn12_params_to_torch(
      models.cnn12_params_from_torch(sd, widths=NARROW)))
  assert tuple(sd["features.conv3.weight"].shape) == (8, 4, 5)
  assert tuple(sd["fc1.fc10.weight"].shape) == (512, 128)


def test_same_embedding_and_switches_as_pytorch(torch_net):
  import torch  # pylint: disable=g-import-not-at-top
  params = models.cnn12_params_from_torch(torch_net.state_dict(),
                                          widths=NARROW)
  model = models.CNN12(widths=NARROW)
  with torch.no_grad():
    want, outputs, switches = torch_net(torch.from_numpy(X[:, None, :]))
  np.testing.assert_allclose(model.apply({"params": params}, X), want.numpy(),
                             rtol=1e-5, atol=1e-6)
  tr = model.apply({"params": params}, X, block=11)
  for b in range(11):
    np.testing.assert_allclose(tr.outputs[b],
                               outputs[b].numpy().transpose(0, 2, 1),
                               rtol=1e-5, atol=1e-6)
  for b in range(8):
    # Torch's indices also point into the pre-pool length; ties (two ReLU
    # zeros) go to the first position in both.
    np.testing.assert_array_equal(tr.switches[b],
                                  switches[b].numpy().transpose(0, 2, 1))


def test_round_trip_is_identity(torch_net):
  sd = {k: v.numpy() for k, v in torch_net.state_dict().items()}
  params = models.cnn12_params_from_torch(sd, widths=NARROW)
  back = models.cnn12_params_to_torch({"params": params})
  assert list(back) == list(sd)
  for k in sd:
    np.testing.assert_array_equal(back[k], sd[k])
  again = models.cnn12_params_from_torch(back, widths=NARROW)
  jax.tree.map(np.testing.assert_array_equal, again, params)


def test_jax_initialised_params_load_into_torch(net, torch_net):
  import torch  # pylint: disable=g-import-not-at-top
  model, params = net
  sd = models.cnn12_params_to_torch(params)
  enc = _torch_encoder(NARROW)
  enc.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
  with torch.no_grad():
    want = enc(torch.from_numpy(X[:, None, :]))[0].numpy()
  np.testing.assert_allclose(model.apply({"params": params}, X), want,
                             rtol=1e-5, atol=1e-6)


def test_prefix_selects_the_encoder_of_a_bigger_model(torch_net):
  sd = {f"feature_extractor.{k}": v for k, v in torch_net.state_dict().items()}
  sd["fc2.weight"] = np.zeros((512, 512), np.float32)
  params = models.cnn12_params_from_torch(sd, widths=NARROW,
                                          prefix="feature_extractor.")
  want = models.cnn12_params_from_torch(torch_net.state_dict(), widths=NARROW)
  jax.tree.map(np.testing.assert_array_equal, params, want)


def _state_dict(torch_net):
  return {k: v.numpy().copy() for k, v in torch_net.state_dict().items()}


def test_missing_entry_is_named(torch_net):
  sd = _state_dict(torch_net)
  del sd["features.conv7.bias"]
  with pytest.raises(ValueError,
                     match=r"lacks \['features.conv7.bias'\].*\(32,\)"):
    models.cnn12_params_from_torch(sd, widths=NARROW)


def test_unexpected_entry_is_named(torch_net):
  sd = _state_dict(torch_net)
  sd["features.bn1.weight"] = np.ones(4, np.float32)
  with pytest.raises(ValueError, match="unexpected entries.*features.bn1"):
    models.cnn12_params_from_torch(sd, widths=NARROW)


def test_wrong_shape_is_named_with_the_expected_one(torch_net):
  sd = _state_dict(torch_net)
  with pytest.raises(ValueError, match=r"'features.conv2.weight' has shape "
                     r"\(4, 4, 7\), expected \(8, 4, 7\)"):
    models.cnn12_params_from_torch(sd, widths=(4, 8) + NARROW[2:])
  sd["fc1.fc10.weight"] = np.zeros((512, 7), np.float32)
  with pytest.raises(ValueError, match=r"'fc1.fc10.weight' has shape "
                     r"\(512, 7\), expected \(512, 128\)"):
    models.cnn12_params_from_torch(sd, widths=NARROW)


def test_non_float_weights_are_refused(torch_net):
  sd = _state_dict(torch_net)
  sd["features.conv1.bias"] = np.zeros(4, np.int64)
  with pytest.raises(ValueError, match="conv1.bias.*floating"):
    models.cnn12_params_from_torch(sd, widths=NARROW)


def test_to_torch_errors_name_the_entry(net):
  _, params = net
  params = jax.tree.map(np.asarray, params)
  bad = dict(params)
  del bad["conv4"]
  with pytest.raises(ValueError, match=r"lack \['conv4'\]"):
    models.cnn12_params_to_torch(bad)
  bad = dict(params, conv12=params["conv11"])
  with pytest.raises(ValueError, match=r"unexpected entries \['conv12'\]"):
    models.cnn12_params_to_torch(bad)
  bad = dict(params, conv3={"kernel": params["conv3"]["kernel"][:3],
                            "bias": params["conv3"]["bias"]})
  with pytest.raises(ValueError, match=r"'conv3'\]\['kernel'\] has shape "
                     r"\(3, 4, 8\), expected \(5, 4, 8\)"):
    models.cnn12_params_to_torch(bad)
  bad = dict(params, fc10={"kernel": params["fc10"]["kernel"]})
  with pytest.raises(ValueError, match="'fc10'.*exactly 'kernel' and 'bias'"):
    models.cnn12_params_to_torch(bad)


def test_parameter_counts_as_documented():
  """README and configs: 330,856 encoder parameters at an eighth of the
  widths, 13,757,248 at the paper's (the 512-d fc10 keeps its width)."""
  from recon_jax.train import cnn12_supervised as sup  # pylint: disable=g-import-not-at-top
  for divisor, want in ((8, 330_856), (1, 13_757_248)):
    encoder = sup.encoder_from_config(sup.model_config(width_divisor=divisor))
    shapes = jax.eval_shape(encoder.init, jax.random.key(0),
                            jnp.zeros((1, 8000)))
    assert sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)) == want
