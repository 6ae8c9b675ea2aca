"""Classification metrics (NumPy, on evaluation outputs): mAP, mAUC, d'.

Multi-label inputs are (N, C) binary targets and (N, C) scores (any
monotone score: logits or probabilities). Definitions, as scikit-learn and
the authors' evaluation code (calculate_stats, d_prime):
- AP of a class: sum_n (R_n - R_{n-1}) P_n over the distinct score
  thresholds, highest first (sklearn.metrics.average_precision_score; tied
  scores form one threshold).
- AUC of a class: area under the ROC curve (sklearn.metrics.roc_auc_score),
  i.e. P(score of a positive > score of a negative), ties counting one half.
- mAP, mAUC: unweighted (macro) means over classes.
- d' = sqrt(2) * Phi^-1(mAUC): of the mean AUC, as the authors'
  `d_prime(mAUC)`, not the mean of per-class d'.

A class whose AP or AUC is undefined on the given data is left out of the
mean, and a warning names it: AP needs at least one positive, AUC at least
one positive and one negative. With no class left the functions raise.
"""
from absl import logging
import numpy as np
import scipy.stats


def _check_multilabel(targets, scores):
  targets, scores = np.asarray(targets), np.asarray(scores)
  if targets.ndim != 2 or targets.shape != scores.shape:
    raise ValueError(f"multi-label metrics expect targets and scores of the "
                     f"same (N, C) shape, got {targets.shape} and "
                     f"{scores.shape}")
  if targets.shape[0] == 0 or targets.shape[1] == 0:
    raise ValueError(f"multi-label metrics need at least one example and one "
                     f"class, got shape {targets.shape}")
  if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(
      scores.dtype, np.complexfloating):
    raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
  if not np.all(np.isfinite(scores)):
    bad = np.size(scores) - np.isfinite(scores).sum()
    raise ValueError(f"scores hold {bad} NaN/Inf value(s)")
  if not np.all((targets == 0) | (targets == 1)):
    bad = np.unique(targets[(targets != 0) & (targets != 1)])[:5]
    raise ValueError(f"targets must be binary (0/1), got values such as "
                     f"{bad.tolist()}")
  return targets.astype(bool), scores.astype(np.float64)


def _average_precision(y, s) -> np.ndarray:
  """(..., C) AP along axis -2 of bool targets y and scores s (..., N, C);
  NaN for a class with no positive."""
  order = np.argsort(-s, axis=-2, kind="stable")
  s = np.take_along_axis(s, order, axis=-2)
  y = np.take_along_axis(y, order, axis=-2)
  # Each tie group's last row is where sklearn places a threshold.
  ends = np.ones(s.shape, bool)
  ends[..., :-1, :] = s[..., :-1, :] != s[..., 1:, :]
  tps = np.cumsum(y, axis=-2, dtype=np.float64)
  ranks = np.arange(1, y.shape[-2] + 1, dtype=np.float64)[:, None]
  # True positives at the previous threshold (tps grows, so a running max
  # of the thresholds' values carries it forward).
  at_ends = np.where(ends, tps, 0.0)
  prev = np.zeros_like(tps)
  prev[..., 1:, :] = np.maximum.accumulate(at_ends, axis=-2)[..., :-1, :]
  gain = np.where(ends, (tps - prev) * tps / ranks, 0.0)
  positives = tps[..., -1, :]
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(positives > 0, gain.sum(-2) / positives, np.nan)


def average_precision_per_class(targets, scores) -> np.ndarray:
  """(C,) AP of each class; NaN for a class with no positive."""
  targets, scores = _check_multilabel(targets, scores)
  return _average_precision(targets, scores)


def resampled_mean_average_precision(targets, scores,
                                     clip_indices) -> np.ndarray:
  """(B,) mAP of each resample of the clips (a bootstrap's statistic).

  Args:
    targets: (N, C) binary targets; scores: (N, C).
    clip_indices: int (B, N) rows of each resample (with repeats).
  Classes with no positive in a resample are left out of its mean (NaN
  where no class has one).
  """
  targets, scores = _check_multilabel(targets, scores)
  idx = np.asarray(clip_indices)
  ap = _average_precision(targets[idx], scores[idx])
  with np.errstate(invalid="ignore"):
    defined = ~np.isnan(ap)
    return np.where(defined.any(-1), np.nansum(ap, -1) / np.maximum(
        defined.sum(-1), 1), np.nan)


