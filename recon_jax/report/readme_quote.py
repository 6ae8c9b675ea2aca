"""The README's CNN12 table and findings, quoted from saved results.

  python -m recon_jax.report.readme_quote --runs=RUNS_DIR
  python -m recon_jax.report.readme_quote --thesis=RUNS_DIR

(the last steps of experiments/cnn12_tables.sh and thesis_tables.sh) copy
what the runs found into docs/results/ (cnn12_tables.json, from
report.cnn12_tables; sonification_summary.json, the sonification
analyses' summary.json; from the thesis runs, the phone CNNs' accuracies,
the reconstruction tables and findings.json) and rewrite each README block between

  <!-- quoted: NAME -->  ...  <!-- end quoted -->

with its rendering of those files. Nothing in a block is typed by hand;
tests/test_readme_quotes.py checks that every block is its file's
rendering.
"""
import os
import re
import shutil

from absl import app
from absl import flags

from recon_jax import provenance
from recon_jax.report import cnn12_tables
from recon_jax.report import findings as findings_report

TABLES_JSON = "cnn12_tables.json"
SONIFICATION_JSON = "sonification_summary.json"
THESIS_JSON = "thesis_findings.json"
THESIS_NETWORKS_JSON = "thesis_networks.json"
THESIS_TABLE = "thesis_results.md"
CURVATURE_TABLE = "thesis_curvature_results.md"
BLOCK = re.compile(r"(<!-- quoted: (\w+) -->\n)(.*?)(<!-- end quoted -->)",
                   re.S)


def render(results_dir: str) -> dict:
  """{block name: markdown} from the JSON files in `results_dir`."""
  tables = provenance.read_json(os.path.join(results_dir, TABLES_JSON))
  summary = provenance.read_json(os.path.join(results_dir,
                                              SONIFICATION_JSON))
  thesis = provenance.read_json(os.path.join(results_dir, THESIS_JSON))
  return {
      "cnn12_table": cnn12_tables.format_table(tables),
      "cnn12_findings": cnn12_tables.format_findings(tables),
      "sonification_findings": (
          findings_report.format_findings(summary["findings"]) + "\n"
          + summary["rule"] + "\n"),
      "thesis_findings": (
          findings_report.format_findings(thesis["findings"]) + "\n"
          + thesis["rule"] + "\n"),
      "thesis_networks": _thesis_networks(provenance.read_json(
          os.path.join(results_dir, THESIS_NETWORKS_JSON))),
      "thesis_table": _thesis_table(results_dir),
  }


def _thesis_networks(saved: dict) -> str:
  """The phone CNNs' accuracies and the waveform baselines, beside the
  thesis's stated numbers."""
  c, e, s = saved["classifier"], saved["encoder"], saved["summary"]
  return "\n".join([
      "| network | 48 classes | 39 classes |", "|---|---|---|",
      f"| classifier (valid convs) | {100 * c['accuracy48']:.1f}% | "
      f"{100 * c['accuracy39']:.1f}% |",
      f"| padded encoder | {100 * e['accuracy48']:.1f}% | "
      f"{100 * e['accuracy39']:.1f}% |", "",
      "| quantity | thesis (TIMIT) | here (generated corpus) |",
      "|---|---|---|",
      f"| phone CNN test accuracy, 39 classes | 62.6% | "
      f"{100 * c['accuracy39']:.1f}% |",
      "| STFT round-trip waveform mxcorr (true magnitude, Griffin-Lim) | "
      f"~0.7 (0.99 at 800 points) | {s['stft_round_trip_mxcorr_phones']:.3f}"
      " |",
      "| waveform mxcorr threshold (average spectrogram) | 0.12 | "
      f"{s['waveform_mxcorr_threshold']:.3f} |",
      f"| data | TIMIT | {s['phones']['train']:,} train / "
      f"{s['phones']['test']:,} test phones, fingerprint {s['data']} |",
      ""])


def _table_rows(path: str) -> list[str]:
  """The rows of the first markdown table in `path` (header excluded)."""
  with open(path) as f:
    lines = f.read().splitlines()
  start = next(i for i, l in enumerate(lines) if l.startswith("| method"))
  rows = []
  for line in lines[start + 2:]:
    if not line.startswith("|"):
      break
    rows.append(line)
  return rows


