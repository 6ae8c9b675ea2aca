"""Waveform augmentation for CNN12 training (the sonification paper, App. A),
in JAX.

Every function takes an explicit PRNG key and a batch x of shape (B, T)
(float), draws independently per example (vmap over the batch) and is
jitted. Each random augmentation is applied to an example with probability
`p` (default 0.5); `return_params=True` also returns what was
drawn (per example), e.g. {"applied": bool (B,), "gain_db": float (B,)}.

Defaults are the authors' code's (paper1517/sonifications-paper1517,
src/data/raw_transforms.py); the paper names the augmentations only:
  random_gain         gain U(-18, +6) dB.
  add_gaussian_noise  x + a * N(0, 1), amplitude a ~ U(0.001, 0.015).
  mix_background      a random crop of a background clip added at SNR
                      U(10, 26) dB (contrastive training).
  time_mask           1-3 masks (count uniform), each zeroing
                      floor(U(0, 0.1) * T) samples at a uniform start.
  mixup               lambda ~ Beta(alpha, alpha) per example, partner from
                      a random permutation; waveforms and (soft) labels mix
                      with the same lambda.
  random_crop         a crop of fixed length (5 s / 2.5 s / the whole 1 s
                      clip), clips shorter than it tiled; evaluation uses
                      the whole clip (`tile_to_length` when it is too short).
  contrastive_views   two 2.5 s crops: the first starts in the first half of
                      the (tiled if needed) clip, the second at least 300 ms
                      after the first ends; their order is swapped with
                      probability 0.5 (as the authors'
                      NonOverlappingRandomCrop).
  peak_normalise      "always" (unit peak, the paper's text) or
                      "louder_than_one" (only clips peaking above 1, the
                      authors' code).
The chain (`augment`) runs its steps in `config.order`. Two orders:
  PAPER_ORDER    peak, background, gain, noise, mask (the default). The
                 paper's only pre-processing is scaling the input to unit
                 peak, so the crop is normalised first and the random steps
                 change it after; a unit-peak step after the gain would undo
                 the gain exactly (x * g / max|x * g| = x / max|x|), which
                 `check_augment_config` refuses.
  AUTHORS_ORDER  gain, noise, background, peak, mask: the authors'
                 simple_raw_contrastive_transforms_v3 (and, without the
                 background, simple_supervised_transforms), with their peak
                 normalisation of only clips louder than 1.
Where the authors' code differs from the paper's settings (the `,authors`
variants of configs/cnn12_*.py set every one of these): their gain sits inside both UseWithProb(0.5) and
torch_audiomentations' own p=0.5 (0.25 in effect; here p=0.5 by default),
their TimeMasking runs on every example (p=1), they mix up every batch of
the supervised recipe (mixup_p=1; the paper gives no rate, here 0.5 as the
other steps), and
their background mix weights x by c = r / (1 + r) and the noise by 1 - c
with r = 10**(snr / 10), which does not give that SNR; by default the noise
is scaled so the SNR is exactly the drawn one (background_formula="snr").
"""
import functools
import numbers

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from recon_jax.data import audio_io

GAIN_DB = (-18.0, 6.0)
NOISE_AMPLITUDE = (0.001, 0.015)
SNR_DB = (10.0, 26.0)
MAX_MASKS = 3
MASK_FRACTION = 0.1
PROBABILITY = 0.5
SAMPLE_RATE = audio_io.SAMPLE_RATE
VIEW_LENGTH = int(2.5 * SAMPLE_RATE)  # 2.5 s contrastive views.
VIEW_GAP = int(0.3 * SAMPLE_RATE)  # >= 300 ms between them.
FORMULAS = ("snr", "authors")
STEPS = ("peak", "background", "gain", "noise", "mask")
PAPER_ORDER = STEPS
AUTHORS_ORDER = ("gain", "noise", "background", "peak", "mask")


def augment_config() -> ml_collections.ConfigDict:
  """Augmentation settings (the paper's, module doc) for `augment` and `mixup`.

  A probability of 0 turns an augmentation off.
  """
  c = ml_collections.ConfigDict()
  c.gain_db = GAIN_DB
  c.gain_p = PROBABILITY
  c.noise_amplitude = NOISE_AMPLITUDE
  c.noise_p = PROBABILITY
  c.snr_db = SNR_DB
  c.background_p = PROBABILITY  # Used when `augment` gets background clips.
  c.background_formula = "snr"  # Or "authors" (module doc).
  c.max_masks = MAX_MASKS
  c.mask_fraction = MASK_FRACTION
  c.mask_p = PROBABILITY  # The authors' code: 1.0.
  c.peak = "always"  # Or "louder_than_one" (the authors' code).
  c.order = PAPER_ORDER
  c.mixup_alpha = 1.0
  c.mixup_p = PROBABILITY  # The paper gives no rate; the authors': 1.0.
  return c