def auc_per_class(targets, scores) -> np.ndarray:
  """(C,) ROC AUC of each class; NaN without both positives and negatives."""
  targets, scores = _check_multilabel(targets, scores)
  ranks = scipy.stats.rankdata(scores, method="average", axis=0)
  pos = targets.sum(0).astype(np.float64)
  neg = targets.shape[0] - pos
  rank_sum = np.where(targets, ranks, 0.0).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
  return np.where((pos > 0) & (neg > 0), auc, np.nan)


def _macro_mean(per_class, what, why):
  defined = ~np.isnan(per_class)
  if not defined.any():
    raise ValueError(f"{what} is undefined for every one of the "
                     f"{per_class.size} classes ({why})")
  if not defined.all():
    left_out = np.flatnonzero(~defined)
    logging.warning("%s: %d of %d classes left out (%s): %s", what,
                    left_out.size, per_class.size, why, left_out.tolist())
  return float(per_class[defined].mean())


def mean_average_precision(targets, scores) -> float:
  """Macro mean AP over the classes with at least one positive.

  Args:
    targets: (N, C) binary multi-label targets.
    scores: (N, C) real scores (logits or probabilities).
  """
  return _macro_mean(average_precision_per_class(targets, scores), "mAP",
                     "no positive example")


def mean_auc(targets, scores) -> float:
  """Macro mean ROC AUC over the classes with positives and negatives."""
  return _macro_mean(auc_per_class(targets, scores), "mAUC",
                     "no positive or no negative example")


def d_prime(auc):
  """d' = sqrt(2) * Phi^-1(auc) (a float for a scalar, else an array).

  Pass the mean AUC to get the paper's d'. auc 0.5 -> 0, 1 -> inf.
  """
  a = np.asarray(auc, np.float64)
  if np.any(np.isnan(a)) or np.any((a < 0) | (a > 1)):
    raise ValueError(f"d_prime needs AUC values in [0, 1], got {auc!r}")
  d = np.sqrt(2.0) * scipy.stats.norm.ppf(a)
  return float(d) if d.ndim == 0 else d


def multilabel_metrics(targets, scores) -> dict:
  """mAP, mAUC, d' and which classes each mean used.

  Returns:
    {'mAP', 'mAUC', 'd_prime': floats, 'ap': (C,), 'auc': (C,) per class
     (NaN where undefined), 'num_classes_ap', 'num_classes_auc': ints}.
  """
  ap = average_precision_per_class(targets, scores)
  auc = auc_per_class(targets, scores)
  m_auc = _macro_mean(auc, "mAUC", "no positive or no negative example")
  return {
      "mAP": _macro_mean(ap, "mAP", "no positive example"),
      "mAUC": m_auc,
      "d_prime": d_prime(m_auc),
      "ap": ap,
      "auc": auc,
      "num_classes_ap": int(np.sum(~np.isnan(ap))),
      "num_classes_auc": int(np.sum(~np.isnan(auc))),
  }


def accuracy(labels, logits) -> float:
  """Fraction of rows whose arg-max (first on ties) is the label.

  Args:
    labels: int (N,) class indices in [0, C).
    logits: (N, C) scores.
  """
  labels, logits = np.asarray(labels), np.asarray(logits)
  if logits.ndim != 2 or labels.shape != logits.shape[:1]:
    raise ValueError(f"accuracy expects labels (N,) and logits (N, C), got "
                     f"{labels.shape} and {logits.shape}")
  if logits.shape[0] == 0:
    raise ValueError("accuracy of an empty batch is undefined")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"accuracy labels must be integers, got dtype "
                     f"{labels.dtype}")
  c = logits.shape[1]
  if labels.min() < 0 or labels.max() >= c:
    raise ValueError(f"accuracy labels span [{labels.min()}, {labels.max()}], "
                     f"outside the {c} classes [0, {c})")
  if np.issubdtype(logits.dtype, np.floating) and not np.all(
      np.isfinite(logits)):
    raise ValueError("accuracy logits hold NaN/Inf values")
  return float(np.mean(np.argmax(logits, axis=1) == labels))


def confidence_interval_95(values) -> tuple[float, float]:
  """Mean and half-width of the 95% Student-t interval over runs.

  half_width = t.ppf(0.975, n - 1) * sd / sqrt(n), sd with n - 1 degrees of
  freedom (the authors' mean_confidence_interval). One run gives no interval:
  half-width NaN.
  """
  v = np.asarray(values, np.float64).ravel()
  if v.size == 0:
    raise ValueError("confidence_interval_95 needs at least one value")
  if not np.all(np.isfinite(v)):
    raise ValueError(f"confidence_interval_95 values hold NaN/Inf: {values!r}")
  mean = float(v.mean())
  if v.size == 1:
    return mean, float("nan")
  half = scipy.stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
  return mean, float(half)
