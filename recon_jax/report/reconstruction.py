"""Writes the reconstruction experiment's outputs (thesis Figs. 9-11, B.1).

Everything here only writes: the numbers, reconstructions and waveforms
come computed from `recon_jax.experiments.reconstruction`.
  results.csv, results.md      the measures per method x layer x stimulus
  fig9_measures.png            three measures per layer, phones vs chirps
  fig10_histograms.png         intensity histograms of one phone
  fig11_phones_vs_chirps.png   originals vs reconstructions (one method)
  figB1_one_phone.png          one phone, every method x layer
  wavs/                        originals and reconstructions as audio
"""
import csv
import io
import os

import numpy as np

from recon_jax import provenance
from recon_jax.report import audio
from recon_jax.report import figures

METHOD_NAMES = {"annealing": "Sim. annealing", "backprop": "Backprop",
                "decoder": "Decoding", "decoder_backprop": "Dec. and backpr."}
MEASURES = ("R", "mxcorr2", "waveform_mxcorr")
STIMULI = ("phones", "chirps")


def _cell(mean, sem):
  return "diverged" if not np.isfinite(mean) else f"{mean:.3f} ± {sem:.3f}"


def markdown_table(rows, baselines) -> str:
  """The results as a Markdown table (mean ± s.e.m. over examples).

  Rows with diverged examples say how many; their means are over the
  examples that converged (all diverged: 'diverged').
  """
  lines = ["| method | layer | stimulus | R | mxcorr2 | waveform mxcorr |"
           " diverged |",
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {METHOD_NAMES[r['method']]} | L{r['layer']} | {r['stimulus']} | "
        + " | ".join(_cell(r[f"{m}_mean"], r[f"{m}_sem"]) for m in MEASURES)
        + f" | {r['num_diverged']}/{r['num_examples']} |")
  lines.append("")
  lines.append(f"STFT round trip (true magnitude -> Griffin-Lim), phones: "
               f"waveform mxcorr {baselines['stft_round_trip_mxcorr_phones']:.3f}"
               " (thesis ~0.7)")
  lines.append(f"Waveform mxcorr threshold (average spectrogram): "
               f"{baselines['waveform_mxcorr_threshold']:.3f} (thesis 0.12)")
  return "\n".join(lines) + "\n"


def search_summary_markdown(search) -> str:
  """What the search methods did: annealing acceptance and movement."""
  if not search:
    return ""
  lines = ["", "Search diagnostics (mean over examples and runs):", ""]
  for (method, layer), s in sorted(search.items()):
    parts = [f"{k.replace('_', ' ')} {v:.3g}" for k, v in sorted(s.items())]
    lines.append(f"- {METHOD_NAMES[method]} L{layer}: " + ", ".join(parts))
  return "\n".join(lines) + "\n"


def mangled_markdown(mangled) -> str:
  if not mangled:
    return ""
  md = (f"\nMangled-network check (layer {mangled['layer']}, first decoding "
        "conv zeroed; mxcorr2 of the mangled decoding with its own input "
        "minus with another input's):\n")
  for unpooling in ("switch", "blind"):
    m = mangled[unpooling]
    md += (f"- {unpooling} unpooling: intact {m['intact_mxcorr2']:.3f}, "
           f"mangled {m['mangled_mxcorr2']:.3f}, leak {m['leak']:.3f}, "
           f"mangled spread {m['mangled_spread']:.3f}\n")
  return md


def write_tables(workdir, rows, baselines, mangled, search, made_by) -> list:
  """results.csv and results.md (atomically), each saying what made it."""
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  csv_path = provenance.write_text_atomic(os.path.join(workdir, "results.csv"),
                                          buf.getvalue())
  md = (markdown_table(rows, baselines) + search_summary_markdown(search) +
        mangled_markdown(mangled) +
        f"\nMade by: data {made_by['data']}, classifier "
        f"{made_by['classifier_params']}, encoder {made_by['encoder_params']}"
        f" (see made_by.json).\n")
  md_path = provenance.write_text_atomic(os.path.join(workdir, "results.md"),
                                         md)
  return [csv_path, md_path]


def write_figures(workdir, config, stimuli, results, mean_spectrogram,
                  baselines) -> list:
  """Figs. 9, 10, 11 and B.1 as PNGs.

  Args:
    results: {(method, layer): {"<stim>_reconstructions": (N, F, T),
      "<stim>_<measure>": (N,)}}.
  """
  files = []
  layers = list(config.layers)
  panels = []
  for measure, label in zip(MEASURES, ("Euclidean error R", "mxcorr2",
                                       "waveform mxcorr")):
    series = {}
    for method in config.methods:
      for stim in STIMULI:
        series[f"{METHOD_NAMES[method]} ({stim})"] = [
            np.nanmean(results[method, l][f"{stim}_{measure}"])
            for l in layers]
    panels.append((label, series))
  files.append(figures.measure_curves(
      os.path.join(workdir, "fig9_measures.png"), layers, panels,
      thresholds={"waveform mxcorr": baselines["waveform_mxcorr_threshold"]},
      title="Reconstruction measures per layer (dashed: chirps)"))

  example = int(config.figure_example)
  name = stimuli["phones"]["names"][example]
  original = stimuli["phones"]["inputs"][example]
  grid = [[original] + [results[m, l]["phones_reconstructions"][example]
                        for l in layers] for m in config.methods]
  col_labels = ["original"] + [f"L{l}" for l in layers]
  row_labels = [METHOD_NAMES[m] for m in config.methods]
  files.append(figures.histogram_grid(
      os.path.join(workdir, "fig10_histograms.png"), grid, row_labels,
      col_labels, title=f"Intensity histograms, phone [{name}]"))
  files.append(figures.spectrogram_grid(
      os.path.join(workdir, "figB1_one_phone.png"),
      [[g + mean_spectrogram for g in row] for row in grid], row_labels,
      col_labels, title=f"Reconstructions of phone [{name}] (mean added back)",
      log_scale=True, shared_scale=True))

  method = figure_method(config)
  fig_layers = [l for l in (6, 12) if l in layers] or layers[-2:]
  rows_img, row_names = [], []
  for stim in ("chirps", "phones"):
    for j in range(min(2, len(stimuli[stim]["names"]))):
      rows_img.append([stimuli[stim]["inputs"][j] + mean_spectrogram] + [
          results[method, l][f"{stim}_reconstructions"][j] + mean_spectrogram
          for l in fig_layers])
      row_names.append(stimuli[stim]["names"][j])
  files.append(figures.spectrogram_grid(
      os.path.join(workdir, "fig11_phones_vs_chirps.png"), rows_img, row_names,
      ["original"] + [f"L{l}" for l in fig_layers],
      title=f"{METHOD_NAMES[method]}: chirps (top) vs phones (bottom)",
      log_scale=True, shared_scale=True))
  return files


def figure_method(config) -> str:
  """The method whose reconstructions Fig. 11 and the WAVs show."""
  return (config.figure_method if config.figure_method in config.methods
          else config.methods[-1])


def write_wavs(workdir, sounds, sample_rate) -> list:
  """Writes {file name: (L,) waveform} under workdir/wavs."""
  wav_dir = os.path.join(workdir, "wavs")
  return [audio.write_wav(os.path.join(wav_dir, name), wave, sample_rate)
          for name, wave in sounds.items()]
