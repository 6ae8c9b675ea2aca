"""Times corpus -> phone spectrogram arrays: recon_jax.data vs a plain loop.

  python benchmarks/bench_data.py [--corpus DIR] [--repeats 3] [--json PATH]

Without --corpus it generates the default espeak-ng corpus in a temporary
directory first (not timed). The baseline is what one would write by hand:
per file, NumPy reads the SPHERE data and the .PHN lines, and
scipy.signal.stft transforms each phone on its own. Both produce the same
arrays (checked); the package batches the STFT through recon_jax.ops.stft.
"""
import argparse
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402

from benchmarks import common  # noqa: E402
from recon_jax import data  # noqa: E402
from recon_jax.data import corpus  # noqa: E402
from recon_jax.data import phones  # noqa: E402


def plain_loop(root, percentile=95.0):
  """Straightforward per-file NumPy/SciPy version of load_phone_data."""
  fold = phones.fold_61_to_48()
  ids = {p: i for i, p in enumerate(phones.phones48())}
  raw = {}
  for split in ("TRAIN", "TEST"):
    waves, labels = [], []
    for wav in sorted(glob.glob(os.path.join(root, split, "DR*", "*", "*.WAV"))):
      if os.path.basename(wav).startswith("SA"):
        continue
      x = np.fromfile(wav, dtype="<i2", offset=1024)
      with open(wav[:-4] + ".PHN") as f:
        for line in f:
          start, end, label = line.split()
          if fold[label]:
            waves.append(x[int(start):int(end)])
            labels.append(ids[fold[label]])
    raw[split] = (waves, np.array(labels))
  cut = np.percentile([len(w) for w in raw["TRAIN"][0]], percentile)
  kept = {s: [w for w in r[0] if len(w) <= cut] for s, r in raw.items()}
  length = max(len(w) for ws in kept.values() for w in ws)
  # MATLAB's symmetric hamming(267), the thesis's (and the package's) window.
  window = scipy.signal.get_window("hamming", 267, fftbins=False)
  window_sum = window.sum()
  out = {}
  for split, waves in kept.items():
    specs = []
    for w in waves:
      x = np.zeros(length, np.float32)
      x[:len(w)] = w / 32768.0
      _, _, z = scipy.signal.stft(x, nperseg=267, noverlap=122, nfft=400,
                                  boundary=None, padded=False, window=window)
      specs.append(np.abs(z) * window_sum)  # The thesis's (MATLAB) scaling.
    out[split] = np.stack(specs).astype(np.float32)
  out["mean"] = out["TRAIN"].mean(0)
  return out


def best_of(fn, repeats, times=None):
  """(best seconds, result); every repeat's seconds appended to `times`."""
  times = [] if times is None else times
  for _ in range(repeats):
    start = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - start)
  return min(times), result


def envelope(t_loop, t_ours):
  """(best loop / best ours, smallest and largest loop / ours time ratio
  over all pairs of repeats): the timings are not paired, so the range is
  every combination's."""
  return (min(t_loop) / min(t_ours), min(t_loop) / max(t_ours),
          max(t_loop) / min(t_ours))


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--corpus", default="")
  parser.add_argument("--repeats", type=int, default=3)
  common.add_json_argument(parser)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    root = args.corpus
    if not root:
      root = os.path.join(tmp, "timit")
      start = time.perf_counter()
      summary = corpus.make_timit_corpus(root, corpus.get_config(), seed=0)
      print(f"generated default corpus in {time.perf_counter() - start:.1f} s: "
            f"{summary['TRAIN']['phones']} train / {summary['TEST']['phones']}"
            " test phones")
    data.load_phone_data(root, cache=False)  # Compile the STFT once.
    all_pkg, all_loop, all_cached = [], [], []
    t_pkg, feats = best_of(lambda: data.load_phone_data(root, cache=False),
                           args.repeats, all_pkg)
    t_loop, ref = best_of(lambda: plain_loop(root), args.repeats, all_loop)
    cache_dir = os.path.join(tmp, "cache")
    data.load_phone_data(root, cache_dir=cache_dir)
    t_cached, _ = best_of(lambda: data.load_phone_data(root, cache_dir=cache_dir),
                          args.repeats, all_cached)
    scale = feats.train.spectrograms.max() / ref["TRAIN"].max()
    np.testing.assert_allclose(feats.train.spectrograms, ref["TRAIN"] * scale,
                               rtol=1e-3, atol=1e-5 * ref["TRAIN"].max())
    n = len(feats.train) + len(feats.test)
    print(f"phones: {n} ({len(feats.train)} train, {len(feats.test)} test), "
          f"spectrograms {feats.train.spectrograms.shape[1:]}, "
          f"max_length {feats.max_length}")
    print(f"recon_jax.data.load_phone_data (no cache): {t_pkg:.2f} s")
    print(f"plain per-file NumPy/SciPy loop:           {t_loop:.2f} s")
    print(f"recon_jax.data.load_phone_data (cached):   {t_cached:.2f} s")
    print(f"speed-up vs the loop: {t_loop / t_pkg:.2f}x uncached, "
          f"{t_loop / t_cached:.1f}x cached")
    case = f"corpus -> {n} phone spectrograms (201, 16)"
    against = "plain per-file NumPy/SciPy loop"
    note = (f"best of {args.repeats} each, unpaired; range over all pairs "
            "of repeats")
    common.write_json(args.json, "data", [
        common.result_row(case, "load_phone_data (no cache)", against,
                          envelope(all_loop, all_pkg), note=note),
        common.result_row(case, "load_phone_data (cached)", against,
                          envelope(all_loop, all_cached), note=note)])


if __name__ == "__main__":
  main()
