"""Writes the comparison experiment's outputs (recon_jax.experiments.
comparison: every inversion method x both networks x layers).

Everything here only formats and writes; the numbers come computed.
  result_row, markdown_table, best_lines, decoder_lines   the table
  write_figure    one example, method x layer, per network
  write_wavs      originals and each cell's audio
  write_results   results.json and results.md
  summary_section the Markdown a summary page shows (the table, the caption,
                  the best methods, the figures), read from a finished
                  comparison folder
  page_section    the same for the offline page (report.sonification_page's
                  "comparison" entry), its figures and WAVs copied into the
                  page's folder
"""
import os
import shutil

import numpy as np

from recon_jax import provenance
from recon_jax.report import audio as audio_report
from recon_jax.report import figures
from recon_jax.report import sonification_media as media

NETWORKS = ("phone_cnn", "cnn12")
MEASURES = ("mxcorr2", "waveform_mxcorr", "coherence", "R")
METHOD_NAMES = {"sonify": "Sonification (1 map)", "backprop": "Backprop",
                "annealing": "Sim. annealing", "decoder": "Decoding",
                "decoder_backprop": "Dec. and backpr."}
NETWORK_NAMES = {"phone_cnn": "phone CNN", "cnn12": "CNN12"}
MEASURE_NAMES = {"mxcorr2": "mxcorr2", "waveform_mxcorr": "waveform mxcorr",
                 "coherence": "coherence", "R": "R"}
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"

CAPTION = (
    "Mean ± s.e.m. over each network's examples; rows in italics are "
    "references (what keeping nothing scores; for the phone CNN also the "
    "STFT round trip, the ceiling Griffin-Lim puts on the audio measures). "
    "**Sonification inverts ONE feature map** (each example's most active "
    "map of the layer, through the deconvnet, which unpools at the "
    "example's own pooling switches: information beyond the activation) "
    "while the other methods invert the layer's WHOLE activation alone "
    "(decoders with blind unpooling), so its scores say how much of the "
    "input one map's path keeps, not how well the layer can be inverted. "
    "mxcorr2: "
    "spectrogram cross-correlation (phone CNN: its input spectrograms; "
    "CNN12: log-magnitude STFTs); waveform mxcorr and coherence (mean top-k "
    "magnitude-squared coherence) compare the original audio with the "
    "reconstruction's audio (phone CNN: Griffin-Lim of the spectrogram; "
    "CNN12: the waveform itself); R: Euclidean error in the input domain "
    "(a sonification's level is set by its scaling). 'left out': examples "
    "whose reconstruction diverged or whose sonification is silent, counted "
    "and not averaged; 'n/a': the deconvnet does not run back through dense "
    "layers.")


def result_row(network, method, layer, cell) -> dict:
  row = {"network": network, "method": method, "layer": int(layer)}
  if "not_applicable" in cell:
    return {**row, "not_applicable": True}
  left = np.asarray(cell["left_out"], bool)
  row.update(num_examples=int(len(left)), num_left_out=int(left.sum()),
             not_applicable=False)
  for m in MEASURES:
    v = np.asarray(cell[f"measure_{m}"], np.float64)
    v = v[np.isfinite(v)]
    row[f"{m}_mean"] = float(np.mean(v)) if len(v) else float("nan")
    row[f"{m}_sem"] = (float(np.std(v, ddof=1) / np.sqrt(len(v)))
                       if len(v) > 1 else 0.0)
    row[f"{m}_count"] = int(len(v))
  if "decoder_source" in cell:
    row["decoder"] = str(cell["decoder_source"])
    row["decoder_steps"] = [int(v) for v in cell["decoder_steps"]]
  if "seconds" in cell:
    row["seconds"] = float(cell["seconds"])
  return row


def _fmt(row, m):
  """mean ± s.e.m.; how many examples it is over when some kept examples
  have no value (coherence of a silent reconstruction is undefined)."""
  mean = row.get(f"{m}_mean", float("nan"))
  kept = row["num_examples"] - row["num_left_out"]
  if not np.isfinite(mean):
    return "undefined (silent)" if kept else "—"
  text = f"{mean:.3f} ± {row[f'{m}_sem']:.3f}"
  if row[f"{m}_count"] < kept:
    text += f" (over {row[f'{m}_count']}; {kept - row[f'{m}_count']} silent)"
  return text


