"""summary.md of a mission work dir: every figure and number, one line each
saying what it means. Reads what the stages wrote (their folders' files and
<workdir>/stages/<stage>.json); writes only summary.md (atomically).
"""
import glob
import os

from recon_jax import provenance
from recon_jax.metrics import statistics
from recon_jax.report import comparison
from recon_jax.report import findings as findings_report
from recon_jax.report import sonification_findings

# Figures of each stage: (path under the stage folder, what it shows).
THESIS_FIGURES = (
    ("phone_cnn/confusion39.png",
     "test confusion matrix of the phone CNN over the 39 folded phone "
     "classes (rows: true phone; a bright diagonal is a good classifier)"),
    ("reconstruction/fig9_measures.png",
     "thesis Fig. 9: R, mxcorr2 and waveform mxcorr per layer and method, "
     "phones (solid) vs chirps (dashed); the dashed level line is the "
     "waveform threshold (an average spectrogram's score)"),
    ("reconstruction/fig10_histograms.png",
     "thesis Fig. 10: intensity histograms of one phone's reconstructions "
     "per method and layer (close to the original's shape is good)"),
    ("reconstruction/figB1_one_phone.png",
     "thesis Fig. B.1: one phone reconstructed by every method from every "
     "layer (left column: the original)"),
    ("reconstruction/fig11_phones_vs_chirps.png",
     "thesis Fig. 11: chirps (top) vs phones (bottom) reconstructed from "
     "deep layers; a speech-trained network keeps phones better"),
)
SONIFICATION_FIGURES = (
    ("sonification_page/fig_supervised_pairs.png",
     "input (left) and sonification (right) of the supervised CNN12's most "
     "active map, one row per layer: what each layer keeps of a clip"),
    ("sonification_page/fig_contrastive_pairs.png",
     "the same for the SimCLR-trained CNN12"),
    ("residual_test/fig6_residual_test.png",
     "paper Fig. 6: each classifier's metric on x minus the sonification of "
     "its most active map, per layer; below the clean line means the "
     "sonification held what the classifier used"),
    ("coherence/fig7_coherence.png",
     "paper Fig. 7: mean top-5 magnitude-squared coherence of input and "
     "sonification per layer; falling with depth means deeper maps keep "
     "less of the input's spectrum"),
    ("feature_evolution/fig5_evolution_L*.png",
     "paper Fig. 5: a randomly chosen map of the SimCLR encoder sonified "
     "at every kept checkpoint from step 0 (rows: training steps)"),
    ("layer_importance/fig4_layer_importance.png",
     "paper Fig. 4: validation metric of classifiers on the encoder cut "
     "after each block, fc-only and full fine-tuning"),
)
CNN12_RUNS = (("supervised", "supervised on the events"),
              ("contrastive", "SimCLR on the events"),
              ("probe", "linear probe (fc-only) of the SimCLR encoder"),
              ("finetune", "fine-tuning of the SimCLR encoder"))


def _fmt(m: dict) -> str:
  half = m.get("ci95")
  text = f"{m['mean']:.3f}"
  if half is not None and half == half and half > 0:
    text += f" ± {half:.3f}"
  return text


def _figures(root: str, stage_folder: str, entries) -> list[str]:
  out = []
  for pattern, meaning in entries:
    for path in sorted(glob.glob(os.path.join(root, stage_folder, pattern))):
      rel = os.path.relpath(path, root)
      out += [f"![{os.path.basename(rel)}]({rel})", "",
              f"*{rel}*: {meaning}.", ""]
  return out


def _thesis(root, folder) -> list[str]:
  base = os.path.join(root, folder)
  out = ["## The thesis: reconstructing phones from a phone CNN", ""]
  path = os.path.join(base, "summary.json")
  if os.path.exists(path):
    s = provenance.read_json(path)
    out += [
        f"- Phones: {s['phones']['train']:,} train / {s['phones']['test']:,} "
        f"test spectrograms (201 x 16) from the generated corpus (data "
        f"{s['data']}).",
        f"- Phone CNN test accuracy, 39 classes: classifier "
        f"{s['classifier_test_accuracy39']:.3f}, padded encoder "
        f"{s['encoder_test_accuracy39']:.3f} (chance 0.026; the thesis: "
        "0.626 on TIMIT).",
        f"- STFT round trip (true magnitude, Griffin-Lim) waveform mxcorr "
        f"{s['stft_round_trip_mxcorr_phones']:.3f}: the best a waveform "
        "score can be here (the thesis: ~0.7).",
        f"- Waveform mxcorr threshold {s['waveform_mxcorr_threshold']:.3f}: "
        "what the average spectrogram scores; a reconstruction below it "
        "kept nothing of the phone's waveform (the thesis: 0.12).", ""]
  table = os.path.join(base, "reconstruction", "results.md")
  if os.path.exists(table):
    out += ["Reconstructions per method x layer x stimulus (R: Euclidean "
            "error, lower is better; mxcorr2: spectrogram max "
            "cross-correlation, 1 is perfect; waveform mxcorr: of the "
            "Griffin-Lim audio; diverged runs are left out and counted):", ""]
    out += open(table, encoding="utf-8").read().strip().splitlines() + [""]
  found = os.path.join(base, "reconstruction", "findings.json")
  if os.path.exists(found):
    saved = provenance.read_json(found)
    out += ["The thesis's findings, tested on these reconstructions:", "",
            findings_report.format_findings(saved["findings"]),
            saved["rule"], ""]
  out += _figures(root, folder, THESIS_FIGURES)
  wavs = os.path.join(folder, "reconstruction", "wavs")
  if os.path.isdir(os.path.join(root, wavs)):
    out += [f"Listen: `{wavs}/` holds originals and reconstructions as "
            "WAVs.", ""]
  return out


