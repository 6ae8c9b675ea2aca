"""Optimisers and schedules of the sonification paper's recipes
(docs/methods.md, B2).

Adam with weight decay, a linear warm-up for `warmup_epochs` epochs, then
cosine decay to zero without restarts (optax schedules). The paper's text
decays weights decoupled from the gradient (AdamW, 1e-3); the authors' code
used torch's Adam, whose weight_decay is a coupled L2 term added to the
gradient before the moments: `weight_decay_mode` picks either.
"""
import optax

from recon_jax.train import classification

WEIGHT_DECAY_MODES = ("decoupled", "coupled")


def warmup_cosine(learning_rate: float, warmup_steps: int,
                  total_steps: int) -> optax.Schedule:
  """Linear 0 -> learning_rate over warmup_steps, cosine to 0 at the end."""
  if not learning_rate > 0:
    raise ValueError(f"learning_rate={learning_rate}: must be > 0")
  if total_steps < 1:
    raise ValueError(f"total_steps={total_steps}: must be >= 1")
  if not 0 <= warmup_steps <= total_steps:
    raise ValueError(f"warmup_steps={warmup_steps} must be in [0, "
                     f"total_steps={total_steps}]")
  if warmup_steps == total_steps:
    return optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps,
      decay_steps=total_steps, end_value=0.0)


def adam_warmup_cosine(learning_rate: float, weight_decay: float,
                       warmup_steps: int, total_steps: int,
                       weight_decay_mode: str = "decoupled"
                       ) -> optax.GradientTransformation:
  """Adam on the warm-up + cosine schedule, with weight decay on kernels.

  Args:
    learning_rate: peak learning rate (the paper: Adam's default, 1e-3).
    weight_decay: 1e-3 in the paper's text (0 disables it).
    warmup_steps, total_steps: optimiser steps.
    weight_decay_mode: 'decoupled' (AdamW, the text) or 'coupled' (L2 added
      to the gradient before Adam, as torch.optim.Adam(weight_decay=...) in
      the authors' code).
  """
  if weight_decay < 0:
    raise ValueError(f"weight_decay={weight_decay}: must be >= 0")
  if weight_decay_mode not in WEIGHT_DECAY_MODES:
    raise ValueError(f"weight_decay_mode={weight_decay_mode!r}: want one of "
                     f"{WEIGHT_DECAY_MODES}")
  schedule = warmup_cosine(learning_rate, warmup_steps, total_steps)
  mask = classification.weight_decay_mask
  if weight_decay_mode == "decoupled":
    return optax.adamw(schedule, weight_decay=weight_decay, mask=mask)
  return optax.chain(optax.add_decayed_weights(weight_decay, mask=mask),
                     optax.scale_by_adam(),
                     optax.scale_by_learning_rate(schedule))
