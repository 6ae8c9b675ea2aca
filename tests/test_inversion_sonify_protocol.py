"""The deconvnet on any network of the inversion protocol: the phone CNN
(overlapping 5/2 pools, VALID and SAME convs) and a user's declared net
(strides, paddings, padded and overlapping pools), against a plain NumPy
deconvnet; the phone CNN's shift property along frequency; the general
unpool and transposed conv against JAX's own transposes."""
# pylint: disable=protected-access
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import models
from recon_jax import ops as ops_lib
from recon_jax.inversion import deconvnet
from recon_jax.models import invertible as inv

sys.path.insert(0, os.path.dirname(__file__))
from test_inversion_fixtures import numpy_params  # noqa: E402

F, T = 201, 16
PHONE = {p: models.PhoneCNN(conv_features=(4, 6, 5), dense_features=(12, 8),
                            num_classes=3, padding=p)
         for p in ("VALID", "SAME")}

# A user's nets, written only here (neither paper's kernels, strides,
# paddings or pools): one over time (waveforms), one with channels.
USER_WAVE = inv.InvertibleNet(
    ops=(inv.conv(5, 9, stride=2, padding="SAME", name="c1"), inv.relu(),
         inv.max_pool(4, 3, padding=(1, 2)),
         inv.conv(6, 4, padding=(2, 1), name="c2"), inv.relu(),
         inv.max_pool(3, 2), inv.conv(4, 3, stride=3, name="c3"), inv.relu(),
         inv.temporal_mean(), inv.dense(3, name="out")),
    waveform=True, name="UserWave")
USER_CHANNELS = inv.InvertibleNet(
    ops=(inv.conv(5, 4, padding=(3, 0), name="c1"), inv.max_pool(2, 3),
         inv.relu(), inv.conv(4, 5, stride=2, padding="SAME", name="c2"),
         inv.relu(), inv.max_pool(3, 1, padding="SAME")),
    name="UserChannels")


def _params(net, example_shape, seed=0):
  """Random kernels and small positive biases (most maps alive)."""
  rng = np.random.default_rng(seed)
  params = {}
  shapes = inv._param_shapes(net, example_shape)
  for path, shape in shapes.items():
    if path[-1] == "kernel":
      value = rng.normal(size=shape) * np.sqrt(2 / np.prod(shape[:-1]))
    else:
      value = rng.uniform(0.0, 0.1, size=shape)
    params.setdefault(path[0], {})[path[1]] = value.astype(np.float32)
  return params


# ------------------------------------------------------- NumPy reference


