"""Field checks for configs and arguments: one clear ValueError naming the
field, its value and what is wanted.

  integer(value, "train.batch_size", lo=1)        -> int
  real(value, "missing_fraction", lo=0, hi=0.5)   -> float
  boolean(value, "skip_bad")                       -> bool
  one_of(value, "encoding", ("int16", "flac"))     -> value

Booleans are not integers here (True is not a batch size), NaN and
infinities are not numbers.
"""
import numbers
from typing import Sequence

import numpy as np


def fail(field: str, value, want: str):
  raise ValueError(f"{field}={value!r}: {want}")


def _bounds(lo, hi) -> str:
  if hi is None:
    return f">= {lo}"
  return f"in [{lo}, {hi}]"


def integer(value, field: str, lo=None, hi=None) -> int:
  """`value` as an int within [lo, hi] (either bound may be None)."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, numbers.Integral):
    fail(field, value, "want an integer" + (
        f" {_bounds(lo, hi)}" if lo is not None else ""))
  if (lo is not None and value < lo) or (hi is not None and value > hi):
    fail(field, value, f"want an integer {_bounds(lo, hi)}")
  return int(value)


def real(value, field: str, lo=None, hi=None) -> float:
  """`value` as a finite float within [lo, hi] (either bound may be None)."""
  if (isinstance(value, (bool, np.bool_)) or
      not isinstance(value, numbers.Real) or not np.isfinite(value)):
    fail(field, value, "want a number" + (
        f" {_bounds(lo, hi)}" if lo is not None else ""))
  if (lo is not None and value < lo) or (hi is not None and value > hi):
    fail(field, value, f"want a number {_bounds(lo, hi)}")
  return float(value)


def boolean(value, field: str) -> bool:
  if not isinstance(value, (bool, np.bool_)):
    fail(field, value, "want True or False")
  return bool(value)


def one_of(value, field: str, choices: Sequence):
  if value not in choices:
    fail(field, value, f"want one of {tuple(choices)}")
  return value
