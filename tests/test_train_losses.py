"""NT-Xent (Eq. 1) on one and 8 devices, and the supervised losses."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from recon_jax import train

TAU = 0.1
N, D = 16, 8  # 16 pairs: 2 per fake device
RNG = np.random.default_rng(0)
Z1 = RNG.normal(size=(N, D)).astype(np.float32)
Z2 = (Z1 + 0.5 * RNG.normal(size=(N, D))).astype(np.float32)


def eq1_numpy(z1, z2, tau):
  """Eq. 1 transcribed literally in float64, mean over the 2N anchors."""
  z = np.concatenate([z1, z2]).astype(np.float64)
  n2 = len(z)
  sim = np.array([[z[i] @ z[k] / np.linalg.norm(z[i]) / np.linalg.norm(z[k])
                   for k in range(n2)] for i in range(n2)])
  losses = []
  for i in range(n2):
    j = (i + n2 // 2) % n2
    den = sum(np.exp(sim[i, k] / tau) for k in range(n2) if k != i)
    losses.append(-np.log(np.exp(sim[i, j] / tau) / den))
  return np.mean(losses)


def test_equals_numpy_eq1():
  for tau in (0.1, 0.5):
    np.testing.assert_allclose(train.nt_xent_loss(Z1, Z2, tau),
                               eq1_numpy(Z1, Z2, tau), rtol=1e-5)
  np.testing.assert_allclose(train.nt_xent_loss(Z1[:3], Z2[:3], 1.0),
                             eq1_numpy(Z1[:3], Z2[:3], 1.0), rtol=1e-5)


def test_one_pair_has_no_negatives_and_zero_loss():
  np.testing.assert_allclose(train.nt_xent_loss(Z1[:1], Z2[:1], TAU), 0,
                             atol=1e-6)


def test_scale_invariant_cosine_similarity():
  np.testing.assert_allclose(train.nt_xent_loss(3 * Z1, 0.2 * Z2, TAU),
                             train.nt_xent_loss(Z1, Z2, TAU), rtol=1e-5)


def test_equals_the_authors_pytorch_loss():
  """Their NTXentLoss (Fonseca's) on L2-normalised projections."""
  torch = pytest.importorskip("torch")
  torch.set_flush_denormal(True)

  def ntxent(anchor, pos, temperature):
    batch_size = anchor.size(0)
    embedding = torch.cat([anchor, pos])
    logits = torch.div(torch.matmul(embedding, embedding.t()), temperature)
    mask = torch.eye(batch_size, dtype=torch.float32).repeat(2, 2)
    logits_mask = torch.ones_like(mask) - torch.eye(batch_size * 2)
    mask = mask * logits_mask
    den = torch.log((torch.exp(logits) * logits_mask).sum(1, keepdim=True) +
                    1e-10)
    log_prob = torch.log(torch.exp(logits) + 1e-10) - den
    loss = -(mask * log_prob).sum(1) / mask.sum(1)
    return loss.view(2, batch_size).mean()

  def unit(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)

  want = ntxent(torch.from_numpy(unit(Z1)), torch.from_numpy(unit(Z2)), TAU)
  np.testing.assert_allclose(train.nt_xent_loss(Z1, Z2, TAU), want.item(),
                             rtol=1e-5)


@pytest.fixture(scope="module")
def mesh():
  return train.make_mesh()


def _sharded(mesh, **kwargs):
  loss = functools.partial(train.nt_xent_loss, tau=TAU,
                           axis_name=train.DATA_AXIS, **kwargs)
  return jax.shard_map(loss, mesh=mesh,
                       in_specs=(P(train.DATA_AXIS), P(train.DATA_AXIS)),
                       out_specs=P())


def test_eight_devices_equal_one_device_value_and_gradients(mesh):
  assert mesh.devices.size == 8
  one = jax.jit(jax.value_and_grad(
      lambda a, b: train.nt_xent_loss(a, b, TAU), argnums=(0, 1)))
  eight = jax.jit(jax.value_and_grad(_sharded(mesh), argnums=(0, 1)))
  (v1, g1), (v8, g8) = one(Z1, Z2), eight(Z1, Z2)
  np.testing.assert_allclose(v8, v1, rtol=1e-6)
  np.testing.assert_allclose(v8, eq1_numpy(Z1, Z2, TAU), rtol=1e-5)
  for a, b in zip(g8, g1):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_gradients_taken_inside_shard_map_are_the_global_ones(mesh):
  """A train step that differentiates per device gets the rows of the global
  gradient that belong to its shard, and the same loss on every device."""
  def local(a, b):
    loss, grads = jax.value_and_grad(
        lambda a, b: train.nt_xent_loss(a, b, TAU, axis_name=train.DATA_AXIS),
        argnums=(0, 1))(a, b)
    return loss[None], grads

  spec = P(train.DATA_AXIS)
  f = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(spec, spec),
                            out_specs=(spec, (spec, spec))))
  losses, grads = f(Z1, Z2)
  v1, g1 = jax.value_and_grad(
      lambda a, b: train.nt_xent_loss(a, b, TAU), argnums=(0, 1))(Z1, Z2)
  np.testing.assert_allclose(losses, np.full(8, v1), rtol=1e-6)
  for a, b in zip(grads, g1):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_per_device_negatives_are_the_mean_of_shard_losses(mesh):
  n = N // 8
  shard_mean = lambda a, b: jnp.mean(jnp.stack([  # noqa: E731
      train.nt_xent_loss(a[d * n:(d + 1) * n], b[d * n:(d + 1) * n], TAU)
      for d in range(8)]))
  v_ref, g_ref = jax.value_and_grad(shard_mean, argnums=(0, 1))(Z1, Z2)
  v, g = jax.jit(jax.value_and_grad(_sharded(mesh, negatives="per_device"),
                                    argnums=(0, 1)))(Z1, Z2)
  np.testing.assert_allclose(v, v_ref, rtol=1e-6)
  np.testing.assert_allclose(
      v, np.mean([eq1_numpy(Z1[d * n:(d + 1) * n], Z2[d * n:(d + 1) * n], TAU)
                  for d in range(8)]), rtol=1e-5)
  assert not np.isclose(v, train.nt_xent_loss(Z1, Z2, TAU))
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tau", [0.0, -0.1])
def test_non_positive_temperature_is_refused(tau):
  with pytest.raises(ValueError, match="tau must be > 0"):
    train.nt_xent_loss(Z1, Z2, tau)


