"""max_xcorr against a brute-force correlation over every lag."""
import numpy as np
import pytest

from recon_jax.metrics import max_xcorr


def brute_max_xcorr(a, b, order="C"):
  a = np.asarray(a, np.float64).ravel(order=order)
  b = np.asarray(b, np.float64).ravel(order=order)
  norm = np.sqrt(np.sum(a**2) * np.sum(b**2))
  if norm == 0:
    return 0.
  return np.correlate(a, b, mode="full").max() / norm


def rand(shape, seed):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# float32 FFT correlation: errors ~1e-7 of the normalised peak.
TOL = dict(rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape_a,shape_b", [((100,), (100,)), ((37,), (90,)),
                                             ((129,), (5,)), ((1,), (8,)),
                                             ((12, 9), (7, 11)),
                                             ((16, 16), (256,))])
def test_matches_brute_force(shape_a, shape_b):
  for seed in range(3):
    a, b = rand(shape_a, seed), rand(shape_b, seed + 10)
    np.testing.assert_allclose(float(max_xcorr(a, b)), brute_max_xcorr(a, b),
                               **TOL)


def test_column_major_order_matches_brute_force():
  """order='F' is MATLAB's X(:): the first axis of each example fastest."""
  for shape_a, shape_b in (((201, 16), (201, 16)), ((12, 9), (7, 11)),
                           ((3, 4, 5), (60,))):
    a, b = rand(shape_a, 20), rand(shape_b, 21)
    np.testing.assert_allclose(float(max_xcorr(a, b, order="F")),
                               brute_max_xcorr(a, b, order="F"), **TOL)
    assert abs(float(max_xcorr(a, b, order="F")) -
               brute_max_xcorr(a, b, order="C")) > 1e-4
  a, b = rand((3, 2, 12, 9), 22), rand((3, 2, 7, 11), 23)
  out = np.asarray(max_xcorr(a, b, batch_ndim=2, order="F"))
  ref = [[brute_max_xcorr(a[i, j], b[i, j], "F") for j in range(2)]
         for i in range(3)]
  np.testing.assert_allclose(out, ref, **TOL)


def test_batched():
  a, b = rand((4, 3, 10, 6), 1), rand((4, 3, 50), 2)
  out = np.asarray(max_xcorr(a, b, batch_ndim=2))
  assert out.shape == (4, 3)
  ref = [[brute_max_xcorr(a[i, j], b[i, j]) for j in range(3)]
         for i in range(4)]
  np.testing.assert_allclose(out, ref, **TOL)
  out1 = np.asarray(max_xcorr(a[0], b[0], batch_ndim=1))
  np.testing.assert_allclose(out1, ref[0], **TOL)


def test_self_scaling_and_shift():
  x = rand((201, 16), 3)
  np.testing.assert_allclose(float(max_xcorr(x, x)), 1., **TOL)
  y = rand((201, 16), 4)
  base = float(max_xcorr(x, y))
  np.testing.assert_allclose(float(max_xcorr(3.5 * x, 0.01 * y)), base,
                             rtol=1e-6)
  s = np.zeros(300, np.float32)
  s[20:120] = rand((100,), 5)
  shifted = np.roll(s, 150)  # still zero-padded: a pure lag
  np.testing.assert_allclose(float(max_xcorr(s, shifted)), 1., **TOL)
  np.testing.assert_allclose(float(max_xcorr(s[20:120], shifted)), 1., **TOL)
  assert float(max_xcorr(s, -s)) < 1.  # negative scaling is not invariant


def test_zero_input_gives_zero():
  assert float(max_xcorr(np.zeros(10), rand((10,), 6))) == 0.
  assert float(max_xcorr(np.zeros((3, 4)), np.zeros(7))) == 0.
  out = np.asarray(max_xcorr(np.stack([np.zeros(8), np.ones(8)]),
                             np.ones((2, 8)), batch_ndim=1))
  np.testing.assert_allclose(out, [0., 1.], **TOL)


def test_errors():
  with pytest.raises(ValueError, match="batch shapes differ"):
    max_xcorr(np.ones((3, 5)), np.ones((4, 5)), batch_ndim=1)
  with pytest.raises(ValueError, match="batch_ndim"):
    max_xcorr(np.ones(5), np.ones((4, 5)), batch_ndim=2)
  with pytest.raises(ValueError, match="NaN"):
    max_xcorr(np.array([1., np.nan]), np.ones(3))
  with pytest.raises(ValueError, match="NaN"):
    max_xcorr(np.ones(3), np.array([np.inf, 1.]))
  with pytest.raises(ValueError, match="empty"):
    max_xcorr(np.ones((2, 0)), np.ones((2, 3)), batch_ndim=1)
  with pytest.raises(ValueError, match="empty batch"):
    max_xcorr(np.ones((0, 5)), np.ones((0, 5)), batch_ndim=1)
  with pytest.raises(ValueError, match="order must be 'C' or 'F'"):
    max_xcorr(np.ones(3), np.ones(3), order="A")
