"""The README's CNN12 table and findings are quoted from saved results
(docs/results/), never typed by hand: every quoted block is its file's
rendering, and every verdict there is the one its interval gives."""
import os

import pytest

from recon_jax.metrics import statistics
from recon_jax import provenance
from recon_jax.report import readme_quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")


def test_every_quoted_block_is_its_files_rendering():
  with open(os.path.join(ROOT, "README.md")) as f:
    blocks = readme_quote.quoted_blocks(f.read())
  want = readme_quote.render(RESULTS)
  assert set(blocks) == set(want)
  for name, text in want.items():
    assert blocks[name] == text, (
        f"README block {name!r} differs from docs/results; rerun "
        "python -m recon_jax.report.readme_quote --runs=<the runs>")


@pytest.mark.parametrize("name", [readme_quote.TABLES_JSON,
                                  readme_quote.SONIFICATION_JSON])
def test_saved_verdicts_are_what_their_intervals_give(name):
  saved = provenance.read_json(os.path.join(RESULTS, name))
  assert saved["findings"]
  for f in saved["findings"]:
    if f["verdict"] != statistics.NOT_TESTED:
      assert f["verdict"] == statistics.verdict(f, f["direction"]), f


def test_rewrite_replaces_only_the_blocks_and_names_a_missing_one():
  text = ("intro\n<!-- quoted: a -->\nold\n<!-- end quoted -->\nmiddle\n"
          "<!-- quoted: b -->\n<!-- end quoted -->\nend\n")
  out = readme_quote.rewrite(text, {"a": "new a\n", "b": "new b\n"})
  assert out == ("intro\n<!-- quoted: a -->\nnew a\n<!-- end quoted -->\n"
                 "middle\n<!-- quoted: b -->\nnew b\n<!-- end quoted -->\n"
                 "end\n")
  assert readme_quote.quoted_blocks(out) == {"a": "new a\n", "b": "new b\n"}
  with pytest.raises(ValueError, match=r"no block named \['c'\]"):
    readme_quote.rewrite(text, {"c": "x"})