@pytest.mark.parametrize("a,b", [(Z1, Z2[:-1]), (Z1, Z2[:, :-1]),
                                 (Z1[0], Z2[0]), (Z1[:0], Z2[:0])])
def test_mismatched_or_bad_shapes_are_refused(a, b):
  with pytest.raises(ValueError, match="nt_xent_loss"):
    train.nt_xent_loss(a, b, TAU)


def test_unknown_negatives_and_nan_are_refused():
  with pytest.raises(ValueError, match="negatives must be one of"):
    train.nt_xent_loss(Z1, Z2, TAU, negatives="local")
  bad = Z1.copy()
  bad[2, 3] = np.nan
  with pytest.raises(ValueError, match="z1 holds 1 NaN"):
    train.nt_xent_loss(bad, Z2, TAU)


# ---------------------------------------------------------------- supervised

LOGITS = RNG.normal(size=(6, 4)).astype(np.float32)


def _log_softmax(x):
  x = x.astype(np.float64)
  return x - np.log(np.exp(x).sum(1, keepdims=True))


def test_softmax_cross_entropy_integer_and_soft_labels():
  labels = np.array([0, 3, 1, 1, 2, 0])
  want = -np.mean(_log_softmax(LOGITS)[np.arange(6), labels])
  np.testing.assert_allclose(train.softmax_cross_entropy(LOGITS, labels),
                             want, rtol=1e-5)
  soft = np.eye(4)[labels] * 0.7 + np.eye(4)[labels[::-1]] * 0.3
  want = -np.mean((soft * _log_softmax(LOGITS)).sum(1))
  np.testing.assert_allclose(train.softmax_cross_entropy(LOGITS, soft), want,
                             rtol=1e-5)


def test_sigmoid_binary_cross_entropy():
  targets = (RNG.uniform(size=LOGITS.shape) < 0.3).astype(np.float32)
  x = LOGITS.astype(np.float64)
  p = 1 / (1 + np.exp(-x))
  want = -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p))
  np.testing.assert_allclose(
      train.sigmoid_binary_cross_entropy(LOGITS, targets), want, rtol=1e-5)


@pytest.mark.parametrize("labels,match", [
    (np.array([0, 1, 2, 3, 4, 0]), r"span \[0, 4\], outside the 4 classes"),
    (np.array([0, 1, 2]), r"must be \(N,\) = \(6,\)"),
    (np.ones((6, 3)), r"must be \(N, C\) = \(6, 4\)"),
    (np.full((6, 4), 1.5), r"in \[0, 1\]"),
])
def test_bad_labels_are_refused(labels, match):
  with pytest.raises(ValueError, match=match):
    train.softmax_cross_entropy(LOGITS, labels)


def test_bad_bce_targets_are_refused():
  with pytest.raises(ValueError, match="same \\(N, C\\) shape"):
    train.sigmoid_binary_cross_entropy(LOGITS, np.zeros((6, 3)))
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    train.sigmoid_binary_cross_entropy(LOGITS, np.full((6, 4), -1.0))
  with pytest.raises(ValueError, match=r"\(N, C\)"):
    train.softmax_cross_entropy(LOGITS[0], np.array([1]))
