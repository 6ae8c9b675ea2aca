"""Class-balanced resampling per epoch (thesis 3.3, SPEC A1)."""
import numpy as np

from recon_jax.data.errors import CorpusError

TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 200
BATCH_SIZE = 128


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
    CorpusError naming a class with no examples; ValueError for labels
    outside [0, num_classes) or a missing seed.
  """
  if rng is None:
    raise ValueError("balanced_indices needs a seed or a numpy Generator; "
                     "None would make the epoch unreproducible")
  rng = np.random.default_rng(rng)
  labels = np.asarray(labels)
  if num_classes is None:
    num_classes = int(labels.max()) + 1
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
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
  """Yields one epoch's batches of indices: int64 (batch_size,) each.

  Deterministic in (seed, epoch). The last batch is shorter unless
  `drop_remainder`.
  """
  indices = balanced_indices(labels, per_class,
                             np.random.default_rng([seed, epoch]), num_classes)
  stop = len(indices) - len(indices) % batch_size if drop_remainder else len(
      indices)
  for i in range(0, stop, batch_size):
    yield indices[i:i + batch_size]
