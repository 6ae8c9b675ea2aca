"""The sonification paper's findings, decided from the analyses' results.

`findings(results)` turns the results the analyses saved (their
results.json: intervals already computed by metrics.statistics) into one
record per claim: what the paper says, the measured effect with its
interval, the test that made it, and the verdict (statistics.verdict:
"holds" only when the interval excludes no effect in the paper's
direction). A claim about a classifier is "not tested at this scale" when
that classifier's own metric is not above chance by its interval: a model
that learned nothing cannot show what its maps hold. `format_findings`
(report.findings) renders them as the markdown table summary.md and the
README quote.
"""
import numpy as np

from recon_jax.metrics import statistics
from recon_jax.report.findings import finding

GROUP_NAMES = {"supervised": "supervised CNN12",
               "fc_only": "fc-only (a linear probe on the SimCLR encoder)",
               "full": "fine-tuned SimCLR encoder"}


def _learned_gate(group_results, metric, label):
  learned = group_results["learned"]
  ok = statistics.verdict(learned) == statistics.HOLDS
  return ok, (f"the {label} is not above chance ({metric} - its metric on "
              f"shuffled clips {statistics.format_interval(learned)})")


def _residual_findings(res) -> list[dict]:
  out = []
  metric, layers = res["metric"], res["layers"]
  for group, g in res["groups"].items():
    label = GROUP_NAMES.get(group, group)
    gate = _learned_gate(g, metric, label)
    per_layer = [statistics.verdict(d) for d in g["drop"]]
    clean = g["clean"]["mean"]
    seeds = len(g["clean"]["values"])
    out.append(finding(
        f"{label}: removing the most active map's sonification lowers "
        f"{metric} (Fig. 6)", g["drop_over_layers"], "",
        f"{metric} drop (clean - residual), mean over blocks "
        f"{', '.join(map(str, layers))}; clean {clean:.3f} (chance "
        f"{res['chance']:.3f}, {seeds} seed{'s' * (seeds > 1)}); the drop "
        f"holds at {per_layer.count(statistics.HOLDS)} of {len(layers)} "
        "blocks", gate=gate))
    out.append(finding(
        f"{label}: ...more than removing a random active map's "
        "sonification (control)", g["versus_random_over_layers"], "",
        f"{metric} with a random active map removed minus with the most "
        "active one removed, mean over blocks", gate=gate))
    out.append(finding(
        f"{label}: ...more than removing white noise of the same energy "
        "(control)", g["versus_noise_over_layers"], "",
        f"{metric} with energy-matched noise removed minus with the most "
        "active map's sonification removed, mean over blocks", gate=gate))
  return out


def _coherence_findings(coh, gates) -> list[dict]:
  out = []
  first, last = coh["layers"][0], coh["layers"][-1]
  for group, t in coh["tests"].items():
    if group == "falls_faster":
      continue
    means = coh["groups"][group]["coherence"]
    out.append(finding(
        f"{group} encoder: input/sonification coherence falls with depth "
        "(Fig. 7)", t["falls"], "",
        f"mean top-{coh['k']} coherence, block {first} - block {last}: "
        f"{means[0]['mean']:.3f} -> {means[-1]['mean']:.3f} "
        f"({len(coh['groups'][group]['seeds'])} seed(s), "
        f"{coh['clips']} clips)"))
  if "falls_faster" in coh["tests"]:
    sup = coh["tests"]["supervised"]["falls"]["estimate"]
    con = coh["tests"]["contrastive"]["falls"]["estimate"]
    out.append(finding(
        "coherence falls faster for the supervised encoder than for the "
        "contrastive one (Fig. 7)", coh["tests"]["falls_faster"], "",
        f"fall (block {first} - block {last}) supervised {sup:.3f} minus "
        f"contrastive {con:.3f}", gate=gates.get("both")))
  return out


def _active_findings(act, gates) -> list[dict]:
  g = act["groups"]
  return [finding(
      f"contrastive deep layers (blocks {', '.join(map(str, act['layers']))})"
      " keep more maps active than supervised ones (Sec. 3.3)",
      act["contrastive_minus_supervised"], "",
      "fraction of maps active for some clip, mean over the blocks: "
      f"contrastive {g['contrastive']['over_layers']['estimate']:.3f}, "
      f"supervised {g['supervised']['over_layers']['estimate']:.3f}",
      gate=gates.get("both"))]


def _evolution_findings(ev) -> list[dict]:
  iv = ev["dead_alive_at_start"]
  layers = ", ".join(str(d["layer"]) for d in ev["dead"])
  claim = ("contrastive maps dead at the end of training were active at "
           "the first checkpoint (Fig. 5: a dead unit starts with a full "
           "spectrogram and fades)")
  first, last = ev["steps"][0], ev["steps"][-1]
  evidence = (f"{iv['successes']} of {iv['trials']} maps of blocks {layers} "
              f"silent on every clip at step {last} were active for some "
              f"clip at step {first}")
  if iv["trials"] == 0:
    return [finding(claim, iv, "", evidence, gate=(
        False, f"no map of blocks {layers} is dead at step {last}"))]
  return [finding(claim, iv, "", evidence)]


def _welch_finding(claim, a, b, what):
  interval = statistics.welch_interval(a, b)
  return finding(claim, interval, "", f"{what}: {np.mean(a):.3f} vs "
                  f"{np.mean(b):.3f} ({len(a)} vs {len(b)} seeds)")


def _layer_importance_findings(li) -> list[dict]:
  out = []
  layers, metric = li["layers"], li["metric"]
  if len(layers) < 2:
    return out
  encoders = li["encoders"]
  for name, e in encoders.items():
    for mode, values in e.get("values", {}).items():
      if values[0] and values[-1]:
        out.append(_welch_finding(
            f"{name} encoder, {mode}: {metric} grows as blocks are added "
            "(Fig. 4)", values[-1], values[0],
            f"block {layers[-1]} vs block {layers[0]}"))
  sup = encoders.get("supervised", {}).get("values", {}).get("fc_only")
  con = encoders.get("contrastive", {}).get("values", {}).get("fc_only")
  if sup and con and sup[-1] and con[-1]:
    out.append(_welch_finding(
        f"in domain, fc-only: the supervised encoder beats the contrastive "
        f"one at block {layers[-1]} (Fig. 4)", sup[-1], con[-1],
        f"{metric} at block {layers[-1]}, supervised vs contrastive"))
  return out


def findings(results: dict) -> list[dict]:
  """The paper's findings on these results: [{finding, verdict, estimate,
  low, high, level, direction, test, evidence}], for the analyses run.

  results: {analysis name: its results dict}. The whole-encoder runs'
  claims (fine-tuning vs supervised, ...) are report.cnn12_tables'.
  """
  out, gates = [], {}
  res = results.get("residual_test")
  if res:
    groups = res["groups"]
    if "supervised" in groups and "fc_only" in groups:
      ok = [_learned_gate(groups[g], res["metric"], GROUP_NAMES[g])
            for g in ("supervised", "fc_only")]
      gates["both"] = (all(o for o, _ in ok),
                       "; ".join(w for o, w in ok if not o))
    out += _residual_findings(res)
  if results.get("coherence") and len(results["coherence"]["layers"]) >= 2:
    out += _coherence_findings(results["coherence"], gates)
  if results.get("active_maps"):
    out += _active_findings(results["active_maps"], gates)
  if results.get("feature_evolution", {}).get("dead"):
    out += _evolution_findings(results["feature_evolution"])
  if results.get("layer_importance"):
    out += _layer_importance_findings(results["layer_importance"])
  return out
