"""Sonification (paper Sec. 3.2, Fig. B.2) against a plain NumPy transcription.

A narrow CNN12 with random He-scaled kernels and small positive biases (so
that most maps are alive, a few silent); one conv3 map forced silent by a
large negative bias.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import inversion
from recon_jax import models
from recon_jax.inversion import deconvnet
from recon_jax.models import cnn12 as cnn12_lib
from recon_jax.models import invertible

WIDTHS = (2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8)
T = 2600
LAYERS = (1, 3, 8, 11)  # first, pooled, last pooled, unpooled (from ReLU)
SILENT = (3, 2)  # (block, map) with a bias that keeps it at zero


def _params(model, seed=0):
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, cnn12_lib.MIN_INPUT_LENGTH))))["params"]
  rng = np.random.default_rng(seed)

  def draw(s):
    if len(s.shape) > 1:
      return (rng.normal(size=s.shape) *
              np.sqrt(2 / np.prod(s.shape[:-1]))).astype(np.float32)
    return rng.uniform(0.0, 0.1, size=s.shape).astype(np.float32)

  params = jax.tree.map(draw, shapes)
  block, fmap = SILENT
  bias = np.array(params[f"conv{block}"]["bias"])
  bias[fmap - 1] = -100.0
  params[f"conv{block}"]["bias"] = bias
  return params


def _clips(n=2, length=T, seed=1):
  x = np.random.default_rng(seed).uniform(-1, 1, (n, length))
  x[1:] *= 0.3  # clips of different peaks: the scaling is per clip
  return x.astype(np.float32)


MODEL = models.CNN12(widths=WIDTHS)
PARAMS = _params(MODEL)
X = _clips()


def np_forward(params, x, layer):
  """Fig. B.2's forward pass in float64: start point and switches."""
  h = x.astype(np.float64)[:, None]
  switches, lengths = [], []
  for b in range(layer):
    w = np.asarray(params[f"conv{b + 1}"]["kernel"], np.float64)
    bias = np.asarray(params[f"conv{b + 1}"]["bias"], np.float64)
    k, c_in, c_out = w.shape
    y = np.zeros((h.shape[0] - k + 1, c_out))
    for o in range(c_out):
      for i in range(c_in):
        y[:, o] += np.correlate(h[:, i], w[:, i, o], "valid")
      y[:, o] += bias[o]
    y = np.maximum(y, 0)
    pool = cnn12_lib.POOLS[b]
    if pool:
      n_out = y.shape[0] // pool
      windows = y[:n_out * pool].reshape(n_out, pool, c_out)
      switches.append(windows.argmax(axis=1) + np.arange(n_out)[:, None] *
                      pool)  # argmax: the first maximum
      lengths.append(y.shape[0])
      y = windows.max(axis=1)
    else:
      switches.append(None)
      lengths.append(None)
    h = y
  return h, switches, lengths


def np_sonify(params, x, layer, fmap):
  """Fig. B.2 with loops, np.convolve and an explicit unpool; fmap from 1."""
  start, switches, lengths = np_forward(params, x, layer)
  current = np.zeros_like(start)
  current[:, fmap - 1] = start[:, fmap - 1]
  for b in reversed(range(layer)):
    if switches[b] is not None:
      unpooled = np.zeros((lengths[b], current.shape[1]))
      for t in range(current.shape[0]):
        for c in range(current.shape[1]):
          unpooled[switches[b][t, c], c] = current[t, c]
      current = unpooled
    current = np.maximum(current, 0)
    w = np.asarray(params[f"conv{b + 1}"]["kernel"], np.float64)
    k, c_in, c_out = w.shape
    out = np.zeros((current.shape[0] + k - 1, c_in))
    for i in range(c_in):
      for o in range(c_out):
        out[:, i] += np.convolve(current[:, o], w[:, i, o], "full")
    current = out
  s = current[:, 0]
  peak = np.max(np.abs(s))
  return np.zeros_like(s) if peak == 0 else s / peak * np.max(np.abs(x))


