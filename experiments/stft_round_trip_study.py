"""Why the STFT round trip scores below the thesis's ~0.7: a small grid.

  python experiments/stft_round_trip_study.py --workdir=/tmp/stft_study
      [--corpus_size=tiny] [--data_workdir=DIR] [--num_phones=160]
      [--seed=0] [--iters=0,32,100,300,1000]

Data: the thesis experiment's own path (recon_jax.data.prepare.
phone_data_from_config with corpus_settings(--corpus_size)): an espeak-ng
corpus in TIMIT layout is generated under --data_workdir (default
--workdir; "tiny" took ~1 s here), or reused if that directory already
holds one with the same settings (e.g. a thesis run's workdir, whose
corpus/ and cache/ are then read, not remade). Phones are zero-padded to the
longest kept phone (95th percentile of TRAIN lengths), as the thesis.
--num_phones TEST phones are drawn at random (seeded) and every cell scores
the same phones.

Each cell: mean over phones of max_xcorr (recon_jax.metrics.max_xcorr, the
thesis's mxcorr) between a phone's waveform and the waveform rebuilt from its
STFT magnitude, with a 95% t-interval over phones (mean +- t(0.975, n-1) *
sd / sqrt(n)). Grid:
  STFT    window 267 / hop 145 / n_fft 400 (thesis, the package default),
          267 / 145 / 800, and 800 / 145 / 800 (Hamming window throughout);
  phase   Griffin-Lim from a random phase (drawn as ops.griffin_lim draws
          it) or from zero phase, momentum 0.99 (fast GL, the package) or 0
          (classic GL), after 0 / 32 / 100 / 300 / 1000 iterations;
          "true phase": ops.istft of the complex STFT (the upper bound);
          "real part": ops.istft of the STFT's real part, a literal reading
          of the thesis's "omitting the imaginary (phase) values" (no
          phase recovery; not what the package does);
  measure "padded": the waveforms as the package scores them (the whole
          padded length); "own length": the same reconstruction cut to each
          phone's own length (PhoneSplit.lengths) before max_xcorr.

Griffin-Lim here is this script's own loop, a copy of
recon_jax.ops.spectral._griffin_lim (same update, same final overlap-add
with the GL_MIN_WINDOW_ENERGY floor, built from the module's _stft_t /
_istft_t / _istft) with two changes: the initial phase is an argument (so it
can be zero; ops.griffin_lim only draws a random one) and the iterations run
in segments so that 32, 100, 300 and 1000 come from one run (the state is
carried over, so the 100-iteration result is that of a 100-iteration run).
The script checks it against ops.griffin_lim (random phase, 100 iterations)
and also recomputes the package's own baseline (metrics.
stft_round_trip_mxcorr on reconstruction.select_stimuli's 48 phones, with
_baselines' key) so the grid can be tied to the number the thesis run
reports. All phones go through each function at once (jit, batched).
"""
import functools
import json
import os
import platform
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from recon_jax import metrics  # pylint: disable=g-import-not-at-top
from recon_jax import ops
from recon_jax.data import features
from recon_jax.data import prepare
from recon_jax.experiments import reconstruction
from recon_jax.ops import spectral

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/stft_study",
                               "Where results.json (and, by default, the "
                               "corpus) go.")
_DATA_WORKDIR = flags.DEFINE_string(
    "data_workdir", "", "Directory holding (or to hold) corpus/ and cache/; "
    "default --workdir. A thesis run's workdir reuses its data.")
_CORPUS_SIZE = flags.DEFINE_enum("corpus_size", "tiny", ["tiny", "default"],
                                 "Generated corpus size (configs/"
                                 "make_corpus.py).")
_NUM_PHONES = flags.DEFINE_integer("num_phones", 160, "TEST phones drawn.")
_SEED = flags.DEFINE_integer("seed", 0, "Phone draw and Griffin-Lim phase.")

_ITERS = flags.DEFINE_list("iters", ["0", "32", "100", "300", "1000"],
                           "Griffin-Lim iteration counts of the grid.")
SETTINGS = (  # (label, window_length, hop, n_fft)
    ("win 267 / hop 145 / n_fft 400 (thesis)", 267, 145, 400),
    ("win 267 / hop 145 / n_fft 800", 267, 145, 800),
    ("win 800 / hop 145 / n_fft 800", 800, 145, 800),
)
MOMENTA = (0.99, 0.0)
INITS = ("random", "zero")


