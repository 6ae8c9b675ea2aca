"""Mean top-k magnitude-squared coherence (paper Eq. 3; docs/methods.md, B4)."""
import numpy as np
import pytest
import scipy.signal

from recon_jax import metrics
from recon_jax.metrics import coherence

FS = 8000


def pairs(n=5, length=3000, seed=0):
  """Clips x and 'sonifications' s: x low-passed plus noise (coherent at
  low frequencies, less above)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, length))
  b, a = scipy.signal.butter(4, 0.3)
  s = scipy.signal.lfilter(b, a, x, axis=1) + 0.5 * rng.normal(size=x.shape)
  return x, s


def scipy_topk(x, s, k=5, **welch):
  _, c = scipy.signal.coherence(x, s, FS, **welch)
  return np.sort(c)[-k:].mean()


@pytest.mark.parametrize("k,welch", [
    (5, {}),
    (1, {}),
    (3, {"nperseg": 128, "noverlap": 100, "nfft": 300}),
    (5, {"nperseg": 160, "noverlap": 80, "nfft": 512, "detrend": False}),
])
def test_equals_scipy_coherence_and_sort(k, welch):
  x, s = pairs()
  for xi, si in zip(x, s):
    want = scipy_topk(xi, si, k, **welch)
    assert metrics.mean_topk_coherence(xi, si, FS, k,
                                       **welch) == pytest.approx(want,
                                                                 abs=1e-12)
  # scipy's defaults, spelt out, are the defaults here.
  _, c = scipy.signal.coherence(x[0], s[0], FS, window="hann", nperseg=256,
                                noverlap=128, nfft=256, detrend="constant")
  assert metrics.mean_topk_coherence(x[0], s[0], FS) == pytest.approx(
      np.sort(c)[-5:].mean(), abs=1e-12)
  # A signal is fully coherent with itself and a filtered copy of itself.
  assert metrics.mean_topk_coherence(x[0], 3 * x[0], FS) == pytest.approx(1.0)


def test_batched_jax_version_equals_scipy():
  x, s = pairs(n=7, length=2500, seed=1)
  x[3] *= 1e-3  # Scale does not matter to coherence.
  for k, welch in ((5, {}), (2, {"nperseg": 100, "noverlap": 30,
                                 "nfft": 128, "detrend": False})):
    want = np.array([scipy_topk(a, b, k, **welch) for a, b in zip(x, s)])
    for batch_size in (3, 64):  # Chunks with a padded last one, or one.
      got = metrics.mean_topk_coherence_batch(x, s, FS, k,
                                              batch_size=batch_size, **welch)
      assert got.shape == (7,)
      np.testing.assert_allclose(got, want, atol=2e-6)  # float32.


def test_notebook_peaks_differ_from_top_values():
  x, s = pairs(n=3, length=4000, seed=2)
  for xi, si in zip(x, s):
    _, c = scipy.signal.coherence(xi, si, FS, nperseg=160, noverlap=80,
                                  nfft=512)
    peaks, _ = scipy.signal.find_peaks(c, distance=2)
    want = np.sort(c[peaks])[-5:].mean()
    got = metrics.mean_top_peaks_coherence(xi, si, FS)
    assert got == pytest.approx(want, abs=1e-12)
    # A broad coherent band: its neighbouring bins fill the top-5 values,
    # but count once as a peak, so the peak mean is lower.
    top_values = np.sort(c)[-5:].mean()
    assert top_values - got > 1e-3, (top_values, got)
    assert metrics.mean_topk_coherence(
        xi, si, FS, nperseg=160, noverlap=80, nfft=512) == pytest.approx(
            top_values, abs=1e-12)


def test_silent_signals_raise_or_give_nan():
  x, s = pairs(n=4)
  s[1] = 0.0  # The deconvnet's output for a silent feature map.
  x[2] = 0.25  # Constant: nothing left once each segment's mean is removed.
  with pytest.raises(coherence.UndefinedCoherenceError, match="s is silent"):
    metrics.mean_topk_coherence(x[1], s[1], FS)
  with pytest.raises(ValueError, match="x is silent"):
    metrics.mean_topk_coherence(x[2], s[2], FS)
  assert np.isnan(metrics.mean_topk_coherence(x[1], s[1], FS,
                                              on_undefined="nan"))
  with pytest.raises(coherence.UndefinedCoherenceError,
                     match=r"2 of 4 clips .*clips \[1, 2\]"):
    metrics.mean_topk_coherence_batch(x, s, FS)
  got = metrics.mean_topk_coherence_batch(x, s, FS, on_undefined="nan")
  np.testing.assert_array_equal(np.isnan(got), [False, True, True, False])
  assert got[0] == pytest.approx(scipy_topk(x[0], s[0]), abs=2e-6)
  with pytest.raises(coherence.UndefinedCoherenceError, match="s is silent"):
    metrics.mean_top_peaks_coherence(x[1], s[1], FS)
  assert np.isnan(metrics.mean_top_peaks_coherence(x[1], s[1], FS,
                                                   on_undefined="nan"))
  # Fewer peaks than k (the notebook skips such a clip): 257 bins hold at
  # most 129 peaks 2 apart.
  with pytest.raises(coherence.UndefinedCoherenceError, match="fewer than"):
    metrics.mean_top_peaks_coherence(x[0], s[0], FS, k=200)


def test_bad_inputs_are_refused():
  x, s = pairs(n=1)
  x, s = x[0], s[0]
  with pytest.raises(ValueError, match="different shapes"):
    metrics.mean_topk_coherence(x, s[:-1], FS)
  with pytest.raises(ValueError, match="too short for nperseg=256"):
    metrics.mean_topk_coherence(x[:200], s[:200], FS)
  with pytest.raises(ValueError, match="too short for nperseg=160"):
    metrics.mean_top_peaks_coherence(x[:100], s[:100], FS)
  bad = s.copy()
  bad[7] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.mean_topk_coherence(x, bad, FS)
  with pytest.raises(ValueError, match="NaN"):
    metrics.mean_topk_coherence_batch(x[None], bad[None], FS)
  for k in (0, 130, 2.0, True):  # 129 one-sided frequencies of nfft 256.
    with pytest.raises(ValueError, match="k="):
      metrics.mean_topk_coherence(x, s, FS, k)
  with pytest.raises(ValueError, match="k="):
    metrics.mean_topk_coherence_batch(x[None], s[None], FS, 130)
  with pytest.raises(ValueError, match="noverlap"):
    metrics.mean_topk_coherence(x, s, FS, noverlap=256)
  with pytest.raises(ValueError, match="nfft"):
    metrics.mean_topk_coherence(x, s, FS, nfft=100)
  with pytest.raises(ValueError, match="fs"):
    metrics.mean_topk_coherence(x, s, 0)
  with pytest.raises(ValueError, match="on_undefined"):
    metrics.mean_topk_coherence(x, s, FS, on_undefined="zero")
  with pytest.raises(ValueError, match=r"\(N, T\)"):
    metrics.mean_topk_coherence_batch(x, s, FS)
  with pytest.raises(ValueError, match="detrend"):
    metrics.mean_topk_coherence_batch(x[None], s[None], FS, detrend="linear")