def assert_close(actual, desired, scale=1.0):
  np.testing.assert_allclose(actual, desired, rtol=2e-5, atol=2e-6 * scale)


@pytest.fixture(scope="module")
def all_maps():
  """{layer: (N, C, T)} from one all-maps call per layer."""
  return {layer: np.asarray(inversion.sonify(MODEL, PARAMS, X, layer))
          for layer in LAYERS}


@pytest.mark.parametrize("layer", LAYERS)
def test_equals_numpy_fig_b2_map_by_map(all_maps, layer):
  s = all_maps[layer]
  assert s.shape == (2, WIDTHS[layer - 1], T) and s.dtype == np.float32
  alive = 0
  for n in range(2):
    for m in range(1, WIDTHS[layer - 1] + 1):
      ref = np_sonify(PARAMS, X[n], layer, m)
      assert_close(s[n, m - 1], ref)
      alive += np.any(ref != 0)
  assert alive >= 2, "the test net should have live maps at every layer"


def test_per_map_calls_equal_the_all_maps_call(all_maps):
  layer = 3
  for m in range(1, WIDTHS[layer - 1] + 1):
    s = np.asarray(inversion.sonify(MODEL, PARAMS, X, layer, m))
    assert s.shape == (2, T)
    assert_close(s, all_maps[layer][:, m - 1])
  some = np.asarray(inversion.sonify(MODEL, PARAMS, X, layer, [4, 1, 4]))
  assert some.shape == (2, 3, T)
  assert_close(some, all_maps[layer][:, [3, 0, 3]])
  assert_close(inversion.sonify(MODEL, PARAMS, X, layer, np.array([2])),
               all_maps[layer][:, [1]])


def test_batch_equals_clip_by_clip(all_maps):
  layer = 11
  for n in range(2):
    one = np.asarray(inversion.sonify(MODEL, PARAMS, X[n], layer))
    assert one.shape == (WIDTHS[layer - 1], T)
    assert_close(one, all_maps[layer][n])
  one_map = inversion.sonify(MODEL, PARAMS, X[1], layer, 2)
  assert one_map.shape == (T,)
  assert_close(one_map, all_maps[layer][1, 1])


def test_unit_peak_times_max_abs_x(all_maps):
  for layer in LAYERS:
    peaks = np.abs(all_maps[layer]).max(axis=-1)  # (N, C)
    live = peaks > 0
    want = np.broadcast_to(np.abs(X).max(axis=-1)[:, None], peaks.shape)
    np.testing.assert_allclose(peaks[live], want[live], rtol=1e-6)
    assert live.sum() >= 2


def test_silent_map_gives_zeros_and_is_reported(all_maps):
  block, fmap = SILENT
  silent = np.asarray(inversion.silent_maps(MODEL, PARAMS, X, block))
  assert silent.shape == (2, WIDTHS[block - 1]) and silent.dtype == bool
  assert silent[:, fmap - 1].all()
  starts = [np_forward(PARAMS, x, block)[0] for x in X]
  np.testing.assert_array_equal(silent,
                                [np.all(s == 0, axis=0) for s in starts])
  assert not silent.all()
  np.testing.assert_array_equal(all_maps[block][:, fmap - 1], 0)
  for layer in LAYERS:  # every silent map: zeros, never NaN
    s = all_maps[layer]
    assert np.isfinite(s).all()
    dead = np.asarray(inversion.silent_maps(MODEL, PARAMS, X, layer))
    np.testing.assert_array_equal(s[dead], 0)
  one = inversion.silent_maps(MODEL, PARAMS, X[0], block)
  np.testing.assert_array_equal(one, silent[0])


def test_map_activity_is_mean_abs_of_the_start_point():
  for layer in (3, 9):
    got = np.asarray(inversion.map_activity(MODEL, PARAMS, X, layer))
    want = [np.abs(np_forward(PARAMS, x, layer)[0]).mean(axis=0) for x in X]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert got.shape == (2, WIDTHS[layer - 1])
  one = inversion.map_activity(MODEL, PARAMS, X[1], 9)
  np.testing.assert_allclose(one, got[1], rtol=1e-6)


