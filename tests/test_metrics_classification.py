"""mAP, mAUC, d', accuracy and 95% intervals against scikit-learn and scipy."""
import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm

from recon_jax import metrics


def _data(seed, n=60, c=7, levels=5):
  """Scores on a coarse grid (many ties), targets correlated with them."""
  rng = np.random.default_rng(seed)
  scores = rng.integers(0, levels, size=(n, c)) / levels
  targets = (scores + rng.normal(0, 0.4, size=(n, c)) > 0.5).astype(np.int64)
  return targets, scores


@pytest.mark.parametrize("seed,levels", [(0, 3), (1, 5), (2, 1000), (3, 2)])
def test_per_class_ap_and_auc_equal_sklearn(seed, levels):
  targets, scores = _data(seed, levels=levels)
  ap = metrics.average_precision_per_class(targets, scores)
  auc = metrics.auc_per_class(targets, scores)
  for k in range(targets.shape[1]):
    np.testing.assert_allclose(
        ap[k], skm.average_precision_score(targets[:, k], scores[:, k]),
        rtol=1e-12)
    np.testing.assert_allclose(
        auc[k], skm.roc_auc_score(targets[:, k], scores[:, k]), rtol=1e-12)


def test_means_equal_sklearn_macro_and_the_authors_d_prime():
  targets, scores = _data(4)
  m_ap = metrics.mean_average_precision(targets, scores)
  m_auc = metrics.mean_auc(targets, scores)
  np.testing.assert_allclose(
      m_ap, skm.average_precision_score(targets, scores, average="macro"),
      rtol=1e-12)
  np.testing.assert_allclose(
      m_auc, skm.roc_auc_score(targets, scores, average="macro"), rtol=1e-12)
  # The authors' d_prime(mAUC): scipy's norm().ppf of the MEAN AUC.
  np.testing.assert_allclose(metrics.d_prime(m_auc),
                             scipy.stats.norm().ppf(m_auc) * np.sqrt(2.0),
                             rtol=1e-12)
  out = metrics.multilabel_metrics(targets, scores)
  assert out["mAP"] == m_ap and out["mAUC"] == m_auc
  assert out["d_prime"] == metrics.d_prime(m_auc)
  assert out["num_classes_ap"] == out["num_classes_auc"] == 7


def test_single_example_per_class_edge_cases():
  # All scores tied: AP = prevalence, AUC = 0.5.
  targets = np.array([[1], [0], [0], [1]])
  scores = np.zeros((4, 1))
  np.testing.assert_allclose(metrics.average_precision_per_class(
      targets, scores), [0.5])
  np.testing.assert_allclose(metrics.auc_per_class(targets, scores), [0.5])
  # Perfect ranking.
  scores = np.array([[0.9], [0.1], [0.2], [0.8]])
  np.testing.assert_allclose(metrics.mean_average_precision(targets, scores), 1)
  np.testing.assert_allclose(metrics.mean_auc(targets, scores), 1)


def test_undefined_classes_are_left_out_and_named(caplog):
  targets, scores = _data(5)
  targets[:, 2] = 0  # no positives: no AP, no AUC
  targets[:, 4] = 1  # no negatives: AP 1, no AUC
  ap = metrics.average_precision_per_class(targets, scores)
  auc = metrics.auc_per_class(targets, scores)
  assert np.isnan(ap[2]) and ap[4] == 1
  assert np.isnan(auc[2]) and np.isnan(auc[4])
  keep_ap = [k for k in range(7) if k != 2]
  keep_auc = [k for k in range(7) if k not in (2, 4)]
  with caplog.at_level("WARNING"):
    m_ap = metrics.mean_average_precision(targets, scores)
    m_auc = metrics.mean_auc(targets, scores)
  np.testing.assert_allclose(m_ap, np.mean([
      skm.average_precision_score(targets[:, k], scores[:, k])
      for k in keep_ap]), rtol=1e-12)
  np.testing.assert_allclose(m_auc, skm.roc_auc_score(
      targets[:, keep_auc], scores[:, keep_auc], average="macro"), rtol=1e-12)
  text = caplog.text
  assert "mAP: 1 of 7 classes left out (no positive example): [2]" in text
  assert "mAUC: 2 of 7 classes left out" in text and "[2, 4]" in text
  out = metrics.multilabel_metrics(targets, scores)
  assert out["num_classes_ap"] == 6 and out["num_classes_auc"] == 5


