"""The README's CNN12 table and findings, quoted from saved results.

  python -m recon_jax.report.readme_quote --runs=RUNS_DIR

(the last step of experiments/cnn12_tables.sh) copies what the runs in
RUNS_DIR found into docs/results/ (cnn12_tables.json, from
report.cnn12_tables; sonification_summary.json, the sonification
analyses' summary.json) and rewrites each README block between

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
from recon_jax.report import sonification_findings

TABLES_JSON = "cnn12_tables.json"
SONIFICATION_JSON = "sonification_summary.json"
BLOCK = re.compile(r"(<!-- quoted: (\w+) -->\n)(.*?)(<!-- end quoted -->)",
                   re.S)


def render(results_dir: str) -> dict:
  """{block name: markdown} from the JSON files in `results_dir`."""
  tables = provenance.read_json(os.path.join(results_dir, TABLES_JSON))
  summary = provenance.read_json(os.path.join(results_dir,
                                              SONIFICATION_JSON))
  return {
      "cnn12_table": cnn12_tables.format_table(tables),
      "cnn12_findings": cnn12_tables.format_findings(tables),
      "sonification_findings": (
          sonification_findings.format_findings(summary["findings"]) + "\n"
          + summary["rule"] + "\n"),
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


def quote(runs_dir: str, readme: str, results_dir: str) -> None:
  """Saves the runs' results into results_dir and rewrites the README."""
  summary = os.path.join(runs_dir, "sonification", "summary.json")
  if not os.path.exists(summary):
    raise FileNotFoundError(f"{summary}: run the sonification analyses "
                            "first (experiments/cnn12_tables.sh)")
  os.makedirs(results_dir, exist_ok=True)
  provenance.write_json_atomic(os.path.join(results_dir, TABLES_JSON),
                               cnn12_tables.cnn12_tables(runs_dir))
  shutil.copyfile(summary, os.path.join(results_dir, SONIFICATION_JSON))
  with open(readme) as f:
    text = f.read()
  provenance.write_text_atomic(readme, rewrite(text, render(results_dir)))


def main(argv):
  del argv
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  quote(FLAGS.runs, FLAGS.readme or os.path.join(root, "README.md"),
        FLAGS.results or os.path.join(root, "docs", "results"))


if __name__ == "__main__":
  FLAGS = flags.FLAGS
  flags.DEFINE_string("runs", None, "the runs folder of cnn12_tables.sh")
  flags.DEFINE_string("readme", "", "the README to rewrite (the repo's)")
  flags.DEFINE_string("results", "", "where the JSON goes (docs/results)")
  flags.mark_flag_as_required("runs")
  app.run(main)
