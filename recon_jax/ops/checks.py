"""Input checks shared by the public functions of the package.

The checks run only on concrete arrays (eager calls, data prep); under `jit`
the values are tracers and only the static shape checks apply, so callers
that want value checks validate at their boundary before jitting.
"""
import jax
import numpy as np


def is_concrete(x) -> bool:
  """True if `x` holds values now (not a tracer inside jit/vmap/grad)."""
  return not isinstance(x, jax.core.Tracer)


def check_finite(x, name: str):
  """Raises ValueError if a concrete `x` holds NaN or Inf."""
  if is_concrete(x):
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
      bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
      raise ValueError(f"{name} holds {bad} NaN/Inf value(s) of {arr.size}; "
                       "they would silently poison the result")


def check_min_rank(x, rank: int, name: str, layout: str):
  if np.ndim(x) < rank:
    raise ValueError(f"{name} must have rank >= {rank} ({layout}), got shape "
                     f"{np.shape(x)}")


def check_rank(x, ranks, name: str, layout: str):
  if np.ndim(x) not in ranks:
    raise ValueError(f"{name} must have rank in {tuple(ranks)} ({layout}), got "
                     f"shape {np.shape(x)}")
