"""What every benchmark shares: paired timing, the PyTorch reference set-up,
the machine line, this machine's matmul peak (for GFLOP/s fractions), and
the --json result file that benchmarks/run_all.py reads.

Ratios, not times: these machines are noisy, so each repeat times every
implementation back to back and the ratios of one repeat are taken together;
the median and range over repeats are reported.
"""
import json
import os
import platform
import sys
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


# Machine-readable results (benchmarks/run_all.py): every script takes
# --json PATH and writes its headline ratios there, next to its printed
# tables (which stay the human-readable result).


def add_json_argument(parser) -> None:
  parser.add_argument(
      "--json", default="", metavar="PATH",
      help="also write the result rows as JSON to PATH (read by "
      "benchmarks/run_all.py)")


def result_row(case: str, ours: str, against: str, ratio, *,
               gflops: float | None = None, peak_pct=None,
               note: str = "") -> dict:
  """One row: time(against) / time(ours), > 1 = ours faster.

  ratio and peak_pct are a number or (median, min, max) over repeats.
  """
  def split(v):
    if v is None:
      return None, None
    if isinstance(v, (tuple, list)):
      return float(v[0]), [float(v[1]), float(v[2])]
    return float(v), None
  r, r_range = split(ratio)
  p, p_range = split(peak_pct)
  return {"case": case, "ours": ours, "against": against, "ratio": r,
          "range": r_range,
          "gflops": None if gflops is None else float(gflops),
          "peak_pct": p, "peak_pct_range": p_range, "note": note}


def write_json(path: str, benchmark: str, rows: list, notes=(),
               **extra) -> None:
  """Writes {benchmark, argv, rows, notes, ...} to path (nothing if '')."""
  if not path:
    return
  out = {"benchmark": benchmark, "argv": sys.argv[1:], "rows": list(rows),
         "notes": list(notes), "load_average_end": os.getloadavg()[0],
         **extra}
  with open(path, "w") as f:
    json.dump(out, f, indent=1)