@functools.partial(jax.jit, static_argnames=("n", "w", "h", "nfft", "window"))
def _gl_steps(mag_t, angles, prev, momentum, n, w, h, nfft, window):
  """n Griffin-Lim iterations, time-major, as spectral._griffin_lim's loop."""

  def step(carry, _):
    angles, prev = carry
    signal = spectral._istft_t(mag_t * angles, w, h, nfft, "none", None,  # pylint: disable=protected-access
                               window)
    rebuilt = spectral._stft_t(signal, w, h, nfft, "none", window)  # pylint: disable=protected-access
    accel = rebuilt - (momentum / (1 + momentum)) * prev
    angles = accel / (jnp.abs(accel) + 1e-16)
    return (angles, rebuilt), None

  (angles, prev), _ = jax.lax.scan(step, (angles, prev), None, length=n)
  return angles, prev


def _gl_output(mag_t, angles, w, h, nfft, length, window):
  """The final overlap-add of ops.griffin_lim (energy floor included)."""
  return spectral._istft(jnp.swapaxes(mag_t * angles, -1, -2), w, h, nfft,  # pylint: disable=protected-access
                         length, "none",
                         min_energy=spectral.GL_MIN_WINDOW_ENERGY,
                         window=window)


def griffin_lim_snapshots(magnitude, init, key, momentum, iters, w, h, nfft,
                          length, window):
  """{n_iter: (N, length) waveform} for each n_iter in `iters` (ascending)."""
  if init == "random":  # exactly ops.griffin_lim's draw
    phase0 = jnp.exp(2j * jnp.pi * jax.random.uniform(key, magnitude.shape))
  else:
    phase0 = jnp.ones(magnitude.shape, jnp.complex64)
  mag_t = jnp.swapaxes(magnitude, -1, -2)
  angles = jnp.swapaxes(phase0, -1, -2).astype(jnp.complex64)
  prev = jnp.zeros_like(angles)
  out, done = {}, 0
  for n in iters:
    if n > done:
      angles, prev = _gl_steps(mag_t, angles, prev, jnp.float32(momentum),
                               n - done, w, h, nfft, window)
      done = n
    out[n] = np.asarray(_gl_output(mag_t, angles, w, h, nfft, length, window))
  return out


def t_interval(x):
  x = np.asarray(x, np.float64)
  m = x.mean()
  half = scipy.stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
  return m, m - half, m + half