# --- Checks (Python level, before tracing) -----------------------------------


def _check_key(key):
  try:
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    ok = typed or (key.dtype == jnp.uint32 and key.shape[-1:] == (2,))
    ok = ok and (key.shape == () if typed else key.shape == (2,))
  except AttributeError:
    ok = False
  if not ok:
    raise ValueError(f"key={key!r}: want one JAX PRNG key "
                     "(jax.random.key(seed) or jax.random.PRNGKey(seed))")
  return key


def _check_batch(x, name="x"):
  x = jnp.asarray(x)
  if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name}: want a float batch of shape (B, T), got "
                     f"{x.dtype} {x.shape}")
  if x.shape[0] < 1 or x.shape[1] < 1:
    raise ValueError(f"{name}: empty batch of shape {x.shape}")
  return x


def _is_number(v):
  return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
          and np.isfinite(v))


def _check_p(p, name="p"):
  if not _is_number(p) or not 0.0 <= p <= 1.0:
    raise ValueError(f"{name}={p!r}: must be a probability in [0, 1]")
  return float(p)


def _check_range(value, name, lo=-np.inf, hi=np.inf, open_lo=False):
  try:
    a, b = value
    ok = _is_number(a) and _is_number(b)
  except (TypeError, ValueError):
    ok = False
  if not ok or not lo <= a <= b <= hi or (open_lo and a <= lo):
    raise ValueError(f"{name}={value!r}: want (low, high) with {lo} "
                     f"{'<' if open_lo else '<='} low <= high <= {hi}")
  return float(a), float(b)


def _check_int(value, name, lo, hi=None):
  if (isinstance(value, (bool, np.bool_)) or
      not isinstance(value, numbers.Integral) or value < lo or
      (hi is not None and value > hi)):
    raise ValueError(f"{name}={value!r}: must be an integer in [{lo}, "
                     f"{'inf' if hi is None else hi}]")
  return int(value)


def _check_lengths(lengths, x, name="lengths"):
  """(B,) valid lengths in [1, T] (default T); checked when concrete."""
  b, t = x.shape
  if lengths is None:
    return jnp.full((b,), t, jnp.int32)
  if not isinstance(lengths, jax.core.Tracer):
    arr = np.asarray(lengths)
    if (arr.shape != (b,) or not np.issubdtype(arr.dtype, np.integer) or
        (arr.size and (arr.min() < 1 or arr.max() > t))):
      raise ValueError(f"{name}: want integers (B,) = ({b},) in [1, {t}] "
                       f"(each example's valid length), got {arr.dtype} "
                       f"{arr.shape}" + (f" in [{arr.min()}, {arr.max()}]"
                                         if arr.size and np.issubdtype(
                                             arr.dtype, np.number) else ""))
  return jnp.asarray(lengths, jnp.int32)


def _split(key, b):
  return jax.random.split(key, b)


def _out(y, params, return_params):
  return (y, params) if return_params else y


# --- Augmentations -----------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("return_params",))
def _random_gain(key, x, lo, hi, p, return_params):
  def one(k, xi):
    ka, kg = jax.random.split(k)
    applied = jax.random.bernoulli(ka, p)
    g = jax.random.uniform(kg, (), minval=lo, maxval=hi)
    return (jnp.where(applied, xi * 10.0**(g / 20.0), xi).astype(x.dtype),
            dict(applied=applied, gain_db=g))
  y, params = jax.vmap(one)(_split(key, x.shape[0]), x)
  return _out(y, params, return_params)


def random_gain(key, x, gain_db=GAIN_DB, p=PROBABILITY, return_params=False):
  """Scales each example by 10**(g / 20), g ~ U(gain_db), with prob. p.

  Args:
    key: a PRNG key. x: float (B, T). gain_db: (low, high) dB.
    p: probability per example. return_params: also return the draws.

  Returns:
    y (B, T) [, {"applied": bool (B,), "gain_db": (B,) drawn gains}].
  """
  lo, hi = _check_range(gain_db, "gain_db", -120.0, 120.0)
  return _random_gain(_check_key(key), _check_batch(x), lo, hi, _check_p(p),
                      return_params)


