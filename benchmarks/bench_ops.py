"""Speed of the ops primitives relative to the plainest correct alternatives.

Prints ratios (alternative's time / ours; > 1 means ours is faster): each
repeat times the two back to back after a warm-up (jit compiled), and the
table gives the median ratio over the repeats and its range, so that load
from other processes on the machine hits both sides alike. Each pair is
checked to compute the same thing before it is timed.

  python benchmarks/bench_ops.py [--repeats 7] [--gl_iters 100] [--json PATH]
"""
import argparse
import os
import platform
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from benchmarks import common  # noqa: E402
from recon_jax import ops

WINDOW_LENGTH, HOP, N_FFT = ops.spectral.WINDOW_LENGTH, ops.spectral.HOP, \
    ops.spectral.N_FFT


def _wall(fn, calls=1):
  t0 = time.perf_counter()
  for _ in range(calls):
    jax.block_until_ready(fn())
  return (time.perf_counter() - t0) / calls


def time_ratio(alternative, ours, repeats, min_seconds=0.05):
  """(median, min, max) over repeats of time(alternative) / time(ours).

  Each side runs enough calls in a row to last >= min_seconds, so that
  sub-millisecond ops are not timed one scheduler tick at a time.
  """
  t_alt, t_ours = _wall(alternative), _wall(ours)  # warm-up (jit compiles)
  t_alt, t_ours = _wall(alternative), _wall(ours)
  n_alt = max(1, int(np.ceil(min_seconds / t_alt)))
  n_ours = max(1, int(np.ceil(min_seconds / t_ours)))
  ratios = [_wall(alternative, n_alt) / _wall(ours, n_ours)
            for _ in range(repeats)]
  return float(np.median(ratios)), min(ratios), max(ratios)


# Plain NumPy references (vectorised, not Python loops over elements).
def np_max_pool(x, window, stride):
  """(N, L, C) -> values, switches (N, L_out, C); first maximum wins."""
  win = np.lib.stride_tricks.sliding_window_view(x, window, axis=1)[:, ::stride]
  off = np.argmax(win, axis=-1)  # (N, L_out, C)
  vals = np.take_along_axis(win, off[..., None], axis=-1)[..., 0]
  return vals, off + stride * np.arange(off.shape[1])[:, None]


def np_max_unpool(y, switches, length):
  n, n_out, c = y.shape
  flat = (np.arange(n)[:, None, None] * length + switches) * c + np.arange(c)
  out = np.bincount(flat.ravel(), weights=y.ravel(), minlength=n * length * c)
  return out.reshape(n, length, c).astype(y.dtype)


def np_max_pool_grad(x, cot, window, stride):
  """Gradient of sum(max_pool(x) * cot) in x: cot scattered to the switches."""
  _, sw = np_max_pool(x, window, stride)
  return np_max_unpool(cot, sw, x.shape[1])


def np_blind_unpool(y, window, stride, length):
  n, n_out, c = y.shape
  total = np.zeros((n, length, c), y.dtype)
  count = np.zeros((length, 1), y.dtype)
  stop = (n_out - 1) * stride + 1
  for k in range(window):
    total[:, k:k + stop:stride] += y
    count[k:k + stop:stride] += 1
  return total / np.maximum(count, 1)


def np_griffin_lim(mag, n_iter, momentum=0.99, seed=0):
  """Fast Griffin-Lim with scipy's STFT (the loop librosa.griffinlim runs)."""
  warnings.filterwarnings("ignore", "NOLA condition failed")
  kw = dict(nperseg=WINDOW_LENGTH, noverlap=WINDOW_LENGTH - HOP, nfft=N_FFT,
            window=ops.stft_window())  # the thesis's symmetric Hamming
  rng = np.random.default_rng(seed)
  angles = np.exp(2j * np.pi * rng.random(mag.shape)).astype(np.complex64)
  prev = np.zeros_like(angles)
  for _ in range(n_iter):
    x = signal.istft(mag * angles, boundary=False, **kw)[1]
    rebuilt = signal.stft(x, boundary=None, padded=False, **kw)[2]
    accel = rebuilt - (momentum / (1 + momentum)) * prev
    angles = accel / (np.abs(accel) + 1e-16)
    prev = rebuilt
  return signal.istft(mag * angles, boundary=False, **kw)[1]