def test_shift_by_256_shifts_the_sonification():
  """Paper Fig. B.3: x[n + k] -> s[n + k] away from the edges, k a multiple
  of the total pooling stride (2^8). The peak scaling is per clip, so the
  two agree up to one gain."""
  layer, shift, length = 11, 256, 8000
  rf = cnn12_lib.receptive_field()
  z = np.random.default_rng(5).uniform(-1, 1, length + shift)
  x = np.stack([z[:length], z[shift:]]).astype(np.float32)
  silent = np.asarray(inversion.silent_maps(MODEL, PARAMS, x, layer))
  fmap = int(np.flatnonzero(~silent.any(axis=0))[0]) + 1
  s = np.asarray(inversion.sonify(MODEL, PARAMS, x, layer, fmap),
                 np.float64)
  first = s[0, shift + rf:length - rf]
  second = s[1, rf:length - shift - rf]
  assert np.abs(first).max() > 0.05 * np.abs(s[0]).max()
  gain = first @ second / (first @ first)
  np.testing.assert_allclose(second, gain * first, rtol=1e-5,
                             atol=1e-6 * np.abs(second).max())
  # Not so away from the edges (the first rf samples): different.
  assert not np.allclose(s[1, :rf], gain * s[0, shift:shift + rf],
                         atol=1e-3 * np.abs(second).max())


def test_chunk_size_does_not_change_the_result(all_maps):
  for chunk in (1, 3, 100):
    s = inversion.sonify(MODEL, PARAMS, X, 8, chunk_size=chunk)
    assert_close(s, all_maps[8])


def test_same_under_jit_and_not_retraced_per_map(all_maps, monkeypatch):
  @jax.jit
  def fn(x):
    return inversion.sonify(MODEL, PARAMS, x, 3, 2)

  assert_close(fn(X), all_maps[3][:, 1])

  traces = []
  original = invertible.trace

  def counting(net, params, x, layer=None):
    traces.append(layer)
    return original(net, params, x, layer)

  monkeypatch.setattr(invertible, "trace", counting)
  # A description of its own (another name): not in the jit cache yet.
  net = dataclasses.replace(MODEL.invertible(), name="CNN12 (counted)")
  for m in (1, 2, 3, 4):
    s = inversion.sonify(net, PARAMS, X, 3, m)
    assert_close(s, all_maps[3][:, m - 1])
  assert traces == [3], traces
  for maps in ([1, 2], [4, 3]):
    inversion.sonify(net, PARAMS, X, 3, maps)
  assert traces == [3, 3], traces


def test_memory_of_every_map_of_block_11_on_10_s():
  """All 2,048 maps of the paper's CNN12 block 11 on a 10 s clip at 8 kHz:
  the compiled program (not run) needs a few GB at most."""
  model = models.CNN12()
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, cnn12_lib.MIN_INPUT_LENGTH))))["params"]
  net = deconvnet.CNN12Deconv(model)
  length, maps = 80_000, 2048
  chunk = deconvnet._check_chunk(None, net, 11, length, maps)
  compiled = deconvnet._sonify_jit.lower(
      net, 11, chunk, shapes, jax.ShapeDtypeStruct((1, length), jnp.float32),
      jax.ShapeDtypeStruct((maps,), jnp.int32)).compile()
  memory = compiled.memory_analysis()
  out = maps * length * 4
  assert memory.output_size_in_bytes == out
  assert memory.temp_size_in_bytes < 1e9, memory


@pytest.mark.parametrize("layer", [0, 12, -1, 2.0, True, "3"])
def test_missing_layer_is_a_clear_error(layer):
  for fn in (inversion.sonify, inversion.silent_maps, inversion.map_activity):
    with pytest.raises(ValueError, match="does not exist.*blocks 1..11"):
      fn(MODEL, PARAMS, X, layer)


@pytest.mark.parametrize("fmap", [0, 5, -1, [1, 5], [], 1.0, [1.5], True,
                                  [[1, 2]]])