def _pads(op, length):
  if op.padding == "VALID":
    return 0, 0
  if op.padding == "SAME":
    out = -(-length // op.stride)
    total = max((out - 1) * op.stride + op.size - length, 0)
    return total // 2, total - total // 2
  return op.padding


def np_forward(net, params, x, layer):
  """x (L, C) float64 through the ops of `layer`: the start and, per op,
  (switches into the padded input, input length, pads)."""
  h = np.asarray(x, np.float64)
  record = []
  for op in net.ops_of(layer):
    length = h.shape[0]
    if op.kind == "conv":
      lo, hi = _pads(op, length)
      w = np.asarray(params[op.name]["kernel"], np.float64)
      b = np.asarray(params[op.name]["bias"], np.float64)
      hp = np.pad(h, ((lo, hi), (0, 0)))
      n_out = (hp.shape[0] - op.kernel) // op.stride + 1
      y = np.zeros((n_out, w.shape[2]))
      for i in range(n_out):
        y[i] = np.einsum("kc,kco->o", hp[i * op.stride:i * op.stride +
                                         op.kernel], w) + b
      record.append((None, length, (lo, hi)))
      h = y
    elif op.kind == "relu":
      record.append((None, length, None))
      h = np.maximum(h, 0)
    else:
      lo, hi = _pads(op, length)
      hp = np.pad(h, ((lo, hi), (0, 0)), constant_values=-np.inf)
      n_out = (hp.shape[0] - op.window) // op.stride + 1
      y = np.zeros((n_out, h.shape[1]))
      sw = np.zeros((n_out, h.shape[1]), int)
      for i in range(n_out):
        win = hp[i * op.stride:i * op.stride + op.window]
        sw[i] = i * op.stride + win.argmax(axis=0)  # the first maximum
        y[i] = win.max(axis=0)
      record.append((sw, length, (lo, hi)))
      h = y
  return h, record


def np_sonify(net, params, x, layer, fmap):
  """The deconvnet with loops: unpool = scatter-add at the switches, ReLU,
  transposed conv = the conv's adjoint written out; fmap from 1."""
  start, record = np_forward(net, params, x, layer)
  h = np.zeros_like(start)
  h[:, fmap - 1] = start[:, fmap - 1]
  for op, (sw, length, pads) in reversed(list(zip(net.ops_of(layer),
                                                   record))):
    if op.kind == "pool":
      lo, hi = pads
      up = np.zeros((length + lo + hi, h.shape[1]))
      for i in range(h.shape[0]):
        for c in range(h.shape[1]):
          up[sw[i, c], c] += h[i, c]
      h = up[lo:lo + length]
    elif op.kind == "relu":
      h = np.maximum(h, 0)
    else:
      lo, hi = pads
      w = np.asarray(params[op.name]["kernel"], np.float64)
      xp = np.zeros((length + lo + hi, w.shape[1]))
      for i in range(h.shape[0]):
        xp[i * op.stride:i * op.stride + op.kernel] += np.einsum(
            "kco,o->kc", w, h[i])
      h = xp[lo:lo + length]
  peak = np.max(np.abs(h))
  return np.zeros_like(h) if peak == 0 else h / peak * np.max(np.abs(x))


def assert_close(actual, desired):
  np.testing.assert_allclose(actual, desired, rtol=2e-5,
                             atol=2e-6 * max(np.abs(desired).max(), 1e-3))


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def phone():
  out = {}
  for padding, model in PHONE.items():
    params = numpy_params(model)
    x = np.random.default_rng(3).normal(size=(2, F, T)).astype(np.float32)
    out[padding] = model, params, x
  return out


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("layer", [1, 2, 3, 6, 9])
def test_phone_cnn_sonification_equals_numpy(phone, padding, layer):
  model, params, x = phone[padding]
  s = np.asarray(inversion.sonify(model, params, x, layer))
  width = model.conv_features[(layer - 1) // 3]
  assert s.shape == (2, width, F, T) and s.dtype == np.float32
  net = model.invertible()
  alive = 0
  for n in range(2):
    for m in range(1, width + 1):
      ref = np_sonify(net, params, x[n], layer, m)
      assert_close(s[n, m - 1], ref)
      alive += np.any(ref != 0)
  assert alive >= 2


def test_phone_cnn_sonification_of_one_example_and_pairs(phone):
  model, params, x = phone["VALID"]
  all_maps = np.asarray(inversion.sonify(model, params, x, 6))
  one = np.asarray(inversion.sonify(model, params, x[1], 6, 3))
  assert one.shape == (F, T)  # the input spectrogram's shape
  assert_close(one, all_maps[1, 2])
  pairs = np.asarray(inversion.sonify_pairs(model, params, x, 6, [2, 5]))
  assert pairs.shape == (2, F, T)
  assert_close(pairs[0], all_maps[0, 1])
  assert_close(pairs[1], all_maps[1, 4])
  for chunk in (1, 5):
    assert_close(inversion.sonify(model, params, x, 6, chunk_size=chunk),
                 all_maps)
  act = np.asarray(inversion.map_activity(model, params, x, 6))
  start = np.asarray(model.apply({"params": params}, x, layer=6))
  np.testing.assert_allclose(act, np.abs(start).mean(axis=1), rtol=1e-6)
  silent = np.asarray(inversion.silent_maps(model, params, x, 6))
  np.testing.assert_array_equal(silent, np.all(start == 0, axis=1))
  np.testing.assert_array_equal(all_maps[silent], 0)


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_phone_cnn_shift_along_frequency(phone, padding):
  """Shifting the spectrogram by 8 bins along frequency (the total pooling
  stride, 2^3) shifts the sonification by 8 bins, exactly, away from the
  edges (up to the per-example gain of the unit-peak scaling)."""
  model, params, _ = phone[padding]
  net = model.invertible()
  shift = inv.total_stride(net, 9)
  assert shift == 8
  rf = inv.receptive_field(net, 9)
  z = np.random.default_rng(11).normal(size=(F + 3 * shift, T))
  for k in (shift, 3 * shift):
    x = np.stack([z[:F], z[k:k + F]]).astype(np.float32)
    every = np.asarray(inversion.sonify(model, params, x, 9), np.float64)
    # The map most alive away from the edges.
    inner = [np.abs(e[k + rf:F - rf]).max() / max(np.abs(e).max(), 1e-30)
             for e in every[0]]
    fmap = int(np.argmax(inner))
    s = every[:, fmap]
    first = s[0, k + rf:F - rf]
    second = s[1, rf:F - k - rf]
    assert first.shape[0] > 40
    assert np.abs(first).max() > 0.05 * np.abs(s[0]).max()
    gain = np.sum(first * second) / np.sum(first * first)
    np.testing.assert_allclose(second, gain * first, rtol=1e-5,
                               atol=1e-6 * np.abs(second).max())
  # A shift that is not a multiple of the pooling stride breaks it.
  x = np.stack([z[:F], z[3:3 + F]]).astype(np.float32)
  s = np.asarray(inversion.sonify(model, params, x, 9, fmap + 1),
                 np.float64)
  first, second = s[0, 3 + rf:F - rf], s[1, rf:F - 3 - rf]
  gain = np.sum(first * second) / np.sum(first * first)
  assert not np.allclose(second, gain * first,
                         atol=1e-3 * np.abs(second).max())


@pytest.mark.parametrize("net,example", [(USER_WAVE, (400,)),
                                         (USER_CHANNELS, (90, 3))])
def test_user_net_sonification_equals_numpy(net, example):
  params = _params(net, example)
  x = np.random.default_rng(4).uniform(-1, 1, (2,) + example).astype(
      np.float32)
  x[1] *= 0.3
  layers = [n for n in range(1, net.num_layers + 1)
            if not any(op.kind in ("dense", "mean") for op in net.ops_of(n))]
  assert len(layers) >= 6
  for layer in layers:
    s = np.asarray(inversion.sonify(net, params, x, layer))
    width = [op for op in net.ops_of(layer) if op.kind == "conv"][-1].features
    assert s.shape == (2, width) + example
    for n in range(2):
      for m in range(1, width + 1):
        x2 = x[n][:, None] if net.waveform else x[n]
        ref = np_sonify(net, params, x2, layer, m)
        assert_close(s[n, m - 1], ref[:, 0] if net.waveform else ref)


def test_user_declared_module_sonifies_and_refuses_dense_layers():
  module = inv.DeclaredNet(USER_WAVE)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 300)).astype(np.float32)
  params = module.init(jax.random.key(0), x)["params"]
  s = inversion.sonify(module, params, x, 8, [1, 2])
  assert s.shape == (2, 2, 300)
  np.testing.assert_array_equal(s, inversion.sonify(USER_WAVE, params, x, 8,
                                                    [1, 2]))
  with pytest.raises(ValueError, match=r"layer 9 \(mean\) of UserWave comes "
                     r"after a mean.*layers 1..8"):
    inversion.sonify(module, params, x, 9)
  with pytest.raises(ValueError, match="layer 11 does not exist"):
    inversion.sonify(module, params, x, 11)
  with pytest.raises(ValueError, match=r"layer 10 \(fc1\) of PhoneCNN"):
    inversion.sonify(PHONE["VALID"], numpy_params(PHONE["VALID"]),
                     np.zeros((F, T), np.float32), 10)