def _data(records) -> list[str]:
  out = []
  for stage, what in (("keywords", "Keyword set (Speech Commands layout)"),
                      ("events", "Sound event set (FSD50K layout)")):
    if stage in records:
      r = records[stage]
      out += [f"- {what}, `{r['folder']}/`: " + "; ".join(
          l for l in r["lines"] if not l.startswith("wrote "))]
  return ["## Data made for the sonification half", ""] + out + [""] if out \
      else []


def _cnn12(root, records) -> list[str]:
  rows = []
  for stage, what in CNN12_RUNS:
    if stage not in records:
      continue
    path = os.path.join(root, records[stage]["folder"], "summary.json")
    if not os.path.exists(path):
      continue
    s = provenance.read_json(path)
    m = s["metrics"]
    shown = [f"{name} {_fmt(m[name])} (chance "
             f"{m['chance/' + name.split('/')[1]]['mean']:.3f})"
             for name in ("test/mAP", "test/accuracy") if name in m and
             "chance/" + name.split("/")[1] in m]
    shown += [f"{name} {_fmt(m[name])}" for name in
              ("test/mAUC", "test/d_prime") if name in m]
    if "validation/pair_top1" in m:  # SimCLR: held-out pairs.
      shown.append(
          f"validation/pair_top1 {_fmt(m['validation/pair_top1'])} (chance "
          f"{m['validation/pair_top1_chance']['mean']:.4f}); "
          f"validation/nt_xent {_fmt(m['validation/nt_xent'])}"
          + ("; COLLAPSED" if m["validation/collapsed"]["mean"] else ""))
    rows.append(f"| {stage} | {what} | {len(s['seeds'])} | "
                f"{'; '.join(shown)} |")
  if not rows:
    return []
  return ["## CNN12 on the sound events", "",
          "Test metrics (mean ± 95% t-interval over seeds; mAP: mean "
          "average precision over classes, chance = the class frequency; "
          "pair_top1: how often SimCLR finds a clip's other view among the "
          "batch):", "", "| run | what | seeds | test metrics |",
          "|---|---|---|---|", *rows, ""]


def _sonification(root, folder) -> list[str]:
  base = os.path.join(root, folder)
  out = ["## Sonification: what CNN12's feature maps hear", ""]
  path = os.path.join(base, "summary.json")
  if os.path.exists(path):
    summary = provenance.read_json(path)
    out += ["The paper's findings, tested on these models:", "",
            findings_report.format_findings(summary["findings"]),
            summary["rule"], ""]
    res = os.path.join(base, "residual_test", "results.json")
    if os.path.exists(res):
      r = provenance.read_json(res)
      out += [f"Did the classifiers learn? Test {r['metric']} minus the "
              f"same scores' {r['metric']} on shuffled clips (chance, "
              f"{r['chance']:.3f} for {r['metric']}) with its 95% interval:",
              ""]
      out += [f"- {sonification_findings.GROUP_NAMES.get(g, g)}: "
              f"{statistics.format_interval(v['learned'])}: " + (
                  "above chance" if statistics.verdict(v["learned"])
                  == statistics.HOLDS else "NOT above chance (its residual "
                  "findings are not tested)") for g, v in r["groups"].items()]
      out.append("")
  li = os.path.join(base, "layer_importance", "results.json")
  if os.path.exists(li):
    r = provenance.read_json(li)
    out += [f"Layer importance ({r['metric']} of a classifier on the encoder "
            "cut after each block; paper Fig. 4):", "",
            "| encoder | mode | " + " | ".join(
                f"block {l}" for l in r["layers"]) + " |",
            "|---|---|" + "---|" * len(r["layers"])]
    for name, e in r["encoders"].items():
      for mode, values in e["mean"].items():
        out.append(f"| {name} | {mode} | " + " | ".join(
            f"{v:.3f}" for v in values) + " |")
    out.append("")
  page = os.path.join(folder, "sonification_page", "index.html")
  if os.path.exists(os.path.join(root, page)):
    out += [f"Look and listen: open [`{page}`]({page}) in a browser "
            "(offline): every model, layer and most active map, its top "
            "clips as input / sonification / residual spectrograms and "
            "players (and, once the comparison stage ran, every inversion "
            "method on both networks: its table, figures and a player per "
            "method and layer).", ""]
  return out + _figures(root, folder, SONIFICATION_FIGURES)


def write_summary(workdir: str, records: dict) -> str:
  """Writes <workdir>/summary.md from the finished stages' `records`
  ({stage: record with "folder", "lines", "seconds"}); returns its path."""
  total = sum(r["seconds"] for r in records.values())
  lines = ["# recon_jax: both papers on generated data", "",
           "Stages (seconds when they ran): " + ", ".join(
               f"{s} {r['seconds']:.0f}" for s, r in records.items())
           + f"; {total / 60:.1f} min in all.", ""]
  if "thesis" in records:
    lines += _thesis(workdir, records["thesis"]["folder"])
  lines += _data(records)
  lines += _cnn12(workdir, records)
  if "sonification" in records:
    lines += _sonification(workdir, records["sonification"]["folder"])
  if "comparison" in records:
    lines += comparison.summary_section(
        os.path.join(workdir, records["comparison"]["folder"]), workdir)
  path = os.path.join(workdir, "summary.md")
  provenance.write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
  return path