@functools.partial(jax.jit, static_argnames=("return_params",))
def _gaussian_noise(key, x, lo, hi, p, return_params):
  def one(k, xi):
    ka, kn, kz = jax.random.split(k, 3)
    applied = jax.random.bernoulli(ka, p)
    a = jax.random.uniform(kn, (), minval=lo, maxval=hi)
    z = jax.random.normal(kz, xi.shape, x.dtype)
    return (jnp.where(applied, xi + a * z, xi).astype(x.dtype),
            dict(applied=applied, amplitude=a))
  y, params = jax.vmap(one)(_split(key, x.shape[0]), x)
  return _out(y, params, return_params)


def add_gaussian_noise(key, x, amplitude=NOISE_AMPLITUDE, p=PROBABILITY,
                       return_params=False):
  """x + a * N(0, 1) (a ~ U(amplitude), per example) with probability p.

  Returns:
    y (B, T) [, {"applied": bool (B,), "amplitude": (B,)}].
  """
  lo, hi = _check_range(amplitude, "amplitude", 0.0, 10.0)
  return _gaussian_noise(_check_key(key), _check_batch(x), lo, hi,
                         _check_p(p), return_params)


@functools.partial(jax.jit, static_argnames=("formula", "return_params"))
def _mix_background(key, x, noise, noise_lengths, lo, hi, p, formula,
                    return_params):
  t = x.shape[1]

  def one(k, xi):
    ka, ki, ks, kr = jax.random.split(k, 4)
    applied = jax.random.bernoulli(ka, p)
    index = jax.random.randint(ki, (), 0, noise.shape[0])
    n_len = noise_lengths[index]
    start = jax.random.randint(ks, (), 0, jnp.maximum(n_len - t, 0) + 1)
    segment = noise[index, (start + jnp.arange(t)) % n_len].astype(x.dtype)
    snr = jax.random.uniform(kr, (), minval=lo, maxval=hi)
    r = 10.0**(snr / 10.0)
    if formula == "snr":
      px, pn = jnp.mean(xi**2), jnp.mean(segment**2)
      ok = (px > 0) & (pn > 0)
      scale = jnp.sqrt(jnp.where(ok, px / (jnp.where(ok, pn, 1.0) * r), 0.0))
      mixed = xi + scale * segment
      applied = applied & ok
    else:
      c = r / (1.0 + r)
      mixed = c * xi + (1.0 - c) * segment
    return (jnp.where(applied, mixed, xi).astype(x.dtype),
            dict(applied=applied, snr_db=snr, noise_index=index,
                 noise_start=start))
  y, params = jax.vmap(one)(_split(key, x.shape[0]), x)
  return _out(y, params, return_params)


def mix_background(key, x, noise, noise_lengths=None, snr_db=SNR_DB,
                   p=PROBABILITY, formula="snr", return_params=False):
  """Adds a random crop of a random background clip at a random SNR.

  For each example (with probability p): a clip k of `noise` uniformly, a
  T-sample crop of it at a uniform start (tiled when the clip is shorter
  than T), an SNR s ~ U(snr_db), and y = x + g * crop with g such that
  10 log10(mean(x**2) / mean((g * crop)**2)) = s (formula="snr"); an
  all-zero x or crop is left unchanged (applied False). formula="authors":
  y = c x + (1 - c) crop with c = r / (1 + r), r = 10**(s / 10).

  Args:
    key: PRNG key. x: float (B, T).
    noise: float (K, Tn) background clips, zero-padded.
    noise_lengths: int (K,) valid lengths in [1, Tn] (default Tn).

  Returns:
    y (B, T) [, {"applied", "snr_db", "noise_index", "noise_start"} (B,)].
  """
  x = _check_batch(x)
  noise = _check_batch(noise, "noise")
  if formula not in FORMULAS:
    raise ValueError(f"formula={formula!r}: want one of {FORMULAS}")
  lo, hi = _check_range(snr_db, "snr_db", -60.0, 120.0)
  lengths = _check_lengths(noise_lengths, noise, "noise_lengths")
  return _mix_background(_check_key(key), x, noise, lengths, lo, hi,
                         _check_p(p), formula, return_params)