@pytest.mark.parametrize("stride,padding,kernel,length", [
    (1, (0, 0), 3, 20), (2, (0, 0), 3, 20), (3, (2, 1), 4, 23),
    (2, (4, 0), 3, 17), (1, (1, 1), 5, 12), (4, (0, 3), 2, 30)])
def test_general_transposed_conv_is_the_conv_transpose(stride, padding,
                                                       kernel, length):
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(kernel, 3, 2)), jnp.float32)
  x = jnp.zeros((2, length, 3), jnp.float32)

  def fwd(x):
    return jax.lax.conv_general_dilated(
        x, w, (stride,), [padding], dimension_numbers=("NWC", "WIO", "NWC"),
        precision=jax.lax.Precision.HIGHEST)
  y = jnp.asarray(rng.normal(size=fwd(x).shape), jnp.float32)
  (want,) = jax.linear_transpose(fwd, x)(y)
  got = deconvnet._transposed_conv(y, w, stride, padding, length)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # The one-channel form with per-item kernels: item i's output channel c.
  for c in range(2):
    one = deconvnet._transposed_conv_one_channel(
        y[..., c:c + 1], jnp.broadcast_to(w[:, :, c], (2, kernel, 3)),
        stride, padding, length)
    (want_c,) = jax.linear_transpose(lambda x: fwd(x)[..., c], x)(y[..., c])
    np.testing.assert_allclose(one, want_c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window,stride,pad,length", [
    (5, 2, (0, 0), 40), (3, 1, (1, 1), 17), (2, 3, (0, 0), 20),
    (4, 3, (1, 2), 31), (2, 2, (0, 0), 21)])
def test_general_unpool_is_the_transpose_of_gathering_at_switches(
    window, stride, pad, length):
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, length, 3)),
                  jnp.float32)
  op = inv.max_pool(window, stride, padding=pad)
  lo, hi = pad
  xp = jnp.pad(x, ((0, 0), pad, (0, 0)), constant_values=-jnp.inf)
  y, sw = ops_lib.pooling._max_pool_with_argmax(xp, window, stride)
  data = deconvnet._unpool_data(op, sw, length, pad)
  got = deconvnet._unpool_op(y, op, data, length, pad)
  want = ops_lib.max_unpool(y, sw, length + lo + hi)[:, lo:lo + length]
  np.testing.assert_array_equal(got, want)
  if window > stride:  # overlapping windows share switches: values add
    counts = np.zeros((2, length + lo + hi, 3))
    np.add.at(counts, (np.arange(2)[:, None, None], np.asarray(sw),
                       np.arange(3)), 1)
    assert counts.max() > 1