def test_missing_map_is_a_clear_error(fmap):
  with pytest.raises(ValueError, match="feature_map|feature map"):
    inversion.sonify(MODEL, PARAMS, X, 3, fmap)
  if fmap in (0, 5, -1, [1, 5]):
    with pytest.raises(ValueError,
                       match="does not exist: block 3 has 4 feature maps, "
                       r"numbered 1..4"):
      inversion.sonify(MODEL, PARAMS, X, 3, fmap)


def test_short_clip_names_the_receptive_field():
  x = X[:, :cnn12_lib.MIN_INPUT_LENGTH - 1]
  for fn in (inversion.sonify, inversion.silent_maps, inversion.map_activity):
    with pytest.raises(ValueError, match="2369 samples.*receptive field of "
                       "2370"):
      fn(MODEL, PARAMS, x, 2)
    with pytest.raises(ValueError, match="receptive field of 2370"):
      fn(MODEL, PARAMS, x[0], 2)


def test_nan_or_inf_input_is_a_clear_error():
  for bad in (np.nan, np.inf):
    x = X.copy()
    x[1, 7] = bad
    for fn in (inversion.sonify, inversion.silent_maps, inversion.map_activity):
      with pytest.raises(ValueError, match="input holds 1 NaN/Inf"):
        fn(MODEL, PARAMS, x, 2)


@pytest.mark.parametrize("shape", [(), (2, T, 1), (1, 2, T)])
def test_wrong_rank_is_a_clear_error(shape):
  for fn in (inversion.sonify, inversion.silent_maps, inversion.map_activity):
    with pytest.raises(ValueError, match=r"waveform \(T,\) or waveforms "
                       r"\(N, T\), got shape"):
      fn(MODEL, PARAMS, np.zeros(shape, np.float32), 2)


def test_other_bad_arguments():
  with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
    inversion.sonify(MODEL, PARAMS, X, 2, 1, chunk_size=0)
  with pytest.raises(ValueError, match="empty batch"):
    inversion.sonify(MODEL, PARAMS, X[:0], 2, 1)
  with pytest.raises(TypeError, match="InvertibleNet or have an "
                     r"invertible\(\) method"):
    inversion.sonify("CNN12", PARAMS, X, 2, 1)
  with pytest.raises(ValueError, match=r"example \(L, C\) or examples "
                     r"\(N, L, C\), got shape \(2600,\)"):
    inversion.sonify(models.PhoneCNN(), PARAMS, X[0], 2, 1)
  # (2, 2600) is one (L, C) example to a net with channels: far too short.
  with pytest.raises(ValueError, match="PhoneCNN input of 2 samples"):
    inversion.sonify(models.PhoneCNN(), PARAMS, X, 2, 1)
  with pytest.raises(ValueError, match=r"parameters do not fit inputs of "
                     r"shape \(2600, 1\).*conv1"):
    inversion.sonify(models.PhoneCNN(), PARAMS, X[..., None], 2, 1)
  with pytest.raises(ValueError, match=r"parameters do not fit inputs of "
                     r"shape \(2600,\).*conv2"):
    inversion.sonify(MODEL, {**PARAMS, "conv2": PARAMS["conv3"]}, X, 2, 1)


def test_sonify_pairs_gives_each_clip_its_own_map(all_maps):
  maps = np.array([3, 1])
  got = np.asarray(inversion.sonify_pairs(MODEL, PARAMS, X, 8, maps))
  assert got.shape == (2, T)
  for i, m in enumerate(maps):
    assert_close(got[i], all_maps[8][i, m - 1])
  with pytest.raises(ValueError, match="one map per clip"):
    inversion.sonify_pairs(MODEL, PARAMS, X, 8, maps[:1])
  with pytest.raises(ValueError, match="feature map 5 does not exist"):
    inversion.sonify_pairs(MODEL, PARAMS, X, 8, np.array([1, 5]))
  with pytest.raises(ValueError, match=r"expects waveforms \(N, T\)"):
    inversion.sonify_pairs(MODEL, PARAMS, X[0], 8, maps[:1])
