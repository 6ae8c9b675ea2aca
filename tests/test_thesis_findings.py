"""The thesis's findings decided by statistics on known cells: the paired
bootstrap over phones against a plain loop, the phones-vs-chirps bootstrap
with the two sets resampled apart, diverged examples left out, verdicts."""
import numpy as np
import pytest

from recon_jax.metrics import statistics
from recon_jax.report import thesis_findings

METHODS = ("annealing", "backprop", "decoder", "decoder_backprop")
LAYERS = (1, 3, 6, 9, 12)


def _cells(rng, n=40, k=12):
  """mxcorr2 that falls with depth, decoder + backprop best, annealing
  worst, phones above chirps."""
  level = {"annealing": 0.2, "backprop": 0.5, "decoder": 0.6,
           "decoder_backprop": 0.7}
  cells = {}
  for m in METHODS:
    for l in LAYERS:
      base = level[m] - 0.03 * l
      cells[m, l] = {
          "phones_mxcorr2": base + 0.05 * rng.normal(size=n),
          "chirps_mxcorr2": base - 0.1 + 0.05 * rng.normal(size=k)}
  return cells


def test_claims_hold_on_a_known_case_and_match_a_loop():
  rng = np.random.default_rng(0)
  cells = _cells(rng)
  cells["decoder", 1]["phones_mxcorr2"][3] = np.nan  # a diverged example
  found = thesis_findings.findings(cells, LAYERS, METHODS,
                                   num_resamples=500, seed=2)
  verdicts = {f["finding"]: f["verdict"] for f in found}
  assert len(found) == 4 + 1 + 1 + 1 + 4
  assert set(verdicts.values()) == {statistics.HOLDS}, verdicts
  # The decoder's fall with depth, by a loop over the same resamples.
  drawn = statistics.draw_resamples(40, num_resamples=500, seed=2).clips
  d = cells["decoder", 1]["phones_mxcorr2"] - cells["decoder",
                                                    12]["phones_mxcorr2"]
  loop = [np.nanmean(d[idx]) for idx in drawn]
  low, high = np.quantile(loop, [0.025, 0.975])
  (fall,) = [f for f in found
             if f["finding"].startswith("decoding: layer 1 reconstructs")]
  assert (fall["low"], fall["high"]) == pytest.approx((low, high), abs=1e-12)
  assert fall["estimate"] == pytest.approx(np.nanmean(d))


def test_no_effect_is_not_shown_and_the_reverse_is_contradicted():
  rng = np.random.default_rng(1)
  cells = _cells(rng)
  for l in LAYERS:  # chirps as good as phones for backprop
    cells["backprop", l]["chirps_mxcorr2"] = rng.permutation(
        cells["backprop", l]["phones_mxcorr2"])[:12]
  for m in METHODS:  # deeper is better: the thesis contradicted
    cells[m, 12], cells[m, 1] = cells[m, 1], cells[m, 12]
  found = {f["finding"]: f for f in thesis_findings.findings(
      cells, LAYERS, METHODS, num_resamples=500)}
  fall = found["decoding: layer 1 reconstructs best, quality falls with "
               "depth (Fig. 9)"]
  assert fall["verdict"] == statistics.CONTRADICTED
  chirps = found["backpropagation: phones are reconstructed better than "
                 "chirps (Fig. 11)"]
  assert chirps["verdict"] == statistics.NOT_SHOWN
  assert "resampled apart" in chirps["test"]
