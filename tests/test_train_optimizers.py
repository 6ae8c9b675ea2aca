"""The paper's optimiser: Adam, warm-up then cosine, decoupled or coupled decay."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from recon_jax.train import optimizers


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_zero():
  schedule = optimizers.warmup_cosine(1e-3, warmup_steps=10, total_steps=110)
  np.testing.assert_allclose([schedule(s) for s in (0, 5, 10)],
                             [0.0, 5e-4, 1e-3], rtol=1e-6)
  # Half-way through the decay the cosine is at half the peak, then 0.
  np.testing.assert_allclose(schedule(60), 5e-4, rtol=1e-5)
  np.testing.assert_allclose(schedule(110), 0.0, atol=1e-12)
  steps = np.arange(10, 111)
  values = np.array([schedule(s) for s in steps])
  assert np.all(np.diff(values) <= 1e-12)  # no restarts


def _one_step(mode, decay):
  params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}}
  grads = jax.tree.map(jnp.zeros_like, params)
  opt = optimizers.adam_warmup_cosine(1e-1, decay, 0, 100, mode)
  updates, _ = opt.update(grads, opt.init(params), params)
  return updates


def test_decoupled_decay_shrinks_kernels_by_lr_times_decay():
  updates = _one_step("decoupled", 0.5)
  np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5)
  np.testing.assert_allclose(updates["dense"]["bias"], 0.0)


def test_coupled_decay_goes_through_adams_normalisation():
  # With zero loss gradient, the L2 term g = decay * w alone is
  # Adam-normalised: the first step is -lr * g / (|g| + eps), i.e. ~-lr
  # however small the decay (decoupled decay would move by lr * decay).
  updates = _one_step("coupled", 1e-5)
  g, eps = 1e-5, 1e-8
  np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * g / (g + eps),
                             rtol=1e-5)
  np.testing.assert_allclose(updates["dense"]["bias"], 0.0)


def test_matches_optax_adamw_reference():
  params = {"w": {"kernel": jnp.arange(4.0).reshape(2, 2)}}
  grads = {"w": {"kernel": jnp.array([[0.1, -0.2], [0.3, 0.0]])}}
  ours = optimizers.adam_warmup_cosine(1e-2, 1e-3, 0, 10)
  schedule = optax.cosine_decay_schedule(1e-2, 10)
  ref = optax.adamw(schedule, weight_decay=1e-3)
  u1, _ = ours.update(grads, ours.init(params), params)
  u2, _ = ref.update(grads, ref.init(params), params)
  np.testing.assert_allclose(u1["w"]["kernel"], u2["w"]["kernel"], rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(weight_decay=-1e-3), "weight_decay"),
    (dict(warmup_steps=200), "warmup_steps"),
    (dict(total_steps=0), "total_steps"),
    (dict(weight_decay_mode="l1"), "weight_decay_mode"),
])
def test_bad_settings_are_refused(kwargs, message):
  args = dict(learning_rate=1e-3, weight_decay=1e-3, warmup_steps=10,
              total_steps=100, weight_decay_mode="decoupled")
  args.update(kwargs)
  with pytest.raises(ValueError, match=message):
    optimizers.adam_warmup_cosine(**args)
