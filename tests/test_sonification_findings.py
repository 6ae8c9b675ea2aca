"""The paper's findings decided by statistics, on known cases: the residual
test's intervals (against a plain loop over bootstrap resamples), its
controls and its chance gate, the coherence tests, the verdicts and the
table summary.md and the README quote."""
import ml_collections
import numpy as np
import pytest
import scipy.stats

from recon_jax import provenance

from recon_jax.data.clips import ClipStore
from recon_jax.experiments import sonification_measures as measures
from recon_jax.metrics import statistics
from recon_jax.report import cnn12_tables
from recon_jax.report import findings as findings_report
from recon_jax.report import sonification_findings as findings

N, C, LAYERS = 120, 6, (1, 5)


def _config(num_resamples=400):
  return ml_collections.ConfigDict({
      "layers": LAYERS,
      "statistics": {"num_resamples": num_resamples, "seed": 0,
                     "level": 0.95}})


def _store(labels):
  n = len(labels)
  return ClipStore(np.zeros(n * 10, np.float32), np.arange(n) * 10,
                   np.full(n, 10), labels, C)


def _logits(labels, accuracy, rng):
  """(N, C) logits whose arg-max is right on about `accuracy` of clips."""
  z = rng.normal(size=(len(labels), C))
  right = rng.random(len(labels)) < accuracy
  z[np.arange(len(labels)), labels] += np.where(right, 10.0, -10.0)
  return z


def _residual_case(rng, clean, most_active, random_map, noise, seeds=(0, 1, 2)):
  labels = rng.integers(0, C, N).astype(np.int32)
  logits = {}
  for s in seeds:
    logits[f"supervised/seed_{s}/clean"] = _logits(labels, clean, rng)
    for l in LAYERS:
      for cond, acc in zip(measures.CONDITIONS,
                           (most_active, random_map, noise)):
        logits[f"supervised/seed_{s}/L{l}/{cond}"] = _logits(labels, acc,
                                                             rng)
  return _store(labels), logits, {"supervised": list(seeds)}


def test_residual_intervals_are_the_bootstrap_a_loop_computes():
  rng = np.random.default_rng(0)
  store, logits, seeds = _residual_case(rng, 0.8, 0.4, 0.75, 0.78)
  config = _config()
  metric = measures.ClipMetric(store)
  res = measures.residual_statistics(config, metric, logits, seeds)
  g = res["groups"]["supervised"]
  drawn = statistics.draw_resamples(N, {"supervised": 3},
                                    num_resamples=400, seed=0)

  def acc(z, idx):
    return np.mean(z.argmax(-1)[idx] == store.labels[idx])

  loop = []
  for b in range(400):
    idx = drawn.clips[b]
    loop.append(np.mean([
        acc(logits[f"supervised/seed_{s}/clean"], idx)
        - acc(logits[f"supervised/seed_{s}/L5/most_active"], idx)
        for s in drawn.seeds["supervised"][b]]))
  low, high = np.quantile(loop, [0.025, 0.975])
  drop = g["drop"][1]
  assert drop["low"] == pytest.approx(low, abs=1e-12)
  assert drop["high"] == pytest.approx(high, abs=1e-12)
  assert drop["estimate"] == pytest.approx(np.mean([
      acc(logits[f"supervised/seed_{s}/clean"], np.arange(N))
      - acc(logits[f"supervised/seed_{s}/L5/most_active"], np.arange(N))
      for s in range(3)]))
  assert res["chance"] == pytest.approx(1 / C)
  found = {f["finding"]: f for f in findings.findings({"residual_test": res})}
  verdicts = [f["verdict"] for f in found.values()]
  assert verdicts == [statistics.HOLDS] * 3, found


def test_residual_verdicts_not_shown_contradicted_and_not_tested():
  rng = np.random.default_rng(1)
  config = _config()
  # Removing the map changes nothing: no effect shown.
  store, logits, seeds = _residual_case(rng, 0.8, 0.8, 0.8, 0.8)
  for key in list(logits):
    if "/L" in key:
      logits[key] = logits[key.split("/L")[0] + "/clean"]
  res = measures.residual_statistics(config, measures.ClipMetric(store),
                                     logits, seeds)
  drop = findings.findings({"residual_test": res})[0]
  assert drop["verdict"] == statistics.NOT_SHOWN
  assert drop["low"] == drop["high"] == 0
  # Removing it helps: the paper's direction is contradicted.
  store, logits, seeds = _residual_case(rng, 0.5, 0.9, 0.5, 0.5)
  res = measures.residual_statistics(config, measures.ClipMetric(store),
                                     logits, seeds)
  drop, versus_random, _ = findings.findings({"residual_test": res})
  assert drop["verdict"] == statistics.CONTRADICTED
  assert versus_random["verdict"] == statistics.CONTRADICTED
  # A classifier at chance tests nothing, whatever its residuals do.
  store, logits, seeds = _residual_case(rng, 1 / C, 0.0, 1 / C, 1 / C)
  res = measures.residual_statistics(config, measures.ClipMetric(store),
                                     logits, seeds)
  found = findings.findings({"residual_test": res})
  assert [f["verdict"] for f in found] == [statistics.NOT_TESTED] * 3
  assert "is not above chance" in found[0]["evidence"]