@functools.partial(jax.jit, static_argnames=("max_masks", "return_params"))
def _time_mask(key, x, lengths, max_masks, fraction, p, return_params):
  pos = jnp.arange(x.shape[1])

  def one(k, xi, length):
    ka, kc, kf, ks = jax.random.split(k, 4)
    applied = jax.random.bernoulli(ka, p)
    count = jax.random.randint(kc, (), 1, max_masks + 1)
    widths = jnp.floor(jax.random.uniform(kf, (max_masks,), maxval=fraction) *
                       length).astype(jnp.int32)
    starts = jnp.floor(jax.random.uniform(ks, (max_masks,)) *
                       (length - widths)).astype(jnp.int32)
    widths = jnp.where((jnp.arange(max_masks) < count) & applied, widths, 0)
    masked = jnp.any((pos >= starts[:, None]) &
                     (pos < (starts + widths)[:, None]), axis=0)
    return (jnp.where(masked, 0.0, xi).astype(x.dtype),
            dict(applied=applied, count=jnp.where(applied, count, 0),
                 starts=starts, widths=widths))
  y, params = jax.vmap(one)(_split(key, x.shape[0]), x, lengths)
  return _out(y, params, return_params)


def time_mask(key, x, max_masks=MAX_MASKS, max_fraction=MASK_FRACTION,
              p=PROBABILITY, lengths=None, return_params=False):
  """Zeros 1..max_masks segments of each example (with probability p).

  Each mask: width floor(U(0, max_fraction) * L), start floor(U(0, 1) *
  (L - width)), L the example's length (`lengths`, default T); masks may
  overlap (as the authors').

  Returns:
    y (B, T) [, {"applied": (B,), "count": (B,) masks (0 if not applied),
    "starts", "widths": (B, max_masks) (width 0 for unused masks)}].
  """
  x = _check_batch(x)
  max_masks = _check_int(max_masks, "max_masks", 1, 64)
  if not _is_number(max_fraction) or not 0.0 <= max_fraction <= 1.0:
    raise ValueError(f"max_fraction={max_fraction!r}: must be in [0, 1]")
  return _time_mask(_check_key(key), x, _check_lengths(lengths, x), max_masks,
                    float(max_fraction), _check_p(p), return_params)


@functools.partial(jax.jit, static_argnames=("return_params",))
def _mixup(key, x, y, alpha, p, return_params):
  b = x.shape[0]
  kp, kl, ka = jax.random.split(key, 3)
  perm = jax.random.permutation(kp, b)
  lam = jax.random.beta(kl, alpha, alpha, (b,))
  applied = jax.random.bernoulli(ka, p, (b,))
  lam = jnp.where(applied, lam, 1.0)
  lx = lam.astype(x.dtype)[:, None]
  ly = lam.astype(y.dtype)[:, None]
  xm = lx * x + (1.0 - lx) * x[perm]
  ym = ly * y + (1.0 - ly) * y[perm]
  return _out((xm, ym), dict(applied=applied, lam=lam, partner=perm),
              return_params)


def mixup(key, x, y, alpha=1.0, p=PROBABILITY, return_params=False):
  """Mixup (supervised): x_i' = l x_i + (1 - l) x_j, same for labels.

  Per example: l ~ Beta(alpha, alpha) when applied (probability p), else
  l = 1; the partner j from one random permutation of the batch (as the
  authors' do_mixup).

  Args:
    key: PRNG key. x: float (B, T).
    y: float (B, C) labels: multi-hot (multi-label) or one-hot (multi-class;
      jax.nn.one_hot(labels, C)); they come back as soft labels.
    alpha: Beta parameter > 0.

  Returns:
    (x', y') [, {"applied": bool (B,), "lam": (B,), "partner": int (B,)}].
  """
  x = _check_batch(x)
  y = _check_batch(y, "y (labels, (B, C) float: one-hot or multi-hot)")
  if y.shape[0] != x.shape[0]:
    raise ValueError(f"mixup: x has {x.shape[0]} examples, y {y.shape[0]}")
  if not _is_number(alpha) or alpha <= 0:
    raise ValueError(f"alpha={alpha!r}: must be a number > 0")
  return _mixup(_check_key(key), x, y, float(alpha), _check_p(p),
                return_params)


