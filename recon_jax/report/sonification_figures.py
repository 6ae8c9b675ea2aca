"""The sonification paper's per-layer figures as PNGs (written atomically):
Fig. 4 (layer importance), Fig. 6 (residual test), Fig. 7 (coherence).

Each takes the results dict of the matching analysis in
recon_jax.experiments.sonification and draws means with 95% intervals
(error bars where an interval exists, i.e. over two or more runs).
"""
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from recon_jax import provenance  # noqa: E402

COLOURS = {"supervised": "tab:green", "contrastive": "tab:red",
           "fc_only": "tab:blue", "full": "tab:orange"}


def _write(fig, path) -> str:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
  plt.close(fig)
  return provenance.write_bytes_atomic(path, buf.getvalue())


def _errorbars(ci):
  return [0.0 if c is None or not math.isfinite(c) else c for c in ci]


def _line(ax, layers, mean, ci, label, colour, style="-"):
  ax.errorbar(layers, mean, yerr=_errorbars(ci), label=label, color=colour,
              linestyle=style, marker="o", capsize=3)


def residual_figure(path: str, results: dict) -> str:
  """Fig. 6: metric on residuals per layer, dashed clean baselines."""
  fig, ax = plt.subplots(figsize=(6.5, 4))
  layers = results["layers"]
  for group, v in results["groups"].items():
    colour = COLOURS.get(group, None)
    _line(ax, layers, [r["mean"] for r in v["residual"]],
          [r["ci95"] for r in v["residual"]], f"{group}: residual", colour)
    if "random_map" in v:  # The control: a random active map removed.
      _line(ax, layers, [r["mean"] for r in v["random_map"]],
            [r["ci95"] for r in v["random_map"]],
            f"{group}: random map removed", colour, ":")
    ax.axhline(v["clean"]["mean"], color=colour, linestyle="--",
               label=f"{group}: clean")
  ax.set_xlabel("layer (block) whose most active map is removed")
  ax.set_ylabel(results["metric"])
  ax.set_xticks(layers)
  ax.set_title("Residual test: the metric on x - s")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return _write(fig, path)


def coherence_figure(path: str, results: dict) -> str:
  """Fig. 7: mean top-k coherence of input and sonification per layer."""
  fig, ax = plt.subplots(figsize=(6.5, 4))
  layers = results["layers"]
  for group, v in results["groups"].items():
    _line(ax, layers, [c["mean"] for c in v["coherence"]],
          [c["ci95"] for c in v["coherence"]], group, COLOURS.get(group))
  ax.set_xlabel("layer (block)")
  ax.set_ylabel(f"mean top-{results['k']} coherence")
  ax.set_xticks(layers)
  ax.set_ylim(0, 1.02)
  ax.set_title(f"Input vs sonification of the most active map "
               f"({results['method']}, {results['clips']} clips)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return _write(fig, path)


def layer_importance_figure(path: str, results: dict) -> str:
  """Fig. 4: metric of a classifier on the encoder cut after each layer,
  per encoder and mode; dashed lines: the whole encoder's runs."""
  fig, ax = plt.subplots(figsize=(6.5, 4))
  layers = results["layers"]
  styles = {"fc_only": "-", "full": ":"}
  for encoder, v in results["encoders"].items():
    for mode, mean in v["mean"].items():
      _line(ax, layers, mean, v["ci95"][mode], f"{encoder}, {mode}",
            COLOURS.get(encoder), styles.get(mode, "-"))
  for label, b in results.get("baselines", {}).items():
    encoder = label.split("/")[0]
    ax.axhline(b["mean"], color=COLOURS.get(encoder), linestyle="--",
               alpha=0.6, label=f"{label}, whole encoder")
  ax.set_xlabel("last block kept")
  ax.set_ylabel(results["metric"])
  ax.set_xticks(layers)
  ax.set_title("Layer importance")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return _write(fig, path)