TABLE_COLUMNS = ("network", "method", "layer", "mxcorr2", "waveform mxcorr",
                 "coherence", "R", "left out")


def table_rows(rows, baselines=None) -> list[tuple[list[str], bool]]:
  """The table's cells as text, one (cells, is_reference) per line: the
  result rows, then the references (what keeping nothing scores)."""
  out = []
  for r in rows:
    head = [NETWORK_NAMES[r["network"]], METHOD_NAMES[r["method"]],
            f"L{r['layer']}"]
    if r["not_applicable"]:
      out.append((head + ["n/a"] * len(MEASURES) + ["—"], False))
    else:
      out.append((head + [_fmt(r, m) for m in MEASURES]
                  + [f"{r['num_left_out']}/{r['num_examples']}"], False))
  for b in baselines or ():
    out.append(([NETWORK_NAMES[b["network"]], b["what"], "—"]
                + ["—" if b.get(m) is None else f"{b[m]:.3f}"
                   for m in MEASURES] + ["—"], True))
  return out


def markdown_table(rows, baselines=None) -> str:
  lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
           "|" + "---|" * len(TABLE_COLUMNS)]
  for cells, reference in table_rows(rows, baselines):
    if reference:
      cells = [cells[0], f"*{cells[1]}*"] + cells[2:]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def best_methods(rows, measures_=("mxcorr2", "coherence")) -> list[dict]:
  """Per (network, layer, measure): the method with the highest mean (the
  whole-layer methods and sonification ranked apart)."""
  out = []
  keys = sorted({(r["network"], r["layer"]) for r in rows},
                key=lambda k: (NETWORKS.index(k[0]), k[1]))
  for network, layer in keys:
    cell_rows = [r for r in rows if r["network"] == network and
                 r["layer"] == layer and not r["not_applicable"]]
    for m in measures_:
      scored = [(r[f"{m}_mean"], r["method"]) for r in cell_rows
                if r["method"] != "sonify" and np.isfinite(r[f"{m}_mean"])]
      if scored:
        value, method = max(scored)
        out.append({"network": network, "layer": layer, "measure": m,
                    "method": method, "value": value})
  return out


def kept_nothing(references, network: str, measure: str):
  """What a reconstruction that kept nothing scores (None: not defined)."""
  for b in references or ():
    if b["network"] == network and "kept nothing" in b["what"]:
      return b.get(measure)
  return None


def best_lines(rows, references=None) -> list[str]:
  """Per network and measure: the best whole-layer method at each layer
  (flagged when it is not above what keeping nothing scores), and the
  sonification's own scores beside them."""
  lines = []
  best = best_methods(rows)
  for network in NETWORKS:
    for m in ("mxcorr2", "coherence"):
      picks = [b for b in best if b["network"] == network and
               b["measure"] == m]
      if not picks:
        continue
      floor = kept_nothing(references, network, m)
      parts = []
      for b in picks:
        part = (f"L{b['layer']} {METHOD_NAMES[b['method']]} "
                f"({b['value']:.3f}")
        if floor is not None and b["value"] <= floor:
          part += f", not above kept-nothing's {floor:.3f}"
        parts.append(part + ")")
      sonified = [r for r in rows if r["network"] == network and
                  r["method"] == "sonify" and not r["not_applicable"] and
                  np.isfinite(r[f"{m}_mean"])]
      tail = ("; sonification (one map): " + ", ".join(
          f"L{r['layer']} {r[f'{m}_mean']:.3f}" for r in sonified)
              if sonified else "")
      lines.append(f"best by {MEASURE_NAMES[m]}, {NETWORK_NAMES[network]}: "
                   + ", ".join(parts) + tail)
  return lines


def decoder_lines(rows) -> list[str]:
  """Where each network's decoders came from, and their training steps."""
  lines = []
  for network in NETWORKS:
    found = {}
    for r in rows:
      if r["network"] == network and "decoder" in r:
        steps = r.get("decoder_steps", [-1, -1])
        where = os.path.dirname(r["decoder"])
        found.setdefault((where, tuple(steps)), set()).add(r["layer"])
    for (where, (stage, fine)), layers in sorted(found.items()):
      lines.append(f"{NETWORK_NAMES[network]} decoders of layers "
                   f"{sorted(layers)}: {where} ({stage} steps per stage, "
                   f"then {fine} fine-tuning steps)")
  return lines


