"""A finding: one of the papers' claims, decided by statistics.

`finding` makes the record every report shares: the claim, the measured
effect and its interval (metrics.statistics), the test that made it, the
verdict (statistics.verdict, or "not tested at this scale" when the model
the claim is about did not learn) and the evidence in words.
`format_findings` renders a list of them as a markdown table; VERDICT_RULE
says how verdicts are read.
"""
from recon_jax.metrics import statistics


def finding(claim, interval, test, evidence, direction=1, gate=None):
  """One finding's record.

  interval: statistics' dict of the effect (estimate, low, high, level,
    method); direction: +1 when the paper claims it is > 0, -1 when < 0;
    test: the test's description ('' takes interval["method"]); gate: None,
    or (ok, why): not ok means the model the claim is about did not learn,
    and the verdict is 'not tested at this scale'.
  """
  verdict = statistics.verdict(interval, direction)
  if gate is not None and not gate[0]:
    verdict = statistics.NOT_TESTED
    evidence = f"{gate[1]}; {evidence}"
  return {"finding": claim, "verdict": verdict,
          "estimate": interval["estimate"], "low": interval["low"],
          "high": interval["high"], "level": interval["level"],
          "direction": direction, "test": test or interval["method"],
          "evidence": evidence}


def format_findings(found: list[dict]) -> str:
  """The findings as a markdown table (summary.md, the README)."""
  if not found:
    return "No finding was tested (no analysis with one ran).\n"
  level = int(round(100 * found[0]["level"]))
  lines = [f"| the paper's finding | verdict | effect [{level}% interval] |"
           " test | evidence |", "|---|---|---|---|---|"]
  for f in found:
    interval = statistics.format_interval(f)
    lines.append(f"| {f['finding']} | **{f['verdict']}** | {interval} | "
                 f"{f['test']} | {f['evidence']} |")
  return "\n".join(lines) + "\n"


VERDICT_RULE = (
    "Verdicts: **holds** when the interval of the effect lies wholly on the "
    "paper's side of zero; **contradicted** when it lies wholly on the "
    "other side; **not shown at this scale** otherwise; **not tested at "
    "this scale** when the model the claim is about is not above chance. "
    "The test column says how each interval was made.")
