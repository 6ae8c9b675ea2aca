"""The thesis's findings on the reconstruction experiment, by statistics.

From the per-example measures every method x layer cell saved (the same
phones and chirps in every cell), each claim is an effect on mxcorr2 (the
thesis's spectrogram measure) with a percentile bootstrap interval:
- paired over the phones (one resample of phones serves every method and
  layer) for comparisons of layers and methods;
- phones vs chirps resampled apart (they are different examples), for the
  claim that a speech-trained network keeps phones better.
An example whose reconstruction diverged (NaN) is left out of every mean it
would enter. The verdicts follow metrics.statistics.verdict.
"""
import numpy as np

from recon_jax.metrics import statistics
from recon_jax.report import findings as findings_report

NAMES = {"annealing": "simulated annealing", "backprop": "backpropagation",
         "decoder": "decoding", "decoder_backprop": "decoding then "
         "backpropagation"}
MEASURE = "mxcorr2"


def _mean(values) -> float:
  """The mean of the finite values (diverged examples left out)."""
  return float(statistics.finite_mean(values))


def findings(results: dict, layers, methods, *, num_resamples: int = 2000,
             seed: int = 0, level: float = 0.95) -> list[dict]:
  """The thesis's claims on `results` ({(method, layer): cell arrays with
  "phones_mxcorr2" (N,), "chirps_mxcorr2" (M,)}): [finding records]."""
  layers, methods = list(layers), list(methods)
  phones = {(m, l): np.asarray(results[m, l][f"phones_{MEASURE}"])
            for m in methods for l in layers}
  chirps = {(m, l): np.asarray(results[m, l][f"chirps_{MEASURE}"])
            for m in methods for l in layers}
  n = len(next(iter(phones.values())))
  k = len(next(iter(chirps.values())))
  out = []
  if n < 2:
    return out
  drawn = statistics.draw_resamples(n, num_resamples=num_resamples,
                                    seed=seed).clips
  what = f"paired percentile bootstrap over {n} phones, {num_resamples} " \
         "resamples"

  def paired(pairs):
    """Mean over `pairs` of mean(a - b) over phones: (estimate, (B,))."""
    est = np.mean([_mean(phones[a] - phones[b]) for a, b in pairs])
    dist = np.mean([statistics.resampled_finite_mean(phones[a] - phones[b], drawn)
                    for a, b in pairs], axis=0)
    return statistics.percentile_interval(est, dist, level, method=what)

  first, last = layers[0], layers[-1]
  if len(layers) >= 2:
    for m in methods:
      out.append(findings_report.finding(
          f"{NAMES[m]}: layer {first} reconstructs best, quality falls with "
          f"depth (Fig. 9)", paired([((m, first), (m, last))]), "",
          f"phones {MEASURE} L{first} {_mean(phones[m, first]):.3f} - "
          f"L{last} {_mean(phones[m, last]):.3f}"))
  early = [l for l in layers if l <= 9]
  if "decoder_backprop" in methods and len(methods) >= 2 and early:
    others = [m for m in methods if m != "decoder_backprop"]
    runner_up = {l: max(others, key=lambda m, l=l: _mean(phones[m, l]))
                 for l in early}
    out.append(findings_report.finding(
        f"decoding then backpropagation is the best method up to layer "
        f"{early[-1]} (Fig. 9)",
        paired([(("decoder_backprop", l), (runner_up[l], l)) for l in early]),
        "", f"phones {MEASURE}, decoding + backprop minus the next best "
        "method at each of layers " + ", ".join(
            f"{l} ({NAMES[runner_up[l]]})" for l in early)))
  if "annealing" in methods and len(methods) >= 2:
    others = [m for m in methods if m != "annealing"]
    worst = {l: min(others, key=lambda m, l=l: _mean(phones[m, l]))
             for l in layers}
    out.append(findings_report.finding(
        "simulated annealing is the worst method (Fig. 9)",
        paired([((worst[l], l), ("annealing", l)) for l in layers]), "",
        f"phones {MEASURE}, the next worst method minus annealing, mean over "
        f"layers {', '.join(map(str, layers))}"))
  if 9 in layers and 12 in layers and "decoder" in methods:
    interval = paired([(("decoder", 9), ("decoder", 12))])
    out.append(findings_report.finding(
        "decoding: layer 12 is worse than layer 9 (the thesis: only "
        "slightly; Fig. 9)", interval, "",
        f"phones {MEASURE} L9 {_mean(phones['decoder', 9]):.3f} - L12 "
        f"{_mean(phones['decoder', 12]):.3f}: how much is the interval"))
  if k >= 2:
    chirp_draw = statistics.draw_resamples(k, num_resamples=num_resamples,
                                           seed=seed + 1).clips
    for m in methods:
      est = np.mean([_mean(phones[m, l]) - _mean(chirps[m, l])
                     for l in layers])
      dist = np.mean([statistics.resampled_finite_mean(phones[m, l], drawn)
                      - statistics.resampled_finite_mean(chirps[m, l], chirp_draw)
                      for l in layers], axis=0)
      out.append(findings_report.finding(
          f"{NAMES[m]}: phones are reconstructed better than chirps "
          "(Fig. 11)", statistics.percentile_interval(
              est, dist, level, method=f"percentile bootstrap, {n} phones "
              f"and {k} chirps resampled apart, {num_resamples} resamples"),
          "", f"{MEASURE} phones minus chirps, mean over layers "
          f"{', '.join(map(str, layers))}"))
  return out
