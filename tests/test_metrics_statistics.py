"""metrics.statistics against scipy.stats and plain NumPy references on
known cases: the paired bootstrap (scipy.stats.bootstrap), the two-level
bootstrap (a loop over resamples), Welch's interval (scipy.stats.ttest_ind),
Clopper-Pearson (scipy.stats.binomtest), the batched mAP of resamples, the
verdict rule and the interval's coverage."""
import numpy as np
import pytest
import scipy.stats

from recon_jax import metrics
from recon_jax.metrics import statistics


def test_paired_bootstrap_is_scipys_percentile_bootstrap():
  rng = np.random.default_rng(3)
  a = rng.normal(0.3, 1.0, 57)
  b = a - rng.normal(0.2, 0.5, 57)
  ours = statistics.paired_bootstrap_mean_difference(a, b,
                                                     num_resamples=3000,
                                                     seed=11)
  ref = scipy.stats.bootstrap(
      (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
      vectorized=True, n_resamples=3000, method="percentile",
      rng=np.random.default_rng(11))
  assert ours["low"] == pytest.approx(ref.confidence_interval.low, abs=1e-12)
  assert ours["high"] == pytest.approx(ref.confidence_interval.high,
                                       abs=1e-12)
  assert ours["estimate"] == pytest.approx(np.mean(a - b))


def test_two_level_bootstrap_is_a_loop_over_resamples():
  rng = np.random.default_rng(0)
  values = {"a": rng.normal(1.0, 0.3, (3, 40)),
            "b": rng.normal(0.8, 0.3, (2, 40))}

  def statistic(r):  # mean of a minus mean of b, vectorised
    return (statistics.seed_mean(np.stack([v[r.clips].mean(1)
                                           for v in values["a"]]),
                                 r.seeds["a"])
            - statistics.seed_mean(np.stack([v[r.clips].mean(1)
                                             for v in values["b"]]),
                                   r.seeds["b"]))

  out = statistics.bootstrap(statistic, 40, {"a": 3, "b": 2},
                             num_resamples=500, seed=5)
  drawn = statistics.draw_resamples(40, {"a": 3, "b": 2}, num_resamples=500,
                                    seed=5)
  loop = []
  for i in range(500):
    clips = drawn.clips[i]
    ma = np.mean([values["a"][s][clips].mean() for s in drawn.seeds["a"][i]])
    mb = np.mean([values["b"][s][clips].mean() for s in drawn.seeds["b"][i]])
    loop.append(ma - mb)
  low, high = np.quantile(loop, [0.025, 0.975])
  assert out["low"] == pytest.approx(low, abs=1e-12)
  assert out["high"] == pytest.approx(high, abs=1e-12)
  assert out["estimate"] == pytest.approx(values["a"].mean() -
                                          values["b"].mean())
  # With one seed per group it is the paired bootstrap over clips.
  one = statistics.draw_resamples(40, {"a": 1}, num_resamples=200, seed=5)
  plain = statistics.draw_resamples(40, num_resamples=200, seed=5)
  np.testing.assert_array_equal(one.clips, plain.clips)


def test_bootstrap_interval_covers_a_known_mean_about_95_percent():
  rng = np.random.default_rng(7)
  hits = 0
  trials = 300
  for _ in range(trials):
    d = rng.normal(0.5, 1.0, 60)
    iv = statistics.paired_bootstrap_mean_difference(
        d, np.zeros_like(d), num_resamples=400, seed=int(rng.integers(1e9)))
    hits += iv["low"] <= 0.5 <= iv["high"]
  # Percentile intervals at n=60 cover a little under nominal; a broken
  # interval (too narrow, or shifted) falls far below.
  assert 0.88 <= hits / trials <= 0.99, hits / trials


def test_resampled_map_is_the_map_of_each_resample():
  rng = np.random.default_rng(1)
  targets = (rng.random((30, 5)) < 0.3).astype(int)
  targets[0] = 1  # every class has a positive in the full set
  scores = rng.normal(size=(30, 5)) + targets
  scores[3, 2] = scores[4, 2]  # a tie
  idx = rng.integers(0, 30, (40, 30))
  got = metrics.resampled_mean_average_precision(targets, scores, idx)
  for b in range(40):
    t, s = targets[idx[b]], scores[idx[b]]
    ap = metrics.average_precision_per_class(t, s)
    want = np.nanmean(ap) if np.isfinite(ap).any() else np.nan
    assert got[b] == pytest.approx(want, abs=1e-12)
  full = metrics.resampled_mean_average_precision(
      targets, scores, np.arange(30)[None])
  assert full[0] == pytest.approx(metrics.mean_average_precision(targets,
                                                                 scores))


def test_welch_interval_is_scipys():
  a = np.array([0.31, 0.35, 0.29, 0.33])
  b = np.array([0.27, 0.30, 0.22])
  ours = statistics.welch_interval(a, b)
  ci = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert ours["low"] == pytest.approx(ci.low, rel=1e-10)
  assert ours["high"] == pytest.approx(ci.high, rel=1e-10)
  assert ours["estimate"] == pytest.approx(a.mean() - b.mean())
  one = statistics.welch_interval([0.3], b)
  assert np.isnan(one["low"]) and np.isnan(one["high"])
  assert statistics.verdict(one) == statistics.NOT_SHOWN
  with pytest.raises(ValueError, match="NaN"):
    statistics.welch_interval([0.3, np.nan], b)


def test_t_interval_is_scipys_one_sample_interval():
  v = np.array([0.30, 0.27, 0.35, 0.31])
  ours = statistics.t_interval(v, 0.2)
  ref = scipy.stats.ttest_1samp(v, 0.2).confidence_interval(0.95)
  # scipy's interval is of the mean; ours of the mean minus the reference.
  assert ours["low"] == pytest.approx(ref.low - 0.2)
  assert ours["high"] == pytest.approx(ref.high - 0.2)
  assert np.isnan(statistics.t_interval([0.3], 0.2)["low"])


@pytest.mark.parametrize("k, n", [(0, 5), (3, 7), (7, 7), (1, 40)])
def test_binomial_interval_is_clopper_pearson(k, n):
  ours = statistics.binomial_interval(k, n)
  ref = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
  assert ours["low"] == pytest.approx(ref.low, abs=1e-12)
  assert ours["high"] == pytest.approx(ref.high, abs=1e-12)
  assert ours["estimate"] == pytest.approx(k / n)


def test_verdicts_follow_the_interval_and_the_papers_direction():
  def iv(low, high):
    return {"estimate": (low + high) / 2, "low": low, "high": high}

  assert statistics.verdict(iv(0.01, 0.2)) == statistics.HOLDS
  assert statistics.verdict(iv(-0.2, -0.01)) == statistics.CONTRADICTED
  assert statistics.verdict(iv(-0.01, 0.2)) == statistics.NOT_SHOWN
  assert statistics.verdict(iv(0.0, 0.2)) == statistics.NOT_SHOWN
  assert statistics.verdict(iv(-0.2, -0.01), -1) == statistics.HOLDS
  assert statistics.verdict(iv(0.01, 0.2), -1) == statistics.CONTRADICTED
  assert statistics.verdict(iv(np.nan, np.nan)) == statistics.NOT_SHOWN
  with pytest.raises(ValueError, match="direction"):
    statistics.verdict(iv(0, 1), 0)


def test_undefined_resamples_are_counted_and_too_many_give_no_interval():
  values = np.r_[np.linspace(0, 1, 99), np.nan]
  ok = statistics.percentile_interval(0.5, np.r_[np.linspace(0, 1, 999),
                                                 np.nan])
  assert ok["undefined"] == 1 and np.isfinite(ok["low"])
  bad = statistics.percentile_interval(0.5, np.r_[values, [np.nan] * 5])
  assert bad["undefined"] == 6 and np.isnan(bad["low"])


def test_bad_bootstrap_arguments_are_named():
  with pytest.raises(ValueError, match="at least 2 clips"):
    statistics.draw_resamples(1)
  with pytest.raises(ValueError, match="num_resamples=10"):
    statistics.draw_resamples(10, num_resamples=10)
  with pytest.raises(ValueError, match="group 'a' has no seed"):
    statistics.draw_resamples(10, {"a": 0})
  with pytest.raises(ValueError, match="successes"):
    statistics.binomial_interval(4, 3)
