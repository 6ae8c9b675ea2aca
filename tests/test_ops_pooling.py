"""Max-pooling with switches and (blind) unpooling against plain NumPy loops."""
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import test_util
import numpy as np
import pytest

from recon_jax import ops

# (window, stride, length): overlapping (phone CNN 5/2), tiling (CNN12 2/2),
# odd lengths that leave an uncovered tail, degenerate 1/1, stride 1, a single
# window, and stride > window (gaps no window covers).
CASES = [(5, 2, 17), (5, 2, 16), (2, 2, 13), (2, 2, 12), (3, 3, 11),
         (1, 1, 7), (4, 1, 9), (3, 2, 3), (2, 3, 12)]


def np_max_pool(x, window, stride):
  """x (N, L, C) -> values, switches (N, L_out, C); first maximum wins."""
  n, length, c = x.shape
  n_out = (length - window) // stride + 1
  vals = np.zeros((n, n_out, c), x.dtype)
  sw = np.zeros((n, n_out, c), np.int64)
  for b in range(n):
    for i in range(n_out):
      for ch in range(c):
        seg = x[b, i * stride:i * stride + window, ch]
        j = int(np.argmax(seg))  # np.argmax returns the first maximum
        vals[b, i, ch] = seg[j]
        sw[b, i, ch] = i * stride + j
  return vals, sw


def np_max_unpool(y, sw, length):
  n, n_out, c = y.shape
  out = np.zeros((n, length, c), np.float64)
  for b in range(n):
    for i in range(n_out):
      for ch in range(c):
        out[b, sw[b, i, ch], ch] += y[b, i, ch]
  return out


def np_blind_unpool(y, window, stride, length):
  n, n_out, c = y.shape
  total = np.zeros((n, length, c), np.float64)
  count = np.zeros((length,), np.float64)
  for i in range(n_out):
    for k in range(window):
      total[:, i * stride + k, :] += y[:, i, :]
      count[i * stride + k] += 1
  return total / np.maximum(count, 1)[:, None]


