"""Intervals and verdicts for the papers' findings.

Two kinds of measure, two tests:
- Clip-level (the residual test's metric drop, coherence, map activity):
  a percentile bootstrap over the test clips, PAIRED (every condition of a
  resample sees the same clips). Where a group has several seeds, each
  resample also redraws the group's seeds (with replacement, independently
  per group: a two-level bootstrap), so the interval carries the seed
  spread as well as the clips'. With one seed per group it is the paired
  bootstrap over clips exactly, as scipy.stats.bootstrap(paired=True,
  method='percentile') draws it (same generator, same indices).
- Model-level (a trained model's test metric against another's): Welch's
  t-interval of the difference of means over seeds (the unit is a training
  run). Not a bootstrap: over 3 seeds a bootstrap has 10 distinct resamples
  per group and its interval is too narrow.

A verdict says what the interval shows about the paper's claimed direction
(`verdict`): "holds" when the whole interval is on the paper's side of no
effect, "contradicted" when it is all on the other side, else "not shown
at this scale".
"""
from typing import Callable, NamedTuple

import numpy as np
import scipy.stats

HOLDS = "holds"
CONTRADICTED = "contradicted"
NOT_SHOWN = "not shown at this scale"
NOT_TESTED = "not tested at this scale"
VERDICTS = (HOLDS, CONTRADICTED, NOT_SHOWN, NOT_TESTED)


class Resamples(NamedTuple):
  """Bootstrap draws: clips (B, N) indices into the clips, shared by every
  group (the pairing); seeds {group: (B, S_g)} indices into its seeds."""
  clips: np.ndarray
  seeds: dict


def draw_resamples(num_clips: int, seeds_per_group: dict | None = None, *,
                   num_resamples: int = 2000, seed: int = 0) -> Resamples:
  """The resamples of a two-level paired bootstrap.

  The clip indices come first from np.random.default_rng(seed), drawn as
  scipy.stats.bootstrap draws them (rng.integers(0, N, (B, N))); then each
  group's seed indices, groups in sorted order.
  """
  if num_clips < 2:
    raise ValueError(f"a bootstrap over clips needs at least 2 clips, got "
                     f"{num_clips}")
  if num_resamples < 100:
    raise ValueError(f"num_resamples={num_resamples}: want at least 100")
  rng = np.random.default_rng(seed)
  clips = rng.integers(0, num_clips, (num_resamples, num_clips))
  seeds = {}
  for group, count in sorted((seeds_per_group or {}).items()):
    if count < 1:
      raise ValueError(f"group {group!r} has no seed")
    seeds[group] = rng.integers(0, count, (num_resamples, count))
  return Resamples(clips, seeds)


def identity(num_clips: int, seeds_per_group: dict | None = None) -> Resamples:
  """The one 'resample' that is the data itself (for the point estimate)."""
  return Resamples(np.arange(num_clips)[None],
                   {g: np.arange(s)[None]
                    for g, s in (seeds_per_group or {}).items()})


def seed_mean(per_seed: np.ndarray, seed_indices: np.ndarray) -> np.ndarray:
  """(B,) mean over each resample's seeds of per_seed (S, B): the value of
  resample b for seed s is per_seed[s, b]."""
  per_seed = np.asarray(per_seed)
  taken = np.take_along_axis(per_seed.T, seed_indices, axis=1)
  return taken.mean(axis=1)


def finite_mean(values) -> np.ndarray:
  """Mean over the last axis of the finite values (NaN: left out, e.g. a
  silent sonification or a diverged reconstruction); NaN where a row has
  none. No warning, unlike np.nanmean on an all-NaN row."""
  values = np.asarray(values, np.float64)
  finite = np.isfinite(values)
  count = finite.sum(-1)
  total = np.where(finite, values, 0.0).sum(-1)
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def resampled_finite_mean(values, clip_indices) -> np.ndarray:
  """(B,) finite_mean of per-clip values (N,) over each resample's rows of
  clip_indices (B, N)."""
  return finite_mean(np.asarray(values, np.float64)[clip_indices])


def percentile_interval(estimate: float, distribution, level: float = 0.95,
                        *, method: str = "") -> dict:
  """{"estimate", "low", "high", "level", "method"} from bootstrap values.

  The percentile interval (np.quantile, linear, as scipy.stats.bootstrap's
  'percentile' method). Resamples whose statistic is undefined (NaN) are
  left out and counted ("undefined"); with more than 1% of them the
  interval is NaN.
  """
  values = np.asarray(distribution, np.float64).ravel()
  finite = values[np.isfinite(values)]
  undefined = int(values.size - finite.size)
  alpha = (1.0 - level) / 2.0
  if finite.size == 0 or undefined > 0.01 * values.size:
    low = high = float("nan")
  else:
    low, high = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha]))
  return {"estimate": float(estimate), "low": low, "high": high,
          "level": level, "resamples": int(values.size),
          "undefined": undefined, "method": method}


