"""The inversion protocol: descriptions of PhoneCNN and CNN12 run exactly as
the models do; a user's declared net; lengths, parameter checks, errors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import models
from recon_jax.models import invertible as inv

# A user's own 1-D conv net, written only here: strided SAME conv, padded
# pool, explicit-padding conv, overlapping pool, stride-3 conv, mean, dense.
USER_NET = inv.InvertibleNet(
    ops=(inv.conv(6, 9, stride=2, padding="SAME", name="c1"), inv.relu(),
         inv.max_pool(4, 3, padding=(1, 1)),
         inv.conv(8, 4, padding=(2, 1), name="c2"), inv.relu(),
         inv.max_pool(3, 2), inv.conv(5, 3, stride=3, name="c3"), inv.relu(),
         inv.temporal_mean(), inv.dense(4, name="out")),
    waveform=True, name="UserNet")


def _x(shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_phone_cnn_description_runs_as_the_model_bit_for_bit():
  for padding in ("VALID", "SAME"):
    model = models.PhoneCNN(conv_features=(4, 6, 5), dense_features=(12, 8),
                            num_classes=3, padding=padding)
    x = _x((2, 201, 16))
    params = model.init(jax.random.key(1), x)["params"]
    net = model.invertible()
    assert net.num_layers == model.num_layers == 14
    assert net.layer_names == tuple(l.name for l in model.layers)
    for layer in range(1, net.num_layers + 1):
      want = model.apply({"params": params}, x, layer=layer)
      np.testing.assert_array_equal(inv.activation(net, params, x, layer),
                                    want)
      assert inv.activation_shape(net, (201, 16), layer) == want.shape[1:]
    _, switches = model.apply({"params": params}, x, layer=9,
                              with_switches=True)
    t = inv.trace(net, params, x, 9)
    for number, sw in switches.items():
      np.testing.assert_array_equal(t.switches[number - 1], sw)
    assert t.lengths[:4] == ((201, 201, 201, 99) if padding == "SAME" else
                             (201, 195, 195, 96))
    assert jax.tree.map(np.shape, params) == jax.tree.map(
        np.shape, _unflatten(inv.param_shapes(net, (201, 16))))


def _unflatten(flat):
  out = {}
  for key, shape in flat.items():
    path = [k.strip("'") for k in key[1:-1].split("][")]
    node = out
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = np.zeros(shape)
  return out


def test_cnn12_description_runs_as_the_model_bit_for_bit():
  model = models.CNN12(widths=(2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8))
  x = _x((2, 2600))
  params = model.init(jax.random.key(0), x)["params"]
  net = model.invertible()
  assert net.unit == "block" and net.num_layers == 11 and net.waveform
  assert inv.min_input_length(net) == inv.receptive_field(net) == 2370
  assert inv.total_stride(net) == 256 and inv.total_stride(net, 9) == 256
  for block in (1, 4, 8, 9, 11):
    t = model.apply({"params": params}, x, block=block)
    ours = inv.trace(net, params, x, block)
    np.testing.assert_array_equal(ours.output, t.output)
    sw = [s for s in ours.switches if s is not None]
    assert len(sw) == len(t.switches)
    for a, b in zip(sw, t.switches):
      np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(inv.activation(net, params, x),
                                model.apply({"params": params}, x))
  with pytest.raises(ValueError, match="block 12 does not exist: CNN12 has "
                     "blocks 1..11 .*9 conv9-relu9"):
    inv.check_layer(net, 12)


def test_declared_net_is_a_flax_module_of_its_description():
  module = inv.DeclaredNet(USER_NET)
  assert inv.describe(module) is USER_NET
  x = _x((3, 300))
  params = module.init(jax.random.key(0), x)["params"]
  assert set(params) == {"c1", "c2", "c3", "out"}
  assert params["c1"]["kernel"].shape == (9, 1, 6)
  # Lengths: 300 -SAME/2-> 150 -pool 4/3 pad 1+1-> 50 -k4 pad 2+1-> 50
  # -pool 3/2-> 24 -k3/3-> 8.
  t = inv.trace(USER_NET, params, x, 7)
  assert t.lengths == (300, 150, 150, 50, 50, 50, 24)
  assert t.pads[0] == (3, 4) and t.pads[2] == (1, 1) and t.pads[3] == (2, 1)
  assert t.output.shape == (3, 8, 5)
  np.testing.assert_array_equal(module.apply({"params": params}, x),
                                inv.activation(USER_NET, params, x))
  np.testing.assert_array_equal(module.apply({"params": params}, x, layer=3),
                                t.outputs[2])
  assert inv.activation_shape(USER_NET, (300,), 10) == (4,)
  # The padded pool's switches index its padded input: in [0, 150 + 2).
  sw = np.asarray(t.switches[2])
  assert sw.min() >= 0 and sw.max() < 152
  inv.check_params(USER_NET, params, (300,))


def test_declared_net_matches_a_hand_written_flax_module():
  """What a user with an existing module does: describe it, check it."""

  class Mine(nn.Module):
    @nn.compact
    def __call__(self, x):
      h = nn.Conv(6, (5,), strides=(2,), padding="SAME", name="enc")(x)
      h = nn.max_pool(nn.relu(h), (3,), (2,), padding="VALID")
      h = nn.Conv(4, (3,), padding=[(1, 1)], name="enc2")(h)
      return h

  net = inv.InvertibleNet(
      (inv.conv(6, 5, stride=2, padding="SAME", name="enc"), inv.relu(),
       inv.max_pool(3, 2), inv.conv(4, 3, padding=(1, 1), name="enc2")),
      name="Mine")
  x = _x((2, 64, 3))
  params = Mine().init(jax.random.key(0), x)["params"]
  inv.check_matches(net, params, x, Mine().apply({"params": params}, x))
  wrong = inv.InvertibleNet(
      (inv.conv(6, 5, stride=2, padding="VALID", name="enc"), inv.relu(),
       inv.max_pool(3, 2), inv.conv(4, 3, padding=(1, 1), name="enc2")),
      name="Mine")
  with pytest.raises(ValueError, match="gives shape"):
    inv.check_matches(wrong, params, x, Mine().apply({"params": params}, x))


def test_min_length_receptive_field_and_short_inputs():
  # VALID everywhere: the shortest input is the receptive field.
  net = inv.InvertibleNet((inv.conv(2, 5, name="a"), inv.max_pool(3, 2),
                           inv.conv(2, 4, stride=2, name="b")))
  assert inv.receptive_field(net) == 5 + 2 + 3 * 2 == 13
  assert inv.min_input_length(net) == 13
  assert inv.total_stride(net) == 4
  with pytest.raises(ValueError, match="input of 12 samples is shorter than "
                     "its receptive field of 13"):
    inv.check_input(net, np.zeros((1, 12, 1)))
  assert inv.min_input_length(USER_NET) < inv.receptive_field(USER_NET)
  with pytest.raises(ValueError, match="shorter than the minimum of"):
    inv.check_input(USER_NET, np.zeros(inv.min_input_length(USER_NET) - 1))
  x, one = inv.check_input(USER_NET, np.zeros(100))
  assert one and x.shape == (1, 100, 1)


def test_params_that_do_not_fit_are_named():
  module = inv.DeclaredNet(USER_NET)
  params = module.init(jax.random.key(0), _x((1, 300)))["params"]
  with pytest.raises(ValueError, match=r"\['out'\]\['kernel'\]: has \(5, 3\),"
                     r" needs \(5, 4\); \['out'\]\['bias'\]"):
    inv.check_params(USER_NET, {**params, "out": {
        "kernel": np.zeros((5, 3)), "bias": np.zeros(3)}}, (300,))
  with pytest.raises(ValueError, match=r"\['c2'\]\['kernel'\]: has nothing"):
    inv.check_params(USER_NET, {k: v for k, v in params.items() if k != "c2"},
                     (300,))
  # Extra leaves (a head the description does not use) are fine.
  inv.check_params(USER_NET, {**params, "head": {"kernel": np.zeros(2)}},
                   (300,))


@pytest.mark.parametrize("ops,message", [
    ((), "non-empty"),
    ((inv.conv(0, 3, name="a"),), "features must be an integer >= 1"),
    ((inv.conv(2, 3, name="a", stride=0),), "stride must be"),
    ((inv.conv(2, 3, name="a", padding="FULL"),), "padding must be"),
    ((inv.conv(2, 3, name="a", padding=(1, -1)),), "integers >= 0"),
    ((inv.max_pool(3, padding=(3, 0)),), "below the window"),
    ((inv.dense(3, name="d"), inv.conv(2, 3, name="a")), "came before it"),
    ((inv.temporal_mean(), inv.temporal_mean()), "came before it"),
    ((inv.conv(2, 3, name="a"), inv.conv(2, 3, name="a")), "used twice"),
    ((inv.Op("pool2d"),), "kind must be one of"),
])
def test_bad_descriptions_are_refused(ops, message):
  with pytest.raises(ValueError, match=message):
    inv.InvertibleNet(ops)


def test_layer_numbering_and_describe():
  net = inv.InvertibleNet((inv.conv(2, 3, name="a"), inv.relu(),
                           inv.max_pool(2), inv.conv(2, 3, name="b"),
                           inv.relu()), layer_ends=(3, 5),
                          layer_names=("block1", "block2"), unit="block")
  assert net.num_layers == 2 and net.ops_of(1) == net.ops[:3]
  assert [op.name for op in net.ops] == ["a", "relu1", "pool1", "b", "relu2"]
  assert inv.check_layer(net, 2) == 2
  for bad in (0, 3, True, 1.0, "1"):
    with pytest.raises(ValueError, match=r"block .* does not exist: network "
                       r"has blocks 1..2 \(1 block1, 2 block2\)"):
      inv.check_layer(net, bad)
  with pytest.raises(ValueError, match="strictly increasing"):
    inv.InvertibleNet(net.ops, layer_ends=(3, 3))
  with pytest.raises(TypeError, match="invertible"):
    inv.describe(object())
  assert hash(net) == hash(inv.InvertibleNet(
      net.ops, layer_ends=(3, 5), layer_names=("block1", "block2"),
      unit="block"))


def test_trace_under_jit_and_grad():
  module = inv.DeclaredNet(USER_NET)
  x = _x((2, 120))
  params = module.init(jax.random.key(0), x)["params"]
  f = jax.jit(lambda p, x: inv.activation(USER_NET, p, x, 6))
  np.testing.assert_array_equal(f(params, x),
                                inv.activation(USER_NET, params, x, 6))
  g = jax.grad(lambda x: jnp.sum(inv.activation(USER_NET, params, x, 8)**2))(
      jnp.asarray(x))
  assert g.shape == x.shape and np.all(np.isfinite(g))