@functools.partial(jax.jit, static_argnames=("length", "return_params"))
def _random_crop(key, x, lengths, length, return_params):
  def one(k, xi, n):
    start = jax.random.randint(k, (), 0, jnp.maximum(n - length, 0) + 1)
    return xi[(start + jnp.arange(length)) % n], dict(start=start)
  y, params = jax.vmap(one)(_split(key, x.shape[0]), x, lengths)
  return _out(y, params, return_params)


def random_crop(key, x, length, lengths=None, return_params=False):
  """A `length`-sample crop of each example at a uniform start.

  An example shorter than `length` (its `lengths` entry, default T) is
  tiled: sample i of the crop is x[(start + i) mod L].

  Args:
    key: PRNG key. x: float (B, T), zero-padded after each valid length.
    length: the crop length (e.g. 40000 = 5 s, 20000 = 2.5 s, 8000 = the
      whole 1 s keyword clip).
    lengths: int (B,) valid lengths (default T).

  Returns:
    y (B, length) [, {"start": int (B,)}].
  """
  x = _check_batch(x)
  length = _check_int(length, "length", 1)
  return _random_crop(_check_key(key), x, _check_lengths(lengths, x), length,
                      return_params)


@functools.partial(jax.jit, static_argnames=("length",))
def _tile(x, lengths, length):
  return jax.vmap(lambda xi, n: xi[jnp.arange(length) % n])(x, lengths)


def tile_to_length(x, length, lengths=None):
  """Each example from its start, tiled (repeated) or cut to `length`.

  For evaluation on whole clips shorter than the network needs.

  Returns:
    float (B, length).
  """
  x = _check_batch(x)
  return _tile(x, _check_lengths(lengths, x), _check_int(length, "length", 1))


@functools.partial(jax.jit, static_argnames=("view_length", "min_gap",
                                             "return_params"))
def _views(key, x, lengths, view_length, min_gap, return_params):
  need = 2 * (view_length + min_gap)
  pos = jnp.arange(view_length)

  def one(k, xi, n):
    k1, k2, k3 = jax.random.split(k, 3)
    eff = jnp.maximum(n, need)  # Tiled to at least `need`.
    mid = eff // 2
    s1 = jax.random.randint(k1, (), 0, mid - view_length + 1)
    s2 = jax.random.randint(k2, (), s1 + view_length + min_gap,
                            eff - view_length + 1)
    v1, v2 = xi[(s1 + pos) % n], xi[(s2 + pos) % n]
    swap = jax.random.bernoulli(k3, 0.5)
    return (jnp.where(swap, v2, v1), jnp.where(swap, v1, v2),
            dict(start1=s1, start2=s2, swapped=swap, tiled_length=eff))
  a, b, params = jax.vmap(one)(_split(key, x.shape[0]), x, lengths)
  return _out((a, b), params, return_params)


def contrastive_views(key, x, view_length=VIEW_LENGTH, min_gap=VIEW_GAP,
                      lengths=None, return_params=False):
  """Two non-overlapping crops of each example (a SimCLR positive pair).

  The clip (length L, tiled to at least 2 * (view_length + min_gap) when
  shorter) gives crop 1 at s1 ~ U{0 .. mid - view_length} (mid = half the
  tiled length: it starts in the first half) and crop 2 at s2 ~ U{s1 +
  view_length + min_gap .. end - view_length}; which comes back first is
  swapped with probability 0.5.

  Args:
    key: PRNG key. x: float (B, T), zero-padded after each valid length.
    view_length: samples per view (2.5 s at 8 kHz = 20000).
    min_gap: samples between the end of crop 1 and the start of crop 2
      (300 ms = 2400).
    lengths: int (B,) valid lengths (default T).

  Returns:
    (view_a, view_b) each (B, view_length) [, {"start1", "start2" (before
    the swap), "swapped", "tiled_length"} (B,)].
  """
  x = _check_batch(x)
  view_length = _check_int(view_length, "view_length", 1)
  min_gap = _check_int(min_gap, "min_gap", 0)
  return _views(_check_key(key), x, _check_lengths(lengths, x), view_length,
                min_gap, return_params)


@functools.partial(jax.jit, static_argnames=("mode",))
def _peak(x, mode):
  m = jnp.max(jnp.abs(x), axis=1, keepdims=True)
  divide = (m > 0) if mode == "always" else (m > 1.0)
  return jnp.where(divide, x / jnp.where(divide, m, 1.0), x)