def pooling_rows(name, shape, window, stride, repeats):
  rng = np.random.default_rng(0)
  x = rng.standard_normal(shape).astype(np.float32)
  length = shape[1]
  xj = jnp.asarray(x)
  y, sw = ops.max_pool_with_argmax(xj, window, stride)
  cot = rng.standard_normal(y.shape).astype(np.float32)
  cotj, swj = jnp.asarray(cot), jnp.asarray(sw)

  pool = jax.jit(lambda x: ops.max_pool_with_argmax(x, window, stride))
  ours_grad = jax.jit(jax.grad(lambda x: jnp.vdot(
      ops.max_pool_with_argmax(x, window, stride)[0], cotj)))
  flax_grad = jax.jit(jax.grad(lambda x: jnp.vdot(
      nn.max_pool(x, (window,), strides=(stride,)), cotj)))
  unpool = jax.jit(lambda y, s: ops.max_unpool(y, s, length))
  blind = jax.jit(lambda y: ops.blind_unpool(y, window, stride, length))

  ref_y, ref_sw = np_max_pool(x, window, stride)
  np.testing.assert_array_equal(np.asarray(y), ref_y)
  np.testing.assert_array_equal(np.asarray(sw), ref_sw)
  g = np.asarray(ours_grad(xj))
  np.testing.assert_allclose(g, np_max_pool_grad(x, cot, window, stride),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(g, np.asarray(flax_grad(xj)), rtol=1e-6,
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(unpool(cotj, swj)),
                             np_max_unpool(cot, ref_sw, length), rtol=1e-6,
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(blind(cotj)),
                             np_blind_unpool(cot, window, stride, length),
                             rtol=1e-6, atol=1e-6)

  r = lambda alt, ours: time_ratio(alt, ours, repeats)
  label = f"{name} {shape} w{window}/s{stride}"
  pool_ = lambda: pool(xj)
  grad_ = lambda: ours_grad(xj)
  return [
      (label, "max_pool_with_argmax", "NumPy", r(
          lambda: np_max_pool(x, window, stride), pool_)),
      (label, "max-pool gradient", "NumPy", r(
          lambda: np_max_pool_grad(x, cot, window, stride), grad_)),
      (label, "max-pool gradient", "flax max_pool gradient", r(
          lambda: flax_grad(xj), grad_)),
      (label, "max_unpool", "NumPy", r(
          lambda: np_max_unpool(cot, ref_sw, length),
          lambda: unpool(cotj, swj))),
      (label, "blind_unpool", "NumPy", r(
          lambda: np_blind_unpool(cot, window, stride, length),
          lambda: blind(cotj))),
  ]


def griffin_lim_rows(n_iter, repeats):
  rng = np.random.default_rng(1)
  n, length = 48, 2554
  t = np.arange(length) / 16000.
  x = np.sin(2 * np.pi * (rng.uniform(100, 2000, (n, 1)) + 3000 * t) * t)
  x = (x + 0.1 * rng.standard_normal((n, length))).astype(np.float32)
  # scipy's default scaling, which its istft inverts.
  mag = np.abs(np.asarray(ops.stft(x, scaling="spectrum")))  # (48, 201, 16)
  key = jax.random.key(0)
  magj = jnp.asarray(mag)
  ours = lambda: ops.griffin_lim(magj, key, n_iter=n_iter, length=length,
                                 scaling="spectrum")
  sc = lambda y: float(jnp.mean(ops.spectral_convergence(
      magj, y, scaling="spectrum")))
  label = f"Griffin-Lim {n_iter} it, {mag.shape}"
  sc_ours, sc_np = sc(ours()), sc(np_griffin_lim(mag, n_iter))
  rows = [(label, "griffin_lim", "NumPy/scipy loop",
           time_ratio(lambda: np_griffin_lim(mag, n_iter), ours, repeats))]
  notes = [f"spectral convergence after {n_iter} it: ours {sc_ours:.3f}, "
           f"NumPy/scipy {sc_np:.3f}"]
  try:
    import librosa  # pylint: disable=g-import-not-at-top
  except ImportError:
    notes.append("librosa not installed: no librosa row")
    return rows, notes
  # librosa frames are n_fft long (the window centred in them) and unscaled:
  # the same 16 frames need 15 * hop + n_fft samples, and its own STFT
  # measures its convergence.
  window = ops.stft_window()  # the thesis's symmetric Hamming, as ours
  kw = dict(hop_length=HOP, win_length=WINDOW_LENGTH, n_fft=N_FFT,
            center=False, window=window)
  length_l = (mag.shape[-1] - 1) * HOP + N_FFT
  mag_l = mag * window.sum()
  run_l = lambda: librosa.griffinlim(mag_l, n_iter=n_iter, momentum=0.99,
                                     init="random", random_state=0,
                                     length=length_l, **kw)
  est = np.abs(librosa.stft(run_l(), **kw))
  sc_l = float(np.mean(np.linalg.norm(est - mag_l, axis=(1, 2)) /
                       np.linalg.norm(mag_l, axis=(1, 2))))
  rows.append((label, "griffin_lim", f"librosa {librosa.__version__}",
               time_ratio(run_l, ours, repeats)))
  notes.append(f"spectral convergence, librosa (its own STFT): {sc_l:.3f}")
  return rows, notes


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--gl_iters", type=int, default=100)
  common.add_json_argument(parser)
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, {os.cpu_count()} CPUs; {args.repeats} "
        "paired repeats after warm-up")
  rows = pooling_rows("phone CNN", (128, 201, 16), 5, 2, args.repeats)
  rows += pooling_rows("CNN12", (16, 8000, 64), 2, 2, args.repeats)
  gl_rows, notes = griffin_lim_rows(args.gl_iters, args.repeats)
  rows += gl_rows
  print("\n| case | op | alternative | alternative time / ours (median) | "
        "range |")
  print("|---|---|---|---|---|")
  for label, op, alt, (med, lo, hi) in rows:
    print(f"| {label} | {op} | {alt} | {med:.2f} | {lo:.2f}-{hi:.2f} |")
  print()
  for note in notes:
    print(note)
  common.write_json(args.json, "ops", [
      common.result_row(label, op, alt, stats)
      for label, op, alt, stats in rows], notes)


if __name__ == "__main__":
  main()
