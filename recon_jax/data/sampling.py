"""Class-balanced resampling per epoch (thesis 3.3; docs/methods.md, A1)."""
import numbers

import numpy as np

from recon_jax.data.errors import CorpusError

TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 200
BATCH_SIZE = 128


def check_count(value, name: str, minimum: int = 0) -> int:
  """`value` as an int, or ValueError if it is not an integer >= minimum."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(value,
                                                           numbers.Integral):
    raise ValueError(f"{name} must be an integer, got {value!r}")
  if value < minimum:
    raise ValueError(f"{name} must be >= {minimum}, got {value}")
  return int(value)


def check_seed(seed, name: str = "seed") -> int:
  """A seed as an int >= 0 (numpy's generators refuse negative seeds)."""
  if seed is None:
    raise ValueError(f"{name} is None; a seed is needed to reproduce the "
                     "result")
  return check_count(seed, name, 0)


def _check_labels(labels):
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"labels must be a 1-D array of class ids, got shape "
                     f"{labels.shape}")
  if not labels.size:
    raise ValueError("labels are empty: no examples to sample from")
  if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integer class ids, got dtype "
                     f"{labels.dtype}")
  return labels


def balanced_indices(labels, per_class, rng, num_classes=None):
  """One epoch's sample: `per_class` phone indices per class, shuffled.

  Per class (the thesis's two steps): while the number still needed is at
  least the class size, the whole class is added; the rest are drawn without
  replacement. So a scarce class is always fully present in every epoch.

  Args:
    labels: int (N,) class ids.
    per_class: phones per class (500 train, 200 test).
    rng: a numpy Generator, or an int seed for one (not None: the epochs
      must be reproducible).
    num_classes: classes expected (default max(labels) + 1); each must occur.

  Returns:
    int64 (num_classes * per_class,) indices into `labels`, shuffled.

  Raises:
    CorpusError naming a class with no examples; ValueError for labels that
    are not a non-empty 1-D integer array or lie outside [0, num_classes),
    a per_class < 1, or a missing or negative seed.
  """
  if rng is None:
    raise ValueError("balanced_indices needs a seed or a numpy Generator; "
                     "None would make the epoch unreproducible")
  if not isinstance(rng, np.random.Generator):
    if isinstance(rng, (list, tuple)):
      for s in rng:
        check_seed(s, "balanced_indices seed")
    else:
      check_seed(rng, "balanced_indices seed")
  rng = np.random.default_rng(rng)
  labels = _check_labels(labels)
  per_class = check_count(per_class, "per_class (examples per class)", 1)
  if num_classes is None:
    num_classes = int(labels.max()) + 1
  num_classes = check_count(num_classes, "num_classes", 1)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels span [{labels.min()}, {labels.max()}], outside "
                     f"the {num_classes} classes [0, {num_classes})")
  picked = []
  for c in range(num_classes):
    members = np.flatnonzero(labels == c)
    if not len(members):
      raise CorpusError(f"class {c} has no examples; cannot sample "
                        f"{per_class} of it")
    whole, rest = divmod(per_class, len(members))
    picked.append(np.tile(members, whole))
    picked.append(rng.choice(members, rest, replace=False))
  indices = np.concatenate(picked).astype(np.int64)
  rng.shuffle(indices)
  return indices


def epoch_batches(labels, per_class, seed, epoch, batch_size=BATCH_SIZE,
                  num_classes=None, drop_remainder=False):
  """One epoch's batches of indices: an iterator of int64 (batch_size,).

  Deterministic in (seed, epoch). The last batch is shorter unless
  `drop_remainder`. Everything is checked (and the epoch drawn) when this is
  called, not when the first batch is taken.

  Raises:
    ValueError for a batch_size < 1, a negative seed or epoch, bad labels
    (see balanced_indices), or an epoch smaller than one batch with
    drop_remainder (it would have no batches).
  """
  seed = check_seed(seed)
  epoch = check_count(epoch, "epoch", 0)
  batch_size = check_count(batch_size, "batch_size", 1)
  indices = balanced_indices(labels, per_class,
                             np.random.default_rng([seed, epoch]), num_classes)
  if drop_remainder and len(indices) < batch_size:
    raise ValueError(
        f"an epoch of {len(indices)} examples ({len(indices) // per_class} "
        f"classes x {per_class} per class) is smaller than one batch of "
        f"{batch_size}: with drop_remainder it would have no batches; raise "
        "per_class or lower batch_size")
  stop = len(indices) - len(indices) % batch_size if drop_remainder else len(
      indices)
  return iter([indices[i:i + batch_size] for i in range(0, stop, batch_size)])