def rand(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def with_ties(shape, seed=0):
  """Small integers: plenty of tied maxima inside windows."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, 3, shape).astype(np.float32)


@pytest.mark.parametrize("window,stride,length", CASES)
def test_max_pool_matches_numpy_loop(window, stride, length):
  for x in (rand((2, length, 3), seed=length), with_ties((2, length, 3))):
    y, sw = ops.max_pool_with_argmax(x, window, stride)
    ref_y, ref_sw = np_max_pool(x, window, stride)
    assert sw.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y), ref_y)
    np.testing.assert_array_equal(np.asarray(sw), ref_sw)


def test_max_pool_rank2_and_extra_batch_dims():
  x = rand((2, 3, 17, 4))
  y, sw = ops.max_pool_with_argmax(x, 5, 2)
  assert y.shape == sw.shape == (2, 3, 7, 4)
  ref_y, ref_sw = np_max_pool(x.reshape(6, 17, 4), 5, 2)
  np.testing.assert_array_equal(np.asarray(y).reshape(6, 7, 4), ref_y)
  np.testing.assert_array_equal(np.asarray(sw).reshape(6, 7, 4), ref_sw)
  y1, sw1 = ops.max_pool_with_argmax(x[0, 0], 5, 2)  # (L, C)
  assert y1.shape == (7, 4)
  np.testing.assert_array_equal(np.asarray(y1), ref_y[0])
  np.testing.assert_array_equal(np.asarray(sw1), ref_sw[0])


def test_first_maximum_wins_on_ties():
  x = np.array([1., 0., 3., 3., 1., 3., 0.], np.float32)[:, None]
  y, sw = ops.max_pool_with_argmax(x, 3, 2)  # windows [0:3], [2:5], [4:7]
  np.testing.assert_array_equal(np.asarray(y)[:, 0], [3., 3., 3.])
  np.testing.assert_array_equal(np.asarray(sw)[:, 0], [2, 2, 5])  # not 3
  g = jax.grad(lambda x: ops.max_pool_with_argmax(x, 3, 2)[0].sum())(x)
  # Position 2 is the first max of two windows, so it gets both gradients;
  # position 3 ties with it in window 1 but gets nothing.
  np.testing.assert_array_equal(np.asarray(g)[:, 0], [0, 0, 2, 0, 0, 1, 0])
  x = np.full((6, 1), 7., np.float32)  # constant: every window ties fully
  _, sw = ops.max_pool_with_argmax(x, 2, 2)
  np.testing.assert_array_equal(np.asarray(sw)[:, 0], [0, 2, 4])


@pytest.mark.parametrize("window,stride", [(5, 2), (2, 2), (3, 3), (4, 1)])
def test_values_and_gradients_equal_flax_max_pool(window, stride):
  # Integer cotangents: sums over shared switches are exact in any order.
  cot = with_ties((2, (17 - window) // stride + 1, 3), seed=1) - 1
  for x in (rand((2, 17, 3), seed=2), with_ties((2, 17, 3), seed=3)):
    ours = lambda x: ops.max_pool_with_argmax(x, window, stride)[0]
    theirs = lambda x: nn.max_pool(x, (window,), strides=(stride,))
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))
    g_ours = jax.vjp(ours, x)[1](cot)[0]
    g_theirs = jax.vjp(theirs, x)[1](cot)[0]
    np.testing.assert_array_equal(np.asarray(g_ours), np.asarray(g_theirs))


def test_gradient_goes_to_switches():
  x = with_ties((2, 16, 3), seed=4)
  cot = rand((2, 6, 3), seed=5)
  _, sw = ops.max_pool_with_argmax(x, 5, 2)
  g = jax.vjp(lambda x: ops.max_pool_with_argmax(x, 5, 2)[0], x)[1](cot)[0]
  np.testing.assert_allclose(np.asarray(g), np_max_unpool(cot, np.asarray(sw),
                                                          16), rtol=1e-6)


def test_jit_vmap_grad():
  x = rand((4, 17, 3), seed=6)
  pool = lambda x: ops.max_pool_with_argmax(x, 5, 2)
  ref_y, ref_sw = np_max_pool(x, 5, 2)
  for f in (jax.jit(pool), jax.vmap(pool)):
    y, sw = f(x)
    np.testing.assert_array_equal(np.asarray(y), ref_y)
    np.testing.assert_array_equal(np.asarray(sw), ref_sw)
  loss = lambda x: jnp.sum(pool(x)[0]**2)
  g = jax.grad(loss)(x)
  np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(loss))(x)),
                             np.asarray(g), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(loss))(x)),
                             np.asarray(g), rtol=1e-6)
  np.testing.assert_allclose(
      np.asarray(g), np_max_unpool(2 * ref_y, ref_sw, 17), rtol=1e-6)


def test_check_grads():
  # Distinct values spaced well apart: finite differences never flip a max.
  x = np.random.default_rng(7).permutation(2 * 13 * 2).astype(np.float32)
  x = x.reshape(2, 13, 2)
  for window, stride, order in ((5, 2, 2), (2, 2, 1)):
    test_util.check_grads(
        lambda x, w=window, s=stride: ops.max_pool_with_argmax(x, w, s)[0],
        (x,), order=order, modes=("fwd", "rev"), eps=1e-2)


@pytest.mark.parametrize("window,stride,length", CASES)
def test_max_unpool_matches_numpy_loop(window, stride, length):
  x = with_ties((2, length, 3), seed=length)
  _, sw = ops.max_pool_with_argmax(x, window, stride)
  y = rand(sw.shape, seed=8)
  out = ops.max_unpool(y, sw, length)
  assert out.shape == (2, length, 3)
  np.testing.assert_allclose(np.asarray(out),
                             np_max_unpool(y, np.asarray(sw), length),
                             rtol=1e-6, atol=0)


def test_max_unpool_is_adjoint_of_gather_at_switches():
  rng = np.random.default_rng(9)
  x = rand((3, 21, 4), seed=10)
  for window, stride in ((5, 2), (2, 2), (4, 1)):
    _, sw = ops.max_pool_with_argmax(x, window, stride)
    sw = np.asarray(sw)
    y = rng.standard_normal(sw.shape).astype(np.float32)
    z = rng.standard_normal(x.shape).astype(np.float32)
    gathered = np.take_along_axis(z, sw, axis=1)  # z at the switches
    lhs = np.vdot(np.asarray(ops.max_unpool(y, sw, 21), np.float64), z)
    rhs = np.vdot(y.astype(np.float64), gathered)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_max_unpool_duplicate_switches_add():
  # Overlapping windows (5/2) that share one maximum record the same switch;
  # unpooling adds their values there (the adjoint of gathering).
  x = np.zeros((9, 1), np.float32)
  x[4] = 5.
  y, sw = ops.max_pool_with_argmax(x, 5, 2)
  np.testing.assert_array_equal(np.asarray(sw)[:, 0], [4, 4, 4])
  out = ops.max_unpool(np.array([[1.], [2.], [4.]], np.float32), sw, 9)
  np.testing.assert_array_equal(np.asarray(out)[:, 0], [0, 0, 0, 0, 7, 0, 0,
                                                       0, 0])


def test_max_unpool_grad_jit_vmap():
  x = rand((2, 17, 3), seed=11)
  _, sw = ops.max_pool_with_argmax(x, 5, 2)
  y = rand(sw.shape, seed=12)
  z = rand((2, 17, 3), seed=13)
  g = jax.grad(lambda y: jnp.sum(ops.max_unpool(y, sw, 17) * z))(y)
  np.testing.assert_allclose(np.asarray(g),
                             np.take_along_axis(z, np.asarray(sw), axis=1),
                             rtol=1e-6)
  ref = np_max_unpool(y, np.asarray(sw), 17)
  f = jax.jit(ops.max_unpool, static_argnums=2)
  np.testing.assert_allclose(np.asarray(f(y, sw, 17)), ref, rtol=1e-6)
  v = jax.vmap(lambda y, s: ops.max_unpool(y, s, 17))(y, sw)
  np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-6)


def test_max_unpool_errors():
  y = np.ones((4, 2), np.float32)
  sw = np.zeros((4, 2), np.int32)
  with pytest.raises(ValueError, match="outside"):
    ops.max_unpool(y, sw + 9, 9)
  with pytest.raises(ValueError, match="outside"):
    ops.max_unpool(y, sw - 1, 9)
  with pytest.raises(ValueError, match="same shape"):
    ops.max_unpool(y, sw[:3], 9)
  with pytest.raises(ValueError, match="rank"):
    ops.max_unpool(y[:, 0], sw[:, 0], 9)
  with pytest.raises(ValueError, match="NaN"):
    ops.max_unpool(np.where(sw == 0, np.nan, y), sw, 9)
  # Under jit there is no range check: out-of-range switches are dropped and
  # never land in a neighbouring row.
  sw = np.array([[[0], [9], [2]], [[-1], [1], [8]]], np.int32)
  out = jax.jit(ops.max_unpool, static_argnums=2)(np.ones((2, 3, 1),
                                                          np.float32), sw, 9)
  expected = np.zeros((2, 9, 1), np.float32)
  expected[0, [0, 2]] = expected[1, [1, 8]] = 1.
  np.testing.assert_array_equal(np.asarray(out), expected)


@pytest.mark.parametrize("window,stride,length", CASES)
def test_blind_unpool_matches_numpy_loop(window, stride, length):
  n_out = (length - window) // stride + 1
  y = rand((2, n_out, 3), seed=14)
  for out_len in (length, length + 3):
    out = ops.blind_unpool(y, window, stride, out_len)
    assert out.shape == (2, out_len, 3)
    np.testing.assert_allclose(
        np.asarray(out), np_blind_unpool(y, window, stride, out_len),
        rtol=1e-6, atol=1e-7)


def test_blind_unpool_of_constant_is_constant():
  for window, stride, length in CASES:
    n_out = (length - window) // stride + 1
    covered = np.zeros(length, bool)
    for i in range(n_out):
      covered[i * stride:i * stride + window] = True
    y = np.full((3, n_out, 2), 2.5, np.float32)
    out = np.asarray(ops.blind_unpool(y, window, stride, length))
    np.testing.assert_allclose(out[:, covered], 2.5, rtol=1e-6)
    np.testing.assert_array_equal(out[:, ~covered], 0.)  # tail, gaps


def test_blind_unpool_jit_vmap_grad_and_errors():
  y = rand((2, 7, 3), seed=15)
  ref = np_blind_unpool(y, 5, 2, 17)
  f = jax.jit(ops.blind_unpool, static_argnums=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(f(y, 5, 2, 17)), ref, rtol=1e-6)
  v = jax.vmap(lambda y: ops.blind_unpool(y, 5, 2, 17))(y)
  np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-6)
  # Linear in y, so the gradient of <blind_unpool(y), z> is its transpose.
  z = rand((2, 17, 3), seed=16)
  g = jax.grad(lambda y: jnp.sum(ops.blind_unpool(y, 5, 2, 17) * z))(y)
  eye = np.eye(7, dtype=np.float32)[None, :, :, None]
  basis = np.asarray(ops.blind_unpool(np.broadcast_to(eye, (1, 7, 7, 1)),
                                      5, 2, 17))[0, :, :, 0]  # (7, 17)
  np.testing.assert_allclose(np.asarray(g),
                             np.einsum("il,nlc->nic", basis, z), rtol=1e-5)
  with pytest.raises(ValueError, match="length"):
    ops.blind_unpool(y, 5, 2, 16)
  with pytest.raises(ValueError, match="rank"):
    ops.blind_unpool(y[0, :, 0], 5, 2, 17)
  with pytest.raises(ValueError, match="NaN"):
    ops.blind_unpool(np.full((7, 1), np.nan, np.float32), 5, 2, 17)


def test_switches_carry_position_the_blind_path_does_not():
  """The 'mangled network' leak: same pooled values, different positions."""
  a = np.zeros((8, 1), np.float32)
  b = np.zeros((8, 1), np.float32)
  a[[0, 5], 0] = [4., 3.]  # window 2/2: maxima at the start of windows 0 and 2
  b[[1, 4], 0] = [4., 3.]  # ... at other positions of the same windows
  ya, swa = ops.max_pool_with_argmax(a, 2, 2)
  yb, swb = ops.max_pool_with_argmax(b, 2, 2)
  np.testing.assert_array_equal(np.asarray(ya), np.asarray(yb))
  assert not np.array_equal(np.asarray(swa), np.asarray(swb))
  np.testing.assert_array_equal(np.asarray(ops.max_unpool(ya, swa, 8)), a)
  np.testing.assert_array_equal(np.asarray(ops.max_unpool(yb, swb, 8)), b)
  np.testing.assert_array_equal(np.asarray(ops.blind_unpool(ya, 2, 2, 8)),
                                np.asarray(ops.blind_unpool(yb, 2, 2, 8)))


@pytest.mark.parametrize("window,stride,length", [(5, 2, 17), (2, 2, 13),
                                                  (4, 1, 9)])
def test_offsets_form_equals_switches(window, stride, length):
  x = with_ties((2, length, 3), seed=17)
  y, sw = ops.max_pool_with_argmax(x, window, stride)
  y2, off = ops.max_pool_switch_offsets(x, window, stride)
  np.testing.assert_array_equal(np.asarray(y2), np.asarray(y))
  assert np.asarray(off).min() >= 0 and np.asarray(off).max() < window
  starts = stride * np.arange(y.shape[-2])[:, None]
  np.testing.assert_array_equal(np.asarray(off) + starts, np.asarray(sw))
  v = rand(y.shape, seed=18)
  for out_len in (length, length + 2):
    np.testing.assert_allclose(
        np.asarray(ops.unpool_at_offsets(v, off, window, stride, out_len)),
        np.asarray(ops.max_unpool(v, sw, out_len)), rtol=1e-6, atol=0)
  with pytest.raises(ValueError, match="length"):
    ops.unpool_at_offsets(v, off, window, stride, length - 1 - (length - window)
                          % stride)


def test_max_pool_errors():
  with pytest.raises(ValueError, match="longer than the signal"):
    ops.max_pool_with_argmax(np.ones((2, 4, 1), np.float32), 5, 2)
  with pytest.raises(ValueError, match="rank"):
    ops.max_pool_with_argmax(np.ones((9,), np.float32), 2, 2)
  with pytest.raises(ValueError, match=">= 1"):
    ops.max_pool_with_argmax(np.ones((9, 1), np.float32), 2, 0)
  x = np.ones((9, 1), np.float32)
  x[3] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    ops.max_pool_with_argmax(x, 2, 2)


def test_max_unpool_rejects_float_switches():
  y = np.ones((1, 2, 1), np.float32)
  with pytest.raises(ValueError, match="integer indices"):
    ops.max_unpool(y, np.array([[[0.9], [2.7]]]), 5)


def test_unpool_window_stride_and_offset_errors():
  y = rand((2, 7, 3), seed=19)
  off = np.zeros((2, 7, 3), np.int32)
  for window, stride in ((0, 2), (5, 0), (-1, 2), (5, -2)):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
      ops.blind_unpool(y, window, stride, 17)
    with pytest.raises(ValueError, match="must be an integer >= 1"):
      ops.unpool_at_offsets(y, off, window, stride, 17)
  with pytest.raises(ValueError, match="length must be an integer >= 1"):
    ops.blind_unpool(y, 5, 2, 0)
  with pytest.raises(ValueError, match="length must be an integer >= 1"):
    ops.max_unpool(y, off, 0)
  for bad in (5, -1):
    wrong = off.copy()
    wrong[1, 3, 2] = bad
    with pytest.raises(ValueError, match=r"outside the window \[0, 5\)"):
      ops.unpool_at_offsets(y, wrong, 5, 2, 17)
  with pytest.raises(ValueError, match="integers in"):
    ops.unpool_at_offsets(y, off.astype(np.float32), 5, 2, 17)
  with pytest.raises(ValueError, match="same shape"):
    ops.unpool_at_offsets(y, off[:, :6], 5, 2, 17)
  nan = y.copy()
  nan[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    ops.unpool_at_offsets(nan, off, 5, 2, 17)