def _thesis_table(results_dir: str) -> str:
  """The reconstruction table: every method x layer x stimulus, then the
  curvature-scaled backprop step's rows."""
  rows = _table_rows(os.path.join(results_dir, THESIS_TABLE))
  curvature = os.path.join(results_dir, CURVATURE_TABLE)
  if os.path.exists(curvature):
    rows += [r.replace("| Backprop |", "| Backprop, curvature step |", 1)
             for r in _table_rows(curvature)]
  with open(os.path.join(results_dir, THESIS_TABLE)) as f:
    text = f.read()
  # The search diagnostics and the mangled-network check, as results.md
  # gives them.
  tail = text[text.index("Search diagnostics"):text.index("Made by:")]
  return "\n".join(["| method | layer | stimulus | R | mxcorr2 | waveform "
                    "mxcorr | diverged |", "|---|---|---|---|---|---|---|"]
                   + rows) + "\n\n" + tail.rstrip() + "\n"


def quoted_blocks(text: str) -> dict:
  """{block name: its text} of a README."""
  return {m.group(2): m.group(3) for m in BLOCK.finditer(text)}


def rewrite(text: str, blocks: dict) -> str:
  """`text` with every quoted block replaced by blocks[name]."""
  missing = set(blocks) - set(quoted_blocks(text))
  if missing:
    raise ValueError(f"the README has no block named {sorted(missing)}")
  return BLOCK.sub(lambda m: m.group(1) + blocks[m.group(2)] + m.group(4),
                   text)


def _copy(src: str, dst: str, how: str) -> None:
  if not os.path.exists(src):
    raise FileNotFoundError(f"{src}: no such file; {how}")
  shutil.copyfile(src, dst)


def quote(readme: str, results_dir: str, *, runs_dir: str = "",
          thesis_dir: str = "") -> None:
  """Saves the runs' results into results_dir and rewrites the README.

  runs_dir: experiments/cnn12_tables.sh's folder (the CNN12 table and the
  sonification findings); thesis_dir: experiments/thesis_tables.sh's folder
  (thesis_quick/ and thesis_curvature/: the phone CNNs, the reconstruction
  table and the thesis findings). Either may be empty; the README is rewritten from
  everything in results_dir.
  """
  os.makedirs(results_dir, exist_ok=True)
  if runs_dir:
    _copy(os.path.join(runs_dir, "sonification", "summary.json"),
          os.path.join(results_dir, SONIFICATION_JSON),
          "run the sonification analyses first (experiments/cnn12_tables.sh)")
    provenance.write_json_atomic(os.path.join(results_dir, TABLES_JSON),
                                 cnn12_tables.cnn12_tables(runs_dir))
  if thesis_dir:
    how = "run experiments/thesis_tables.sh first"
    main = os.path.join(thesis_dir, "thesis_quick")
    _copy(os.path.join(main, "reconstruction", "findings.json"),
          os.path.join(results_dir, THESIS_JSON), how)
    _copy(os.path.join(main, "reconstruction", "results.md"),
          os.path.join(results_dir, THESIS_TABLE), how)
    _copy(os.path.join(thesis_dir, "thesis_curvature", "reconstruction",
                       "results.md"),
          os.path.join(results_dir, CURVATURE_TABLE), how)
    networks = {}
    for name, folder in (("classifier", "phone_cnn"),
                         ("encoder", "phone_cnn_padded")):
      networks[name] = provenance.read_json(
          os.path.join(main, folder, "eval.json"))["test"]
    networks["summary"] = provenance.read_json(os.path.join(main,
                                                            "summary.json"))
    provenance.write_json_atomic(
        os.path.join(results_dir, THESIS_NETWORKS_JSON), networks)
  with open(readme) as f:
    text = f.read()
  provenance.write_text_atomic(readme, rewrite(text, render(results_dir)))


def main(argv):
  del argv
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  if not (FLAGS.runs or FLAGS.thesis):
    raise app.UsageError("give --runs (cnn12_tables.sh's folder) and/or "
                         "--thesis (a thesis experiment's work dir)")
  quote(FLAGS.readme or os.path.join(root, "README.md"),
        FLAGS.results or os.path.join(root, "docs", "results"),
        runs_dir=FLAGS.runs, thesis_dir=FLAGS.thesis)


if __name__ == "__main__":
  FLAGS = flags.FLAGS
  flags.DEFINE_string("runs", "", "the runs folder of cnn12_tables.sh")
  flags.DEFINE_string("thesis", "", "the runs folder of thesis_tables.sh")
  flags.DEFINE_string("readme", "", "the README to rewrite (the repo's)")
  flags.DEFINE_string("results", "", "where the JSON goes (docs/results)")
  app.run(main)
