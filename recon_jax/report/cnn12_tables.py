"""The README's CNN12 table and its model-level findings, from the runs.

`cnn12_tables(runs_dir)` reads the summary.json of every run that
experiments/cnn12_tables.sh trains (a missing run is left out) and returns
the rows (test metric, mean and 95% t-interval over seeds, and chance) and
the paper's model-level claims decided by Welch's t over seeds
(metrics.statistics), each model first checked to be above chance (the
one-sample t-interval of its metric minus chance). `format_table` and
`format_findings` render them; the README quotes them (readme_quote).
"""
import os

import numpy as np

from recon_jax import provenance
from recon_jax.metrics import statistics
from recon_jax.report import findings as findings_report

# (run folder, data, what was trained, the paper's number on real data).
RUNS = (
    ("cnn12_events", "events", "supervised, sigmoid BCE",
     "mAP 0.362 ± 0.006 (FSD50K, Table A.4)"),
    ("cnn12_simclr", "events", "SimCLR (NT-Xent, global negatives)",
     "not reported (pretrained on AudioSet; evaluated by the rows below)"),
    ("cnn12_probe_events", "events", "fc-only on the SimCLR encoder",
     "mAP 0.306 ± 0.007 (FSD50K, AudioSet-pretrained, Table A.4)"),
    ("cnn12_finetune_events", "events",
     "full fine-tuning of the SimCLR encoder",
     "mAP 0.424 ± 0.004 (Table A.4)"),
    ("cnn12_keywords", "keywords", "supervised, softmax CE",
     "accuracy 0.923 ± 0.005 (Speech Commands v2, Table A.6)"),
    ("cnn12_probe_keywords", "keywords",
     "fc-only on the SimCLR encoder (pretrained on events)",
     "accuracy 0.295 ± 0.006 (Table A.6)"),
    ("cnn12_finetune_keywords", "keywords",
     "full fine-tuning of the same encoder",
     "accuracy 0.934 ± 0.007 (Table A.6)"),
)
# (claim, better run, worse run): the paper's model-level claims.
CLAIMS = (
    ("in domain (events), fine-tuning the SimCLR encoder beats supervised "
     "training from scratch (Table A.4)", "cnn12_finetune_events",
     "cnn12_events"),
    ("in domain (events), supervised training beats the fc-only probe of "
     "the SimCLR encoder (Table A.4)", "cnn12_events", "cnn12_probe_events"),
    ("out of domain (keywords, encoder pretrained on events), fine-tuning "
     "beats supervised training from scratch (Table A.6)",
     "cnn12_finetune_keywords", "cnn12_keywords"),
)


def _test_metric(metrics: dict):
  for name in ("mAP", "accuracy"):
    if f"test/{name}" in metrics:
      return name
  return None


def cnn12_tables(runs_dir: str) -> dict:
  """{"rows": [...], "findings": [...]} from the runs in `runs_dir`."""
  rows, values = [], {}
  for folder, data, what, paper in RUNS:
    path = os.path.join(runs_dir, folder, "summary.json")
    if not os.path.exists(path):
      continue
    summary = provenance.read_json(path)
    m = summary["metrics"]
    row = {"run": folder, "data": data, "training": what, "paper": paper,
           "seeds": len(summary["seeds"])}
    name = _test_metric(m)
    if name:
      chance = m[f"chance/{name}"]["mean"]
      row.update(metric=f"test {name}", mean=m[f"test/{name}"]["mean"],
                 ci95=m[f"test/{name}"]["ci95"], chance=chance)
      values[folder] = (m[f"test/{name}"]["values"], chance, name)
      row["above_chance"] = statistics.t_interval(
          m[f"test/{name}"]["values"], chance)
    elif "validation/pair_top1" in m:
      row.update(metric="held-out pair top-1",
                 mean=m["validation/pair_top1"]["mean"],
                 ci95=m["validation/pair_top1"]["ci95"],
                 chance=m["validation/pair_top1_chance"]["mean"],
                 collapsed=m["validation/collapsed"]["mean"])
    rows.append(row)
  found = []
  for claim, better, worse in CLAIMS:
    if better not in values or worse not in values:
      continue
    (a, _, name), (b, _, _) = values[better], values[worse]
    interval = statistics.welch_interval(a, b)
    ok = [r for r in rows if r["run"] in (better, worse)]
    learned = all(statistics.verdict(r["above_chance"]) == statistics.HOLDS
                  for r in ok)
    why = "; ".join(f"{r['run']} is not above chance ({r['metric']} - "
                    f"chance {statistics.format_interval(r['above_chance'])}"
                    ")" for r in ok if statistics.verdict(
                        r["above_chance"]) != statistics.HOLDS)
    found.append(findings_report.finding(
        claim, interval, "",
        f"test {name} {np.mean(a):.3f} ({better}) vs {np.mean(b):.3f} "
        f"({worse}), {len(a)} vs {len(b)} seeds",
        gate=(learned, why)))
  return {"rows": rows, "findings": found}


def format_table(tables: dict) -> str:
  lines = ["| run | data | training | seeds | test metric (mean ± 95% "
           "t-interval) | chance | the paper (real data, full width) |",
           "|---|---|---|---|---|---|---|"]
  for r in tables["rows"]:
    ci = ("" if not np.isfinite(r["ci95"]) else f" ± {r['ci95']:.3f}")
    extra = " (COLLAPSED)" if r.get("collapsed") else ""
    lines.append(f"| `{r['run']}` | {r['data']} | {r['training']} | "
                 f"{r['seeds']} | {r['metric']} {r['mean']:.3f}{ci}{extra} | "
                 f"{r['chance']:.3f} | {r['paper']} |")
  return "\n".join(lines) + "\n"


def format_findings(tables: dict) -> str:
  return findings_report.format_findings(tables["findings"])