def write_figure(path, network, example_id, original, cells, layers,
                 methods, sample_rate, mean_spectrogram=None) -> str:
  """One example's original and reconstructions: rows = methods, columns =
  the original, then each layer (blank: not applicable or left out).

  original: the example's network input; cells[(method, layer)]: the cell's
  arrays with 'reconstructions' (of this one example) and 'left_out'.
  mean_spectrogram: the phone CNN's training mean (added back; its images
  are log magnitudes); None for waveforms (dB spectrograms).
  """
  def image(x):
    if mean_spectrogram is not None:
      return np.maximum(np.asarray(x) + mean_spectrogram, 0.0)
    return media.log_spectrogram(np.asarray(x), sample_rate)[2]
  rows = []
  for method in methods:
    row = [image(original)]
    for layer in layers:
      cell = cells[method, layer]
      if "not_applicable" in cell or cell["left_out"]:
        row.append(None)
      else:
        row.append(image(cell["reconstructions"]))
    rows.append(row)
  what = ("spectrogram (log magnitude)" if mean_spectrogram is not None
          else "spectrogram of the waveform (dB)")
  return figures.spectrogram_grid(
      path, rows, [METHOD_NAMES[m] for m in methods],
      ["original"] + [f"L{l}" for l in layers],
      title=f"{NETWORK_NAMES[network]}, example {example_id}: {what}; "
      "sonification: one map", log_scale=mean_spectrogram is not None)


def safe_name(name: str) -> str:
  return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]


def write_wavs(folder, ids, originals, cells, layers, methods, sample_rate,
               num_examples: int) -> list:
  """ex<j>_<id>_original.wav and ex<j>_<id>_<method>_L<layer>.wav (the
  cell's audio) for the first num_examples examples; left out and not
  applicable cells have none."""
  paths = []
  for j in range(min(num_examples, len(ids))):
    stem = f"ex{j}_{safe_name(ids[j])}"
    paths.append(audio_report.write_wav(
        os.path.join(folder, f"{stem}_original.wav"), originals[j],
        sample_rate))
    for method in methods:
      for layer in layers:
        cell = cells[method, layer]
        if "not_applicable" in cell or cell["left_out"][j]:
          continue
        paths.append(audio_report.write_wav(
            os.path.join(folder, f"{stem}_{method}_L{layer}.wav"),
            cell["audio"][j], sample_rate))
  return paths


def write_results(workdir, rows, references, examples, intro) -> tuple:
  """results.json and results.md; returns (paths, table, best lines)."""
  table = markdown_table(rows, references)
  best = best_lines(rows, references)
  results = {"rows": rows, "baselines": references,
             "best": best_methods(rows), "examples": examples,
             "caption": CAPTION}
  paths = [provenance.write_json_atomic(
      os.path.join(workdir, RESULTS_JSON), results)]
  md = ["# Inversion methods x networks x layers", "", intro, "", table,
        CAPTION, "", *[f"- {l}" for l in best + decoder_lines(rows)], ""]
  paths.append(provenance.write_text_atomic(
      os.path.join(workdir, RESULTS_MD), "\n".join(md)))
  return paths, table, best


def summary_section(folder: str, root: str | None = None) -> list[str]:
  """Markdown lines for a summary page: the comparison's table, caption,
  best methods and figures, read from a finished comparison folder (paths
  relative to `root`, default the folder's parent); [] if it has no
  results yet."""
  path = os.path.join(folder, RESULTS_JSON)
  if not os.path.exists(path):
    return []
  results = provenance.read_json(path)
  root = root or os.path.dirname(os.path.abspath(folder))
  rows = results["rows"]
  out = ["## Every method on both networks", "",
         "Sonification and the thesis's four reconstruction methods on the "
         "phone CNN and CNN12, layer by layer:", "",
         markdown_table(rows, results["baselines"]).rstrip("\n"), "",
         results["caption"], ""]
  out += [f"- {l}" for l in best_lines(rows, results["baselines"])] + [""]
  for network in NETWORKS:
    figure = os.path.join(folder, f"figure_{network}.png")
    if os.path.exists(figure):
      rel = os.path.relpath(figure, root)
      out += [f"![{os.path.basename(rel)}]({rel})", "",
              f"*{rel}*: one {NETWORK_NAMES[network]} example reconstructed "
              "by each method (rows) from each layer (columns).", ""]
  wavs = os.path.join(folder, "wavs")
  if os.path.isdir(wavs):
    out += [f"Listen: `{os.path.relpath(wavs, root)}/` holds the originals "
            "and every cell's reconstruction as WAVs.", ""]
  return out