def test_residual_mAP_of_a_multilabel_store():
  rng = np.random.default_rng(2)
  labels = (rng.random((N, C)) < 0.3).astype(np.float32)
  store = _store(labels)
  logits = {"full/seed_0/clean": labels * 4 + rng.normal(size=(N, C))}
  for l in LAYERS:
    for cond in measures.CONDITIONS:
      logits[f"full/seed_0/L{l}/{cond}"] = rng.normal(size=(N, C))
  res = measures.residual_statistics(_config(), measures.ClipMetric(store),
                                     logits, {"full": [0]})
  assert res["metric"] == "mAP"
  assert res["chance"] == pytest.approx(labels.mean(0).mean())
  g = res["groups"]["full"]
  assert statistics.verdict(g["learned"]) == statistics.HOLDS
  assert statistics.verdict(g["drop_over_layers"]) == statistics.HOLDS
  # One seed: the spread over seeds is undefined, the bootstrap is not.
  assert np.isnan(g["clean"]["ci95"])


def test_coherence_tests_on_known_per_clip_values():
  rng = np.random.default_rng(3)
  config = _config()
  sup = np.stack([np.stack([rng.uniform(0.8, 1.0, N),
                            rng.uniform(0.3, 0.5, N)]) for _ in range(3)])
  con = np.stack([np.stack([rng.uniform(0.8, 1.0, N),
                            rng.uniform(0.6, 0.8, N)]) for _ in range(3)])
  sup[0, 1, :5] = np.nan  # silent sonifications are left out
  tests = measures.coherence_statistics(config, {"supervised": sup,
                                                 "contrastive": con})
  assert statistics.verdict(tests["supervised"]["falls"]) == statistics.HOLDS
  assert statistics.verdict(tests["falls_faster"]) == statistics.HOLDS
  want = np.mean(np.nanmean(sup[:, 0], -1) - np.nanmean(sup[:, 1], -1))
  assert tests["supervised"]["falls"]["estimate"] == pytest.approx(want)
  # Same fall in both: not shown.
  same = measures.coherence_statistics(config, {"supervised": con,
                                                "contrastive": con.copy()})
  assert statistics.verdict(same["falls_faster"]) == statistics.NOT_SHOWN


def test_findings_table_quotes_verdict_interval_and_test():
  rng = np.random.default_rng(0)
  store, logits, seeds = _residual_case(rng, 0.8, 0.4, 0.75, 0.78)
  res = measures.residual_statistics(_config(), measures.ClipMetric(store),
                                     logits, seeds)
  found = findings.findings({"residual_test": res})
  table = findings_report.format_findings(found)
  assert table.count("\n") == len(found) + 2
  for f in found:
    assert f"| **{f['verdict']}** | {statistics.format_interval(f)} |" in table
  assert "paired bootstrap over 120 clips, seeds redrawn" in table


def test_model_level_claims_by_welch_over_seeds(tmp_path):
  def run(folder, metric, values, chance):
    provenance.write_json_atomic(str(tmp_path / folder / "summary.json"), {
        "seeds": list(range(len(values))), "metrics": {
            f"test/{metric}": {"mean": float(np.mean(values)), "ci95": 0.01,
                               "values": values},
            f"chance/{metric}": {"mean": chance, "ci95": float("nan"),
                                 "values": [chance] * len(values)}}})

  run("cnn12_events", "mAP", [0.30, 0.31, 0.29], 0.18)
  run("cnn12_finetune_events", "mAP", [0.40, 0.39, 0.41], 0.18)
  run("cnn12_probe_events", "mAP", [0.18, 0.185, 0.178], 0.18)
  run("cnn12_keywords", "accuracy", [0.5, 0.6, 0.55], 1 / 35)
  t = cnn12_tables.cnn12_tables(str(tmp_path))
  assert [r["run"] for r in t["rows"]] == ["cnn12_events",
                                           "cnn12_probe_events",
                                           "cnn12_finetune_events",
                                           "cnn12_keywords"]
  fine, probe = t["findings"]  # the keyword fine-tune run is missing
  ref = scipy.stats.ttest_ind([0.40, 0.39, 0.41], [0.30, 0.31, 0.29],
                              equal_var=False).confidence_interval(0.95)
  assert (fine["low"], fine["high"]) == pytest.approx((ref.low, ref.high))
  assert fine["verdict"] == statistics.HOLDS
  assert fine["test"] == "Welch t over seeds (3 vs 3)"
  # The probe is at chance: the claim it is in is not tested.
  assert probe["verdict"] == statistics.NOT_TESTED
  assert "cnn12_probe_events is not above chance" in probe["evidence"]
  table = cnn12_tables.format_table(t)
  assert "| `cnn12_events` | events | supervised, sigmoid BCE | 3 | test mAP " \
         "0.300 ± 0.010 | 0.180 |" in table


def test_coherence_over_maps_resamples_each_layers_maps():
  rng = np.random.default_rng(4)
  config = _config(300)
  values = {g: [[rng.uniform(0.7, 0.9, 8), rng.uniform(lo, lo + 0.2, 32)]
                for _ in range(3)]
            for g, lo in (("supervised", 0.2), ("contrastive", 0.5))}
  values["supervised"][0][1][:4] = np.nan  # maps with no usable clip
  tests = measures.coherence_statistics_over_maps(config, values)
  assert statistics.verdict(tests["supervised"]["falls"]) == statistics.HOLDS
  assert statistics.verdict(tests["falls_faster"]) == statistics.HOLDS
  want = np.mean([np.nanmean(s[0]) - np.nanmean(s[1])
                  for s in values["supervised"]])
  assert tests["supervised"]["falls"]["estimate"] == pytest.approx(want)
  assert "bootstrap over maps (8 of the first layer, 32 of the last" in (
      tests["falls_faster"]["method"])
  one = measures.coherence_statistics_over_maps(config, {
      "supervised": [[np.array([0.9]), np.array([0.5, 0.4])]]})
  assert np.isnan(one["supervised"]["falls"]["low"])
