"""The README's CNN12 table and findings, quoted from saved results.

  python -m recon_jax.report.readme_quote --runs=RUNS_DIR
  python -m recon_jax.report.readme_quote --thesis=RUNS_DIR/thesis_quick

(the last steps of experiments/cnn12_tables.sh and thesis_tables.sh) copy
what the runs found into docs/results/ (cnn12_tables.json, from
report.cnn12_tables; sonification_summary.json, the sonification
analyses' summary.json; thesis_findings.json, the thesis experiment's
reconstruction/findings.json) and rewrite each README block between

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
  }


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
  sonification findings); thesis_dir: a thesis experiment's work dir (the
  thesis findings). Either may be empty; the README is rewritten from
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
    _copy(os.path.join(thesis_dir, "reconstruction", "findings.json"),
          os.path.join(results_dir, THESIS_JSON),
          "run the thesis experiment first (experiments/thesis_tables.sh)")
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
  flags.DEFINE_string("thesis", "", "a thesis experiment's work dir")
  flags.DEFINE_string("readme", "", "the README to rewrite (the repo's)")
  flags.DEFINE_string("results", "", "where the JSON goes (docs/results)")
  app.run(main)