def peak_normalise(x, mode="always"):
  """Each example to unit peak ("always"; all-zero examples stay zero) or
  only those peaking above 1 ("louder_than_one", the authors' code)."""
  audio_io.check_peak_mode(mode)
  return _peak(_check_batch(x), mode)


def check_augment_config(config):
  """Checks an `augment_config()`-like config; raises ValueError naming the
  field."""
  if isinstance(config, dict):
    config = ml_collections.ConfigDict(config)
  known = set(augment_config().keys())
  unknown = sorted(set(config.keys()) - known)
  missing = sorted(known - set(config.keys()))
  if unknown or missing:
    raise ValueError(f"augment config: unknown {unknown} / missing {missing} "
                     f"field(s); known: {sorted(known)}")
  _check_range(config.gain_db, "augment.gain_db", -120.0, 120.0)
  _check_range(config.noise_amplitude, "augment.noise_amplitude", 0.0, 10.0)
  _check_range(config.snr_db, "augment.snr_db", -60.0, 120.0)
  for name in ("gain_p", "noise_p", "background_p", "mask_p", "mixup_p"):
    _check_p(config[name], f"augment.{name}")
  if config.background_formula not in FORMULAS:
    raise ValueError(f"augment.background_formula="
                     f"{config.background_formula!r}: want one of {FORMULAS}")
  _check_int(config.max_masks, "augment.max_masks", 1, 64)
  if not _is_number(config.mask_fraction) or not (
      0.0 <= config.mask_fraction <= 1.0):
    raise ValueError(f"augment.mask_fraction={config.mask_fraction!r}: must "
                     "be in [0, 1]")
  try:
    audio_io.check_peak_mode(config.peak)
  except ValueError as e:
    raise ValueError(f"augment.{e}") from None
  if not _is_number(config.mixup_alpha) or config.mixup_alpha <= 0:
    raise ValueError(f"augment.mixup_alpha={config.mixup_alpha!r}: must be "
                     "> 0")
  order = tuple(config.order) if isinstance(config.order, (tuple, list)) else (
      config.order,)
  if sorted(order) != sorted(STEPS):
    raise ValueError(f"augment.order={order!r}: want each of {STEPS} once, "
                     f"e.g. {PAPER_ORDER} (the paper) or {AUTHORS_ORDER} (the "
                     "authors' code)")
  if (config.peak == "always" and config.gain_p > 0 and
      order.index("peak") > order.index("gain")):
    raise ValueError("augment: peak='always' after 'gain' in augment.order "
                     "rescales every example to unit peak and so undoes the "
                     "gain; put 'peak' first (the paper's order), use "
                     "peak='louder_than_one' (the authors') or gain_p=0")
  return config


def augment(key, x, config=None, noise=None, noise_lengths=None,
            return_params=False):
  """The training chain on float (B, T) crops, its steps in `config.order`.

  Peak normalisation (config.peak), background mix (only when `noise` clips
  are given: contrastive training), random gain, Gaussian noise and time
  masks, each random step with its config probability. Mixup, which also
  changes labels, is separate (`mixup`). The key is split in four, one for
  each random step (background, gain, noise, mask), whatever the order.

  Returns:
    float (B, T) [, {step: that step's drawn parameters} for the random
    steps that ran].
  """
  config = check_augment_config(config if config is not None
                                else augment_config())
  keys = dict(zip(("background", "gain", "noise", "mask"),
                  jax.random.split(_check_key(key), 4)))
  drawn = {}
  # return_params=True throughout: one compiled variant per function.
  for step in config.order:
    if step == "peak":
      x = peak_normalise(x, config.peak)
    elif step == "background" and noise is not None:
      x, drawn[step] = mix_background(
          keys[step], x, noise, noise_lengths, tuple(config.snr_db),
          config.background_p, config.background_formula, return_params=True)
    elif step == "gain":
      x, drawn[step] = random_gain(keys[step], x, tuple(config.gain_db),
                                   config.gain_p, return_params=True)
    elif step == "noise":
      x, drawn[step] = add_gaussian_noise(
          keys[step], x, tuple(config.noise_amplitude), config.noise_p,
          return_params=True)
    elif step == "mask":
      x, drawn[step] = time_mask(keys[step], x, config.max_masks,
                                 config.mask_fraction, config.mask_p,
                                 return_params=True)
  return _out(x, drawn, return_params)
