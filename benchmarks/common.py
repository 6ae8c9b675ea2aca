"""What every benchmark shares: paired timing, the PyTorch reference set-up,
the machine line, and this machine's matmul peak (for GFLOP/s fractions).

Ratios, not times: these machines are noisy, so each repeat times every
implementation back to back and the ratios of one repeat are taken together;
the median and range over repeats are reported.
"""
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def wall(fn, calls=1) -> float:
  """Seconds per call of fn() (its result blocked on)."""
  t0 = time.perf_counter()
  for _ in range(calls):
    jax.block_until_ready(fn())
  return (time.perf_counter() - t0) / calls


def paired_times(fns: dict, repeats: int, min_seconds: float = 0.05) -> dict:
  """{name: [seconds per call of each repeat]}, timed back to back.

  Each fn is warmed up (compiled) first and then called enough times in a
  row to last >= min_seconds per repeat.
  """
  calls = {}
  for name, fn in fns.items():
    wall(fn)  # warm-up: compile / allocate
    calls[name] = max(1, int(np.ceil(min_seconds / max(wall(fn), 1e-9))))
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      times[name].append(wall(fn, calls[name]))
  return times


def ratio_stats(times: dict, reference: str, name: str):
  """(median, min, max) over repeats of time(reference) / time(name)."""
  r = np.asarray(times[reference]) / np.asarray(times[name])
  return float(np.median(r)), float(r.min()), float(r.max())


def torch_reference(threads: int | None = None):
  """Imports torch set up as XLA runs: denormals flushed, all cores.

  XLA:CPU flushes denormals to zero; an unflushed PyTorch can be 5-15x
  slower on the tails of small gradients, which would make any ratio
  meaningless.
  """
  import torch  # pylint: disable=g-import-not-at-top
  if not torch.set_flush_denormal(True):
    raise RuntimeError("this CPU cannot flush denormals in PyTorch; ratios "
                       "against XLA (which does) would not be fair")
  torch.set_num_threads(threads or os.cpu_count())
  # The flag is per thread (MXCSR); an op large enough to be split over the
  # intra-op threads shows whether every one of them flushes.
  tiny = torch.full((1 << 22,), 1e-39) * 0.5
  if bool(tiny.ne(0).any()):
    raise RuntimeError("PyTorch's intra-op threads do not flush denormals; "
                       "ratios against XLA (which does) would not be fair")
  return torch


def machine_line() -> str:
  import scipy  # pylint: disable=g-import-not-at-top
  line = (f"jax {jax.__version__} on {jax.default_backend()} "
          f"({jax.device_count()} devices), numpy {np.__version__}, scipy "
          f"{scipy.__version__}, {platform.machine()}, {os.cpu_count()} CPUs")
  try:
    import torch  # pylint: disable=g-import-not-at-top
    line += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
  except ImportError:
    pass
  return line


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
  """This machine's float32 matmul rate (GFLOP/s) through XLA, best of
  `repeats`: the peak that compute-bound kernels are measured against."""
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  wall(lambda: matmul(a))
  best = min(wall(lambda: matmul(a)) for _ in range(repeats))
  return 2 * n**3 / best / 1e9