PAGE_FOLDER = "comparison"  # inside the page's folder


def _wav_stem(j: int, example_id: str) -> str:
  return f"ex{j}_{safe_name(example_id)}"


def page_section(folder: str, page_dir: str) -> dict:
  """The offline page's "comparison" entry for a finished comparison folder
  (see recon_jax.report.sonification_page), its figures and WAVs copied
  into page_dir/comparison/ (replacing what an earlier comparison put
  there, in one rename).

  Raises:
    FileNotFoundError: the folder holds no finished comparison.
  """
  path = os.path.join(folder, RESULTS_JSON)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{folder} holds no finished comparison (no "
                            f"{RESULTS_JSON})")
  results = provenance.read_json(path)
  rows = results["rows"]
  staging = os.path.join(page_dir, f".{PAGE_FOLDER}.partial")
  if os.path.exists(staging):
    shutil.rmtree(staging)
  os.makedirs(staging)
  networks = []
  for network in NETWORKS:
    if network not in results["examples"]:
      continue
    examples = results["examples"][network]
    mine = [r for r in rows if r["network"] == network]
    methods = list(dict.fromkeys(r["method"] for r in mine))
    layers = sorted({r["layer"] for r in mine})
    entry = {"name": NETWORK_NAMES[network],
             "sample_rate": int(examples["sample_rate"]),
             "methods": [METHOD_NAMES[m] for m in methods],
             "layers": layers, "examples": []}
    figure = os.path.join(folder, f"figure_{network}.png")
    if os.path.exists(figure):
      rel = f"{PAGE_FOLDER}/figure_{network}.png"
      shutil.copyfile(figure, os.path.join(staging, os.path.basename(rel)))
      entry["figure_png"] = rel
      shown = examples.get("figure_example")
      entry["figure_caption"] = (
          f"{'example ' + shown if shown else 'one example'}: each method "
          "(rows) from each layer (columns); blank: not applicable or left "
          "out")
    src = os.path.join(folder, "wavs", network)
    for j, example_id in enumerate(examples["ids"]):
      stem = _wav_stem(j, example_id)
      if not os.path.exists(os.path.join(src, f"{stem}_original.wav")):
        break  # WAVs are written for the first num_wav_examples only
      def copied(name):
        os.makedirs(os.path.join(staging, "wavs", network), exist_ok=True)
        shutil.copyfile(os.path.join(src, name),
                        os.path.join(staging, "wavs", network, name))
        return f"{PAGE_FOLDER}/wavs/{network}/{name}"
      cells = []
      for r in mine:
        cell = {"method": METHOD_NAMES[r["method"]], "layer": r["layer"]}
        name = f"{stem}_{r['method']}_L{r['layer']}.wav"
        if r["not_applicable"]:
          cell["none"] = "n/a: the deconvnet does not run back through " \
                         "dense layers"
        elif os.path.exists(os.path.join(src, name)):
          cell["wav"] = copied(name)
        else:
          cell["none"] = "left out: diverged, or its sonification is silent"
        cells.append(cell)
      entry["examples"].append({"clip": str(example_id),
                                "original_wav": copied(
                                    f"{stem}_original.wav"),
                                "cells": cells})
    networks.append(entry)
  dst = os.path.join(page_dir, PAGE_FOLDER)
  old = os.path.join(page_dir, f".{PAGE_FOLDER}.old")
  if os.path.exists(old):
    shutil.rmtree(old)
  if os.path.exists(dst):
    os.replace(dst, old)
  os.replace(staging, dst)
  if os.path.exists(old):
    shutil.rmtree(old)
  return {"title": "Every method on both networks",
          "note": (f"From {os.path.abspath(folder)} (its made_by.json says "
                   "what made each network's cells)."),
          "columns": list(TABLE_COLUMNS),
          "rows": [{"cells": cells, "reference": reference}
                   for cells, reference in table_rows(
                       rows, results["baselines"])],
          "caption": results["caption"].replace("**", ""),
          "best": best_lines(rows, results["baselines"]),
          "networks": networks}