def _cell(x):
  m, lo, hi = t_interval(x)
  return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv):
  del argv
  t_start = time.time()
  workdir = _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  data_workdir = _DATA_WORKDIR.value or workdir
  corpus = prepare.corpus_settings(_CORPUS_SIZE.value)
  data = prepare.phone_data_from_config(corpus, data_workdir)
  t_data = time.time() - t_start
  stft_kw = features.stft_settings(data)
  window = stft_kw["window"]
  length = data.max_length
  logging.info("data %s: %d TEST phones, padded to %d samples (%.1f s)",
               data.fingerprint, len(data.test), length, t_data)

  rng = np.random.default_rng([_SEED.value, 11])
  picks = np.sort(rng.choice(len(data.test), _NUM_PHONES.value,
                             replace=False))
  waves = jnp.asarray(data.test.waveforms[picks])
  lengths = np.asarray(data.test.lengths[picks])
  own = jnp.asarray(np.arange(length)[None, :] < lengths[:, None],
                    jnp.float32)
  key = jax.random.key(_SEED.value)
  iters = tuple(sorted(int(n) for n in _ITERS.value))

  def scores(rebuilt):
    rebuilt = jnp.asarray(rebuilt)
    return (np.asarray(metrics.max_xcorr(waves, rebuilt, batch_ndim=1)),
            np.asarray(metrics.max_xcorr(waves * own, rebuilt * own,
                                         batch_ndim=1)))

  # 1. The package's own baseline (thesis experiment's _baselines).
  stim = reconstruction.select_stimuli(data, 2, 0)["phones"]["waveforms"]
  k1, _ = jax.random.split(jax.random.fold_in(jax.random.key(0), 10**6))
  package = {n: float(np.mean(metrics.stft_round_trip_mxcorr(
      stim, k1, n, **stft_kw))) for n in (5, 60, 100)}

  # 2. The grid.
  results = {}
  check = float("nan")  # stays nan when 100 is not in --iters
  for label, w, h, nfft in SETTINGS:
    spec = ops.stft(waves, window_length=w, hop=h, n_fft=nfft, window=window)
    true = ops.istft(spec, window_length=w, hop=h, n_fft=nfft, length=length,
                     window=window)
    results[label, "true phase", None] = {None: scores(true)}
    real = ops.istft(jnp.real(spec).astype(jnp.complex64), window_length=w,
                     hop=h, n_fft=nfft, length=length, window=window)
    results[label, "real part", None] = {None: scores(real)}
    mag = jnp.abs(spec)
    for init in INITS:
      for momentum in MOMENTA:
        snaps = griffin_lim_snapshots(mag, init, key, momentum, iters, w, h,
                                      nfft, length, window)
        results[label, init, momentum] = {n: scores(r)
                                          for n, r in snaps.items()}
        logging.info("%s %s %.2f: %s", label, init, momentum,
                     {n: round(float(s[0].mean()), 3)
                      for n, s in results[label, init, momentum].items()})
        if ((w, h, nfft, init, momentum) == (267, 145, 400, "random", 0.99)
            and 100 in iters):
          ref = ops.griffin_lim(mag, key, n_iter=100, momentum=0.99,
                                window_length=w, hop=h, n_fft=nfft,
                                length=length, window=window)
          check = float(np.max(np.abs(scores(ref)[0] -
                                      results[label, init, momentum][100][0])))
  elapsed = time.time() - t_start

  # 3. Print.
  lines = [
      f"Data: generated corpus ({_CORPUS_SIZE.value}), fingerprint "
      f"{data.fingerprint}; {len(picks)} random TEST phones of "
      f"{len(data.test)}, own lengths {int(lengths.min())}-"
      f"{int(lengths.max())} samples (median {int(np.median(lengths))}), "
      f"padded to {length}.",
      f"Package baseline (stft_round_trip_mxcorr on select_stimuli's 48 "
      f"phones, fast GL, random phase, key as _baselines): "
      + ", ".join(f"{n} it {v:.3f}" for n, v in package.items()) + ".",
      f"Check: this script's GL vs ops.griffin_lim (100 it, random, fast): "
      f"max |d mxcorr| over phones {check:.1e}.",
      "Cells: mean max_xcorr [95% t-interval over phones]; momentum 0.99 = "
      "fast GL, 0 = classic GL; 0 iterations = the initial phase alone.",
  ]
  for m_index, m_name in ((0, "padded (as the package scores)"),
                          (1, "own length (reconstruction cut to the "
                           "phone's length)")):
    lines += ["", f"Measure: {m_name}", "",
              "| STFT | phase | momentum | " +
              " | ".join(f"{n} it" for n in iters) + " |",
              "|---|---|---|" + "---|" * len(iters)]
    for label, *_ in SETTINGS:
      true_cell = _cell(results[label, "true phase", None][None][m_index])
      real_cell = _cell(results[label, "real part", None][None][m_index])
      lines.append(f"| {label} | true phase (istft) | - | {true_cell} |" +
                   " |" * (len(iters) - 1))
      lines.append(f"| {label} | real part (istft of Re) | - | {real_cell} |"
                   + " |" * (len(iters) - 1))
      for init in INITS:
        for momentum in MOMENTA:
          r = results[label, init, momentum]
          lines.append(f"| {label} | {init} | {momentum:g} | " +
                       " | ".join(_cell(r[n][m_index]) for n in iters) + " |")
  diffs = [abs(float(s[0].mean()) - float(s[1].mean()))
           for v in results.values() for s in v.values()]
  lines += ["", f"Own length vs padded: the largest difference between a "
            f"cell's two means is {max(diffs):.3f}."]
  # Phone length: the thesis setting's fast GL at 100 iterations.
  if 100 in iters:
    lines += ["", "Thesis STFT, random phase, fast GL, 100 it, by phone "
              "length (tertiles of own length):", "",
              "| own length (samples) | n | padded | own length |",
              "|---|---|---|---|"]
  groups = np.digitize(lengths, np.quantile(lengths, [1 / 3, 2 / 3]))
  for g in range(3 if 100 in iters else 0):
    sel = groups == g
    r = results[SETTINGS[0][0], "random", 0.99][100]
    lines.append(f"| {int(lengths[sel].min())}-{int(lengths[sel].max())} | "
                 f"{int(sel.sum())} | {_cell(r[0][sel])} | "
                 f"{_cell(r[1][sel])} |")
  lines += ["", f"Run time {elapsed:.0f} s (data {t_data:.0f} s) on "
            f"{platform.node()} ({platform.processor() or platform.machine()}"
            f", {os.cpu_count()} CPUs, JAX {jax.__version__} "
            f"{jax.default_backend()})."]
  text = "\n".join(lines)
  print(text)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text + "\n")
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({
        "fingerprint": data.fingerprint, "picks": picks.tolist(),
        "lengths": lengths.tolist(), "package_baseline": package,
        "check": check, "seconds": elapsed,
        "cells": [{"stft": k[0], "phase": k[1], "momentum": k[2],
                   "iters": n, "padded": s[0].tolist(),
                   "own_length": s[1].tolist()}
                  for k, v in results.items() for n, s in v.items()],
    }, f)


if __name__ == "__main__":
  app.run(main)
