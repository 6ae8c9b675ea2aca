"""Waveform augmentations (recon_jax.data.augment), each for its effect."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax.data import augment as aug

KEY = jax.random.key(0)


B, T = 1000, 64  # One batch shape for most tests: one compilation each.


def _x(b=B, t=T, seed=1):
  return jax.random.normal(jax.random.key(seed), (b, t)) * 0.3


def _fraction(applied, p=0.5, n=None):
  applied = np.asarray(applied)
  n = n or applied.size
  # Within 5 binomial standard deviations of p.
  assert abs(applied.mean() - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9


def test_random_gain():
  x = _x()
  y, prm = aug.random_gain(KEY, x, return_params=True)
  x, y = np.asarray(x), np.asarray(y)
  applied, g = np.asarray(prm["applied"]), np.asarray(prm["gain_db"])
  _fraction(applied)
  assert g.min() >= -18.0 and g.max() <= 6.0
  assert g.min() < -17.0 and g.max() > 5.0  # Spans the range.
  ratio_db = 20 * np.log10(np.abs(y[:, 0] / x[:, 0]))
  np.testing.assert_allclose(ratio_db[applied], g[applied], atol=1e-3)
  np.testing.assert_array_equal(y[~applied], x[~applied])
  y2 = aug.random_gain(KEY, x, gain_db=(-3.0, -3.0), p=1.0)
  np.testing.assert_allclose(np.asarray(y2), x * 10**(-3 / 20), rtol=1e-6)


def test_gaussian_noise():
  x = _x()
  y, prm = aug.add_gaussian_noise(KEY, x, return_params=True)
  applied, a = np.asarray(prm["applied"]), np.asarray(prm["amplitude"])
  _fraction(applied)
  assert a.min() >= 0.001 and a.max() <= 0.015 and np.ptp(a) > 0.012
  residual = np.asarray(y - x)
  # residual / a is standard normal (pooled over ~500 x 64 samples).
  z = residual[applied] / a[applied, None]
  assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
  assert not np.any(residual[~applied])


def test_background_mix_has_the_drawn_snr():
  x = _x()
  noise = np.zeros((3, 1000), np.float32)
  noise[0] = np.random.default_rng(0).standard_normal(1000)
  noise[1, :300] = np.sin(np.arange(300) * 0.3)  # Shorter: tiled.
  noise[2, :50] = np.random.default_rng(1).standard_normal(50)
  lengths = np.array([1000, 300, 50])
  y, prm = aug.mix_background(KEY, x, noise, lengths, return_params=True)
  applied = np.asarray(prm["applied"])
  _fraction(applied)
  snr = np.asarray(prm["snr_db"])
  assert snr.min() >= 10.0 and snr.max() <= 26.0 and np.ptp(snr) > 10
  x, y = np.asarray(x), np.asarray(y)
  added = y - x
  measured = 10 * np.log10(np.mean(x[applied]**2, 1) /
                           np.mean(added[applied]**2, 1))
  np.testing.assert_allclose(measured, snr[applied], atol=1e-3)
  assert not np.any(added[~applied])
  # The added signal is the named clip from the named start, tiled.
  for i in np.flatnonzero(applied)[:20]:
    k, s = int(prm["noise_index"][i]), int(prm["noise_start"][i])
    segment = noise[k, (s + np.arange(T)) % lengths[k]]
    assert s <= max(lengths[k] - T, 0)
    scale = added[i] @ segment / (segment @ segment)
    np.testing.assert_allclose(added[i], scale * segment, atol=1e-5)
  assert set(np.asarray(prm["noise_index"])) == {0, 1, 2}
  # A silent example is left alone; the authors' weighting on request.
  silent = np.zeros((B, T), np.float32)
  y, prm = aug.mix_background(KEY, silent, noise, lengths, p=1.0,
                              return_params=True)
  assert not np.any(np.asarray(y)) and not np.any(prm["applied"])
  y, prm = aug.mix_background(KEY, x, noise, lengths, p=1.0,
                              formula="authors", return_params=True)
  r = 10**(np.asarray(prm["snr_db"]) / 10)
  c = (r / (1 + r))[:, None]
  for i in range(4):
    k, s = int(prm["noise_index"][i]), int(prm["noise_start"][i])
    segment = noise[k, (s + np.arange(T)) % lengths[k]]
    np.testing.assert_allclose(np.asarray(y)[i],
                               c[i] * x[i] + (1 - c[i]) * segment, atol=1e-5)


def test_time_masks():
  x = np.asarray(_x()) + 5.0  # No zeros of its own.
  y, prm = aug.time_mask(KEY, x, return_params=True)
  y = np.asarray(y)
  applied = np.asarray(prm["applied"])
  count, starts, widths = (np.asarray(prm[k]) for k in ("count", "starts",
                                                          "widths"))
  _fraction(applied)
  assert set(count[applied]) == {1, 2, 3} and not np.any(count[~applied])
  assert widths.max() == 6  # floor(U(0, 0.1) * 64) <= 6
  for i in range(len(x)):
    used = np.arange(3) < count[i]
    assert not np.any(widths[i, ~used])
    mask = np.zeros(T, bool)
    for s, w in zip(starts[i], widths[i]):
      assert 0 <= s and s + w <= T
      mask[s:s + w] = True
    np.testing.assert_array_equal(y[i] == 0, mask)
    np.testing.assert_array_equal(y[i, ~mask], x[i, ~mask])
  # Per-example valid lengths bound the masks.
  lengths = np.full((B,), 50, np.int32)
  _, prm = aug.time_mask(KEY, x, p=1.0, lengths=lengths, return_params=True)
  ends = np.asarray(prm["starts"]) + np.asarray(prm["widths"])
  assert np.asarray(prm["widths"]).max() <= 5 and ends.max() <= 50


def test_mixup_mixes_waveforms_and_labels_alike():
  b = B
  x = _x()
  y = jax.nn.one_hot(jnp.arange(b) % 5, 5)
  (xm, ym), prm = aug.mixup(KEY, x, y, alpha=1.0, return_params=True)
  lam, perm = np.asarray(prm["lam"]), np.asarray(prm["partner"])
  applied = np.asarray(prm["applied"])
  _fraction(applied)
  assert sorted(perm) == list(range(b))
  assert np.all((lam[applied] > 0) & (lam[applied] < 1))
  assert np.all(lam[~applied] == 1)
  assert abs(lam[applied].mean() - 0.5) < 0.05  # Beta(1, 1) is uniform.
  x, y = np.asarray(x), np.asarray(y)
  np.testing.assert_allclose(
      np.asarray(xm), lam[:, None] * x + (1 - lam[:, None]) * x[perm],
      atol=1e-6)
  np.testing.assert_allclose(
      np.asarray(ym), lam[:, None] * y + (1 - lam[:, None]) * y[perm],
      atol=1e-6)
  np.testing.assert_allclose(np.asarray(ym).sum(1), 1.0, rtol=1e-6)
  (_, _), prm = aug.mixup(KEY, x, y, alpha=0.1, p=1.0, return_params=True)
  lam = np.asarray(prm["lam"])
  assert np.mean((lam < 0.1) | (lam > 0.9)) > 0.6  # Small alpha: near 0 / 1.


def test_random_crop_and_tiling():
  x = np.tile(np.arange(100, dtype=np.float32), (50, 1))
  lengths = np.array([100] * 25 + [30] * 25, np.int32)
  y, prm = aug.random_crop(KEY, x, 40, lengths=lengths, return_params=True)
  y, start = np.asarray(y), np.asarray(prm["start"])
  assert y.shape == (50, 40)
  assert start[:25].max() <= 60 and np.ptp(start[:25]) > 20
  for i in range(25):
    np.testing.assert_array_equal(y[i], np.arange(start[i], start[i] + 40))
  for i in range(25, 50):  # Shorter than the crop: tiled.
    assert start[i] == 0
    np.testing.assert_array_equal(y[i], np.arange(40) % 30)
  whole, _ = aug.random_crop(KEY, x, 100, return_params=True)  # Whole clip.
  np.testing.assert_array_equal(np.asarray(whole), x)
  tiled = aug.tile_to_length(x[:2], 250, lengths=np.array([100, 30]))
  np.testing.assert_array_equal(np.asarray(tiled)[1], np.arange(250) % 30)


def test_contrastive_views_do_not_overlap():
  t, view, gap = 50000, 20000, 2400
  x = np.tile(np.arange(t, dtype=np.float32), (200, 1))  # Exact in float32.
  lengths = np.array([t] * 100 + [12000] * 100, np.int32)
  (a, b), prm = aug.contrastive_views(KEY, x, lengths=lengths,
                                      return_params=True)
  a, b = np.asarray(a), np.asarray(b)
  s1, s2 = np.asarray(prm["start1"]), np.asarray(prm["start2"])
  swapped, eff = np.asarray(prm["swapped"]), np.asarray(prm["tiled_length"])
  assert a.shape == b.shape == (200, view)
  _fraction(swapped)
  np.testing.assert_array_equal(eff, [t] * 100 + [2 * (view + gap)] * 100)
  assert np.all(s1 <= eff // 2 - view)  # The first starts in the first half.
  assert np.all(s2 >= s1 + view + gap)  # >= 300 ms after the first ends.
  assert np.all(s2 + view <= eff)
  first = np.where(swapped[:, None], b, a)
  second = np.where(swapped[:, None], a, b)
  for i in range(100):  # Long clips: the positions themselves.
    np.testing.assert_array_equal(first[i], np.arange(s1[i], s1[i] + view))
    np.testing.assert_array_equal(second[i], np.arange(s2[i], s2[i] + view))
    assert second[i, 0] - first[i, -1] - 1 >= gap
  for i in range(100, 200):  # Short clips: tiled.
    np.testing.assert_array_equal(first[i],
                                  (s1[i] + np.arange(view)) % 12000)
  assert np.ptp(s1[:100]) > 1000 and np.ptp(s2[:100]) > 1000


def test_same_key_same_output_and_jit_inside():
  x = _x()
  for fn in (aug.random_gain, aug.add_gaussian_noise, aug.time_mask):
    a, _ = fn(KEY, x, p=1.0, return_params=True)
    b, _ = fn(KEY, x, p=1.0, return_params=True)
    c, _ = fn(jax.random.key(1), x, p=1.0, return_params=True)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
  legacy, _ = aug.random_gain(jax.random.PRNGKey(0), x, return_params=True)
  assert legacy.shape == x.shape
  step = jax.jit(lambda k, v: aug.random_gain(k, v, p=1.0))
  np.testing.assert_array_equal(
      np.asarray(step(KEY, x)),
      np.asarray(aug.random_gain(KEY, x, p=1.0, return_params=True)[0]))


def test_augment_chain_and_peak_normalise():
  x = _x() * 3.0
  noise = np.random.default_rng(0).standard_normal((3, 1000)).astype(
      np.float32)
  c = aug.augment_config()
  c.mask_p = c.noise_p = c.background_p = 0.0
  y, drawn = aug.augment(KEY, x, c, noise=noise, return_params=True)
  # The paper's order: unit peak first, then the gain is the peak.
  g = np.where(drawn["gain"]["applied"], drawn["gain"]["gain_db"], 0.0)
  np.testing.assert_allclose(np.max(np.abs(np.asarray(y)), axis=1),
                             10.0**(g / 20.0), rtol=1e-5)
  y = np.asarray(aug.augment(KEY, x, noise=noise))  # Every step on.
  assert y.shape == (B, T) and np.all(np.isfinite(y))
  c.peak = "louder_than_one"
  c.gain_p = 0.0
  quiet = x * 0.01
  np.testing.assert_array_equal(np.asarray(aug.augment(KEY, quiet, c)),
                                np.asarray(quiet))
  p = np.asarray(aug.peak_normalise(jnp.stack([x[0], 0 * x[0]])))
  assert np.max(np.abs(p[0])) == pytest.approx(1.0) and not np.any(p[1])


@pytest.mark.parametrize("call, message", [
    (lambda x: aug.random_gain(0, x), "want one JAX PRNG key"),
    (lambda x: aug.random_gain(KEY, x[0]), r"want a float batch of shape "
     r"\(B, T\)"),
    (lambda x: aug.random_gain(KEY, x, p=1.5), r"p=1.5: must be a probability"),
    (lambda x: aug.random_gain(KEY, x, gain_db=(6, -18)), "gain_db"),
    (lambda x: aug.add_gaussian_noise(KEY, x, amplitude=(-1, 0.1)),
     "amplitude"),
    (lambda x: aug.mix_background(KEY, x, np.ones((2, 9)), np.array([9, 10])),
     r"noise_lengths: want integers \(B,\) = \(2,\) in \[1, 9\]"),
    (lambda x: aug.mix_background(KEY, x, np.ones((2, 9)), formula="sum"),
     "formula='sum'"),
    (lambda x: aug.time_mask(KEY, x, max_masks=0), "max_masks=0"),
    (lambda x: aug.mixup(KEY, x, jnp.arange(4)), "y .labels"),
    (lambda x: aug.mixup(KEY, x, jnp.ones((4, 2)), alpha=0.0), "alpha=0.0"),
    (lambda x: aug.random_crop(KEY, x, 0), "length=0"),
    (lambda x: aug.contrastive_views(KEY, x, lengths=np.array([0, 1, 2, 3])),
     "lengths"),
    (lambda x: aug.peak_normalise(x, "sometimes"), "peak='sometimes'"),
    (lambda x: aug.augment(KEY, x, dict(gain_db=(0, 1))), "missing"),
])
def test_bad_input_is_named(call, message):
  with pytest.raises(ValueError, match=message):
    call(_x(4, 32))


# --- The chain: its order, the authors' chain, each step's effect ----------

def _clips(b=64, t=4000, seed=3):
  """Unit-peak clips (as the readers deliver them): tones plus noise."""
  rng = np.random.default_rng(seed)
  n = np.arange(t) / aug.SAMPLE_RATE
  f = rng.uniform(100, 2000, (b, 1))
  x = np.sin(2 * np.pi * f * n) + 0.3 * rng.standard_normal((b, t))
  return jnp.asarray(x / np.max(np.abs(x), axis=1, keepdims=True),
                     jnp.float32)


def _background(k=3, t=6000, seed=4):
  return np.random.default_rng(seed).standard_normal((k, t)).astype(
      np.float32) * 0.2


def _authors_chain_numpy(x, drawn, noise_term, noise, noise_lengths):
  """A transcription of the authors' simple_raw_contrastive_transforms_v3
  (src/data/raw_transforms.py; without `noise`, simple_supervised_transforms)
  on the draws our chain made: UseWithProb(RandomGain) -> UseWithProb(
  AddGaussianNoise) -> UseWithProb(AddRandomNoise) -> PeakNormalization(
  "only_too_loud_sounds") -> TimeMasking."""
  x = np.array(x, np.float64)
  t = x.shape[1]
  for i in range(x.shape[0]):
    g = drawn["gain"]
    if g["applied"][i]:  # torch_audiomentations.Gain: x * 10**(g / 20).
      x[i] = x[i] * 10.0**(float(g["gain_db"][i]) / 20.0)
    if drawn["noise"]["applied"][i]:  # x + a * randn.
      x[i] = x[i] + noise_term[i]
    if noise is not None and drawn["background"]["applied"][i]:
      b = drawn["background"]
      k, s0 = int(b["noise_index"][i]), int(b["noise_start"][i])
      segment = noise[k, (s0 + np.arange(t)) % noise_lengths[k]]
      r = np.exp(float(b["snr_db"][i]) * np.log(10) / 10)
      coeff = r / (1.0 + r)
      x[i] = coeff * x[i] + (1.0 - coeff) * segment
    peak = np.max(np.abs(x[i]))
    if peak > 1.0:  # apply_to="only_too_loud_sounds".
      x[i] = x[i] / peak
    m = drawn["mask"]
    for start, width in zip(m["starts"][i], m["widths"][i]):
      x[i, start:start + width] = 0.0
  return x


@pytest.mark.parametrize("contrastive", [True, False])
def test_authors_chain_is_their_code_step_by_step(contrastive):
  from configs import cnn12_events, cnn12_simclr  # pylint: disable=g-import-not-at-top
  c = (cnn12_simclr if contrastive else cnn12_events).get_config(
      "default,authors").augment
  assert tuple(c.order) == ("gain", "noise", "background", "peak", "mask")
  assert (c.gain_p, c.noise_p, c.background_p, c.mask_p) == (
      0.25, 0.5, 0.5, 1.0)
  assert (c.background_formula, c.peak) == ("authors", "louder_than_one")
  if not contrastive:
    assert c.mixup_p == 1.0  # do_mixup on every batch.
  x = _clips() * 0.9
  noise = _background() if contrastive else None
  lengths = np.array([6000, 5000, 4100])
  y, drawn = aug.augment(KEY, x, c, noise=noise,
                         noise_lengths=lengths if contrastive else None,
                         return_params=True)
  # The noise our chain added, a * z, from its own key (augment splits the
  # key in four: background, gain, noise, mask).
  k_noise = jax.random.split(KEY, 4)[2]
  a = np.asarray(drawn["noise"]["amplitude"])
  z = np.asarray(aug.add_gaussian_noise(k_noise, jnp.zeros_like(x),
                                        (1.0, 1.0), p=1.0))
  want = _authors_chain_numpy(
      np.asarray(x), jax.tree.map(np.asarray, drawn), a[:, None] * z,
      noise, lengths)
  np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-6)
  # Their probabilities, within 5 binomial s.d. over 64 examples.
  _fraction(drawn["gain"]["applied"], 0.25)
  _fraction(drawn["noise"]["applied"], 0.5)
  assert np.all(np.asarray(drawn["mask"]["applied"]))
  if contrastive:
    _fraction(drawn["background"]["applied"], 0.5)


def test_paper_chain_normalises_first_then_changes_the_gain():
  c = aug.augment_config()
  assert tuple(c.order) == aug.PAPER_ORDER and c.peak == "always"
  c.noise_p, c.mask_p, c.gain_p = 0.0, 0.0, 1.0
  x = _clips() * 0.3  # A quiet crop: unit peak first, then the gain.
  y, drawn = aug.augment(KEY, x, c, return_params=True)
  g = np.asarray(drawn["gain"]["gain_db"])
  np.testing.assert_allclose(np.max(np.abs(np.asarray(y)), axis=1),
                             10.0**(g / 20.0), rtol=1e-5)


def test_a_peak_step_that_would_undo_the_gain_is_refused():
  c = aug.augment_config()
  c.order = ("background", "gain", "noise", "peak", "mask")  # Before the fix.
  with pytest.raises(ValueError, match="undoes the gain"):
    aug.augment(KEY, _clips(), c)
  c.gain_p = 0.0
  aug.augment(KEY, _clips(), c)  # Nothing to undo.
  c.order = ("peak", "gain")
  with pytest.raises(ValueError, match="augment.order"):
    aug.augment(KEY, _clips(), c)


# Each step's least median effect on unit-peak clips, relative to the chain
# without it: ||y_with - y_without|| / ||y_without|| over 64 examples.
# Gain U(-18, 6) dB: |10**(g/20) - 1| has median ~0.5 (~0.4 when gains
# above 0 dB are re-normalised by the authors' peak step); noise a ~ U(0.001,
# 0.015) on clips of RMS ~0.4: ~0.02; background at SNR U(10, 26) dB: ~0.1
# (their formula: ~0.01); 1-3 masks of up to 10%: ~0.2; mixup: ~0.4.
LEAST_EFFECT = {"gain": 0.2, "noise": 0.004, "background": 0.004,
                "mask": 0.05, "mixup": 0.1}


def _recipes():
  from configs import (cnn12_events, cnn12_finetune, cnn12_keywords,
                       cnn12_probe, cnn12_simclr)
  for module in (cnn12_events, cnn12_keywords, cnn12_simclr, cnn12_probe,
                 cnn12_finetune):
    for variant in ("default", "paper", "default,authors", "paper,authors"):
      if module in (cnn12_probe, cnn12_finetune):
        variant += ",events"
      yield f"{module.__name__}:{variant}", module.get_config(variant)


def _relative_change(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))


def test_every_augmentation_of_every_recipe_changes_its_input():
  x = _clips()
  noise, lengths = _background(), np.array([6000, 5000, 4100])
  for name, config in _recipes():
    contrastive = config.recipe == "contrastive"
    steps = ["gain", "noise", "mask"] + (["background"] if contrastive else [])
    for step in steps:
      field = f"{step}_p"
      if config.augment[field] == 0:
        continue
      on, off = (config.augment.copy_and_resolve_references()  # Unlocked.
                 for _ in range(2))
      on[field], off[field] = 1.0, 0.0
      kwargs = dict(noise=noise, noise_lengths=lengths) if contrastive else {}
      change = _relative_change(aug.augment(KEY, x, on, **kwargs),
                                aug.augment(KEY, x, off, **kwargs))
      assert change >= LEAST_EFFECT[step], (name, step, change)
    if not contrastive:
      assert config.augment.mixup_p > 0, name
      y = jax.nn.one_hot(jnp.arange(x.shape[0]) % 4, 4)
      mixed, _ = aug.mixup(KEY, x, y, config.augment.mixup_alpha, 1.0)
      assert _relative_change(mixed, x) >= LEAST_EFFECT["mixup"], name