def bootstrap(statistic: Callable[[Resamples], np.ndarray], num_clips: int,
              seeds_per_group: dict | None = None, *,
              num_resamples: int = 2000, seed: int = 0, level: float = 0.95,
              chunk: int = 250, method: str = "") -> dict:
  """Percentile interval of a statistic under the two-level bootstrap.

  statistic: Resamples -> (B,) values, vectorised over resamples. It is
    called on the identity resample for the estimate and on chunks of the
    drawn resamples (chunk at a time, to bound memory).
  """
  drawn = draw_resamples(num_clips, seeds_per_group,
                         num_resamples=num_resamples, seed=seed)
  estimate = float(np.asarray(statistic(identity(
      num_clips, seeds_per_group)))[0])
  values = np.concatenate([np.asarray(statistic(Resamples(
      drawn.clips[i:i + chunk], {g: s[i:i + chunk]
                                 for g, s in drawn.seeds.items()})))
                           for i in range(0, num_resamples, chunk)])
  return percentile_interval(estimate, values, level, method=method or (
      f"paired percentile bootstrap over {num_clips} clips"
      + (", seeds redrawn per group" if seeds_per_group else "")
      + f", {num_resamples} resamples"))


def paired_bootstrap_mean_difference(a, b, *, num_resamples: int = 2000,
                                     seed: int = 0,
                                     level: float = 0.95) -> dict:
  """Interval of mean(a - b) for paired per-clip values a, b (N,)."""
  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  return bootstrap(lambda r: d[r.clips].mean(axis=1), d.size,
                   num_resamples=num_resamples, seed=seed, level=level)


def welch_interval(a, b, level: float = 0.95) -> dict:
  """Welch's t-interval of mean(a) - mean(b) over runs (seeds).

  {"estimate", "low", "high", "level", "df", "method"}; NaN bounds when a
  group has fewer than 2 runs or both have no spread.
  """
  a = np.asarray(a, np.float64).ravel()
  b = np.asarray(b, np.float64).ravel()
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
    raise ValueError("welch_interval values hold NaN/Inf")
  if a.size == 0 or b.size == 0:
    raise ValueError("welch_interval needs at least one value per group")
  estimate = float(a.mean() - b.mean())
  out = {"estimate": estimate, "low": float("nan"), "high": float("nan"),
         "level": level, "df": float("nan"),
         "method": f"Welch t over seeds ({a.size} vs {b.size})"}
  if a.size < 2 or b.size < 2:
    return out
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se2 = va + vb
  if se2 == 0:
    return out
  df = se2 ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  half = float(scipy.stats.t.ppf(0.5 + level / 2, df) * np.sqrt(se2))
  out.update(low=estimate - half, high=estimate + half, df=float(df))
  return out


def t_interval(values, reference: float = 0.0, level: float = 0.95) -> dict:
  """Student's t-interval of mean(values) - reference over runs (seeds);
  NaN bounds for fewer than 2 runs."""
  v = np.asarray(values, np.float64).ravel()
  if v.size == 0 or not np.all(np.isfinite(v)):
    raise ValueError(f"t_interval needs finite values, got {values!r}")
  est = float(v.mean() - reference)
  out = {"estimate": est, "low": float("nan"), "high": float("nan"),
         "level": level, "method": f"t over {v.size} seed(s)"}
  if v.size >= 2:
    half = float(scipy.stats.t.ppf(0.5 + level / 2, v.size - 1)
                 * v.std(ddof=1) / np.sqrt(v.size))
    out.update(low=est - half, high=est + half)
  return out


def verdict(interval: dict, direction: int = 1) -> str:
  """What an interval of an effect says about the paper's claim.

  direction: +1 when the paper claims the effect is > 0, -1 when < 0.
  """
  if direction not in (1, -1):
    raise ValueError(f"direction={direction!r}: want +1 or -1")
  low, high = interval["low"], interval["high"]
  if not (np.isfinite(low) and np.isfinite(high)):
    return NOT_SHOWN
  low, high = (low, high) if direction == 1 else (-high, -low)
  if low > 0:
    return HOLDS
  if high < 0:
    return CONTRADICTED
  return NOT_SHOWN


def format_interval(interval: dict, digits: int = 3) -> str:
  """'0.123 [0.100, 0.150]' (estimate and interval)."""
  f = f"{{:.{digits}f}}"
  if not (np.isfinite(interval["low"]) and np.isfinite(interval["high"])):
    return f"{f.format(interval['estimate'])} [no interval]"
  return (f"{f.format(interval['estimate'])} [{f.format(interval['low'])}, "
          f"{f.format(interval['high'])}]")


def binomial_interval(successes: int, trials: int,
                      level: float = 0.95) -> dict:
  """Clopper-Pearson (exact) interval of a proportion successes / trials.

  {"estimate", "low", "high", "level", "method"}; NaN bounds for no trial.
  """
  k, n = int(successes), int(trials)
  if not 0 <= k <= n:
    raise ValueError(f"binomial_interval needs 0 <= successes <= trials, "
                     f"got {k} of {n}")
  out = {"estimate": float("nan") if n == 0 else k / n,
         "low": float("nan"), "high": float("nan"), "level": level,
         "successes": k, "trials": n,
         "method": f"Clopper-Pearson over {n} case(s)"}
  if n == 0:
    return out
  alpha = 1.0 - level
  out["low"] = 0.0 if k == 0 else float(
      scipy.stats.beta.ppf(alpha / 2, k, n - k + 1))
  out["high"] = 1.0 if k == n else float(
      scipy.stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
  return out
