"""Losses: SimCLR's NT-Xent (paper Eq. 1) and the supervised losses.

NT-Xent over a batch of N positive pairs (z1[i], z2[i]): the 2N rows
e = [z1; z2] are anchors; anchor i's positive is its pair, its negatives the
other 2N - 2 rows, and

  l_i = -log(exp(sim(e_i, e_pos(i)) / tau)
             / sum_{k != i} exp(sim(e_i, e_k) / tau))

with sim the cosine similarity; the loss is the mean of l_i over the 2N
anchors.

Data parallel: inside `shard_map`/`pmap` over `axis_name`, each device holds
n = N / D pairs. With negatives='global' (the paper's text; docs/methods.md, B2)
every local anchor is scored against the all-gathered global batch, so the loss
and its gradients equal those of one device holding the whole batch.
negatives='per_device' (the authors' PyTorch/XLA code) scores each shard on
its own (2n - 2 negatives per anchor) and averages the per-shard losses.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from recon_jax.models.heads import l2_normalize
from recon_jax.ops import checks

NEGATIVES = ("global", "per_device")


def nt_xent_loss(z1, z2, tau, axis_name=None, negatives: str = "global"):
  """NT-Xent (Eq. 1) with cosine similarity, mean over all anchors.

  Args:
    z1, z2: (n, D) projections of the two views; row i of z1 and row i of z2
      are a positive pair. Under `axis_name`, the local shard (global batch
      N = n * number of devices, shards in axis-index order).
    tau: temperature > 0.
    axis_name: mapped axis name (inside shard_map/pmap), or None for one
      device holding the whole batch.
    negatives: 'global' (every anchor sees the 2N - 2 negatives of the global
      batch) or 'per_device' (only the local shard's 2n - 2; the authors'
      code). Without axis_name both are the same.

  Returns:
    Scalar loss: the mean over the 2N global anchors ('global') or the mean
    of the per-shard losses ('per_device'); the same value on every device.
  """
  if negatives not in NEGATIVES:
    raise ValueError(f"nt_xent_loss negatives must be one of {NEGATIVES}, got "
                     f"{negatives!r}")
  if np.ndim(z1) != 2 or np.shape(z1) != np.shape(z2):
    raise ValueError(f"nt_xent_loss expects two (N, D) batches of the same "
                     f"shape, got {np.shape(z1)} and {np.shape(z2)}")
  if np.shape(z1)[0] < 1:
    raise ValueError("nt_xent_loss needs at least one pair, got an empty "
                     "batch")
  if checks.is_concrete(tau) and not float(np.asarray(tau)) > 0:
    raise ValueError(f"nt_xent_loss temperature tau must be > 0, got {tau!r}")
  checks.check_finite(z1, "nt_xent_loss z1")
  checks.check_finite(z2, "nt_xent_loss z2")
  n = z1.shape[0]
  anchors = l2_normalize(jnp.concatenate([z1, z2], axis=0))  # (2n, D)
  local = jnp.arange(2 * n)
  if axis_name is None or negatives == "per_device":
    # Rows are [z1; z2]: anchor i's pair is i + n (mod 2n).
    loss = _mean_loss(anchors, anchors, local, (local + n) % (2 * n), tau)
    return loss if axis_name is None else jax.lax.pmean(loss, axis_name)
  index = jax.lax.axis_index(axis_name)
  g1 = jax.lax.all_gather(anchors[:n], axis_name, tiled=True)  # (N, D)
  g2 = jax.lax.all_gather(anchors[n:], axis_name, tiled=True)
  n_global = g1.shape[0]
  candidates = jnp.concatenate([g1, g2], axis=0)  # (2N, D): [z1; z2] global
  # Local z1 row i is global row index*n + i; its z2 pair is N further.
  rows = index * n + jnp.arange(n)
  self_cols = jnp.concatenate([rows, rows + n_global])
  pos_cols = jnp.concatenate([rows + n_global, rows])
  local_sum = 2 * n * _mean_loss(anchors, candidates, self_cols, pos_cols, tau)
  return jax.lax.psum(local_sum, axis_name) / (2 * n_global)


def _mean_loss(anchors, candidates, self_cols, pos_cols, tau):
  """Mean over anchors of -log softmax(sim / tau) at the positive, self out."""
  logits = anchors @ candidates.T / tau  # (A, K)
  cols = jnp.arange(candidates.shape[0])
  logits = jnp.where(cols[None, :] == self_cols[:, None], -jnp.inf, logits)
  log_prob = jax.nn.log_softmax(logits, axis=-1)
  pos = jnp.take_along_axis(log_prob, pos_cols[:, None], axis=-1)[:, 0]
  return -jnp.mean(pos)


def softmax_cross_entropy(logits, labels):
  """Mean softmax cross-entropy (multi-class, e.g. Speech Commands).

  Args:
    logits: (N, C).
    labels: int (N,) class indices in [0, C), or float (N, C) target
      distributions (e.g. after mixup).
  """
  if np.ndim(logits) != 2:
    raise ValueError(f"softmax_cross_entropy logits must be (N, C), got shape "
                     f"{np.shape(logits)}")
  n, c = np.shape(logits)
  dtype = labels.dtype if hasattr(labels, "dtype") else np.asarray(labels).dtype
  if np.issubdtype(dtype, np.integer):
    if np.shape(labels) != (n,):
      raise ValueError(f"softmax_cross_entropy integer labels must be (N,) = "
                       f"({n},), got shape {np.shape(labels)}")
    if checks.is_concrete(labels) and n:
      lab = np.asarray(labels)
      if lab.min() < 0 or lab.max() >= c:
        raise ValueError(f"softmax_cross_entropy labels span [{lab.min()}, "
                         f"{lab.max()}], outside the {c} classes [0, {c})")
    return jnp.mean(
        optax.softmax_cross_entropy_with_integer_labels(logits, labels))
  if np.shape(labels) != (n, c):
    raise ValueError(f"softmax_cross_entropy float targets must be (N, C) = "
                     f"({n}, {c}) like the logits, got shape "
                     f"{np.shape(labels)}")
  _check_unit_interval(labels, "softmax_cross_entropy targets")
  return jnp.mean(optax.softmax_cross_entropy(logits, labels))


def sigmoid_binary_cross_entropy(logits, targets):
  """Mean sigmoid BCE over all N x C entries (multi-label; torch's
  BCEWithLogitsLoss).

  Args:
    logits: (N, C).
    targets: (N, C) multi-hot labels in [0, 1] (soft after mixup).
  """
  if np.ndim(logits) != 2 or np.shape(targets) != np.shape(logits):
    raise ValueError(f"sigmoid_binary_cross_entropy expects logits and "
                     f"targets of the same (N, C) shape, got "
                     f"{np.shape(logits)} and {np.shape(targets)}")
  _check_unit_interval(targets, "sigmoid_binary_cross_entropy targets")
  targets = jnp.asarray(targets, jnp.result_type(logits))
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))


def _check_unit_interval(x, name):
  checks.check_finite(x, name)
  if checks.is_concrete(x) and np.size(x):
    arr = np.asarray(x)
    if arr.min() < 0 or arr.max() > 1:
      raise ValueError(f"{name} must lie in [0, 1], got values in "
                       f"[{arr.min()}, {arr.max()}]")