def test_no_class_left_is_an_error():
  targets = np.zeros((5, 3), int)
  with pytest.raises(ValueError,
                     match="mAP is undefined for every one of the 3"):
    metrics.mean_average_precision(targets, np.ones((5, 3)))
  with pytest.raises(ValueError, match="mAUC is undefined"):
    metrics.mean_auc(np.ones((5, 3), int), np.ones((5, 3)))


@pytest.mark.parametrize("targets,scores,match", [
    (np.zeros((4, 3)), np.zeros((4, 2)), r"same \(N, C\) shape"),
    (np.zeros(4), np.zeros(4), r"same \(N, C\) shape"),
    (np.zeros((0, 3)), np.zeros((0, 3)), "at least one example"),
    (np.full((4, 2), 0.5), np.zeros((4, 2)), "binary"),
    (np.zeros((4, 2)), np.full((4, 2), np.nan), "NaN"),
])
def test_bad_multilabel_input(targets, scores, match):
  with pytest.raises(ValueError, match=match):
    metrics.mean_average_precision(targets, scores)


def test_d_prime_values_and_range():
  assert metrics.d_prime(0.5) == 0
  assert metrics.d_prime(1.0) == np.inf
  np.testing.assert_allclose(metrics.d_prime(np.array([0.6, 0.954])),
                             np.sqrt(2) * scipy.stats.norm.ppf([0.6, 0.954]))
  # Table A.2: mAUC 0.954 gives d' 2.378 (up to the rounding of mAUC).
  assert abs(metrics.d_prime(0.954) - 2.378) < 0.01
  for bad in (1.2, -0.1, np.nan):
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
      metrics.d_prime(bad)


def test_accuracy():
  logits = np.array([[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0, 0, 1.0],
                     [2.0, 1.0, 0.0]])
  labels = np.array([1, 0, 2, 1])
  assert metrics.accuracy(labels, logits) == 0.75  # row 2 tie -> class 0
  assert metrics.accuracy(labels, logits) == skm.accuracy_score(
      labels, logits.argmax(1))
  with pytest.raises(ValueError, match=r"outside the 3 classes"):
    metrics.accuracy(np.array([0, 1, 3, 0]), logits)
  with pytest.raises(ValueError, match=r"labels \(N,\) and logits \(N, C\)"):
    metrics.accuracy(labels[:3], logits)
  with pytest.raises(ValueError, match="integers"):
    metrics.accuracy(labels.astype(float), logits)


def test_confidence_interval_95_is_student_t():
  runs = [0.299, 0.301, 0.297, 0.3]
  mean, half = metrics.confidence_interval_95(runs)
  lo, hi = scipy.stats.t.interval(0.95, len(runs) - 1, loc=np.mean(runs),
                                  scale=scipy.stats.sem(runs))
  np.testing.assert_allclose(mean, np.mean(runs), rtol=1e-12)
  np.testing.assert_allclose(half, (hi - lo) / 2, rtol=1e-12)
  np.testing.assert_allclose(
      half, scipy.stats.t.ppf(0.975, 3) * np.std(runs, ddof=1) / 2, rtol=1e-12)
  mean, half = metrics.confidence_interval_95([0.3])
  assert mean == 0.3 and np.isnan(half)
  assert metrics.confidence_interval_95([1.0, 1.0]) == (1.0, 0.0)
  with pytest.raises(ValueError, match="at least one value"):
    metrics.confidence_interval_95([])
  with pytest.raises(ValueError, match="NaN"):
    metrics.confidence_interval_95([0.1, np.nan])
