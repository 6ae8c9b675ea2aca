"""Heads on the 512-d CNN12 embedding h: classifier and SimCLR projection.

Names follow the authors' PyTorch modules: the classifier's Dense is 'fc'
(their BaselineModel/FinetunedModel), the projection head's 'fc2', 'fc3'
(their contrastive Model).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

PROJECTION_VARIANTS = ("code", "paper")


class ClassifierHead(nn.Module):
  """A Dense classifier on the embedding: logits (N, num_classes).

  relu_input: False (default) puts the Dense directly on h, as the paper's
    text says ("a fully connected layer on top of f_enc"); True applies a
    ReLU to h first, as the authors' code does (F.relu(features) -> fc).
  """
  num_classes: int
  relu_input: bool = False

  def __post_init__(self):
    if not isinstance(self.num_classes, int) or self.num_classes < 1:
      raise ValueError(f"ClassifierHead num_classes must be an integer >= 1, "
                       f"got {self.num_classes!r}")
    super().__post_init__()

  @nn.compact
  def __call__(self, h):
    """h: (N, D) embeddings -> (N, num_classes) logits."""
    _check_embedding(h, "ClassifierHead")
    if self.relu_input:
      h = nn.relu(h)
    return nn.Dense(self.num_classes, name="fc")(h)


class ProjectionHead(nn.Module):
  """SimCLR projection head z = f_proj(h).

  variant:
    'code' (default; docs/methods.md, C): as the authors' code,
      ReLU(h) -> Dense(hidden) -> ReLU -> Dense(features, no bias), then
      L2-normalised rows.
    'paper': the paper's text, Dense(hidden) -> ReLU -> Dense(features), not
      normalised (NT-Xent's cosine similarity normalises anyway).
  """
  features: int = 512
  hidden: int = 512
  variant: str = "code"

  def __post_init__(self):
    if self.variant not in PROJECTION_VARIANTS:
      raise ValueError(f"ProjectionHead variant must be one of "
                       f"{PROJECTION_VARIANTS}, got {self.variant!r}")
    for name in ("features", "hidden"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"ProjectionHead {name} must be an integer >= 1, got "
                         f"{value!r}")
    super().__post_init__()

  @nn.compact
  def __call__(self, h):
    """h: (N, D) embeddings -> (N, features) projections."""
    _check_embedding(h, "ProjectionHead")
    if self.variant == "code":
      h = nn.relu(h)
    h = nn.relu(nn.Dense(self.hidden, name="fc2")(h))
    z = nn.Dense(self.features, use_bias=self.variant == "paper",
                 name="fc3")(h)
    if self.variant == "code":
      z = l2_normalize(z)
    return z


def l2_normalize(z, axis: int = -1, eps: float = 1e-12):
  """z / max(||z||, eps) along `axis` (torch.nn.functional.normalize)."""
  norm_sq = jnp.sum(jnp.square(z), axis=axis, keepdims=True)
  return z * jax.lax.rsqrt(jnp.maximum(norm_sq, eps * eps))


def _check_embedding(h, name):
  if h.ndim != 2:
    raise ValueError(f"{name} expects embeddings (N, D), got shape {h.shape}")
