"""Method settings as frozen dataclasses: checks and the mapping from configs.

Every settings class of the inversion package (AnnealingConfig,
BackpropConfig, DecoderConfig, DecoderTrainConfig, ReconstructionConfig)
refuses, when it is built, a value that cannot work (a ValueError naming the
class, the field, the value and what is allowed), and is made from a config
mapping (a dict or an ml_collections ConfigDict) in one way:

    config_from_dict(BackpropConfig, {"max_steps": 300})

which refuses fields the class does not have, naming them. Missing fields
keep their defaults; a field whose default is itself a settings dataclass
takes a nested mapping.
"""
import dataclasses
import math
import numbers
from typing import Any, Mapping

import numpy as np


class Settings:
  """Base of the settings dataclasses: `replace` and the field checks.

  Subclasses are frozen dataclasses that call the check_* helpers below
  from `__post_init__`.
  """

  def replace(self, **changes):
    """A copy with `changes` (checked like a fresh instance)."""
    return dataclasses.replace(self, **changes)

  def _where(self, field: str) -> str:
    return f"{type(self).__name__}.{field}"

  def check_int(self, field: str, minimum: int | None = None):
    value = getattr(self, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      raise ValueError(f"{self._where(field)}={value!r}: must be an integer")
    if minimum is not None and value < minimum:
      raise ValueError(f"{self._where(field)}={value!r}: must be >= "
                       f"{minimum}")

  def check_float(self, field: str, low: float | None = None,
                  high: float | None = None, low_open: bool = False,
                  high_open: bool = False):
    """A finite real in [low, high] ((low, ...) if low_open, etc.)."""
    value = getattr(self, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
      raise ValueError(f"{self._where(field)}={value!r}: must be a number")
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = (f"{lo}{'-inf' if low is None else low}, "
               f"{'inf' if high is None else high}{hi}")
    bad = not math.isfinite(value)
    if low is not None:
      bad |= value <= low if low_open else value < low
    if high is not None:
      bad |= value >= high if high_open else value > high
    if bad:
      raise ValueError(f"{self._where(field)}={value!r}: must be a finite "
                       f"number in {allowed}")

  def check_bool(self, field: str):
    value = getattr(self, field)
    if not isinstance(value, (bool, np.bool_)):
      raise ValueError(f"{self._where(field)}={value!r}: must be True or "
                       "False")

  def check_choice(self, field: str, choices):
    value = getattr(self, field)
    if value not in tuple(choices):
      raise ValueError(f"{self._where(field)}={value!r}: must be one of "
                       f"{tuple(choices)}")


def _plain(mapping) -> dict:
  if mapping is None:
    return {}
  if hasattr(mapping, "to_dict"):  # ml_collections.ConfigDict
    mapping = mapping.to_dict()
  if not isinstance(mapping, Mapping):
    raise ValueError(f"expected a mapping of settings, got "
                     f"{type(mapping).__name__}: {mapping!r}")
  return dict(mapping)


def config_from_dict(cls, mapping: Mapping[str, Any] | None):
  """Builds the settings dataclass `cls` from a mapping.

  Args:
    cls: a settings dataclass (e.g. BackpropConfig, DecoderTrainConfig,
      ReconstructionConfig).
    mapping: {field: value} (a dict or an ml_collections ConfigDict; None or
      {} for all defaults). A field whose default is a dataclass takes a
      nested mapping, made with this same function.

  Returns:
    cls(**mapping), checked by the class.

  Raises:
    ValueError: a field `cls` does not have (all such fields named, with the
      valid ones), or a value the class refuses.
  """
  if not dataclasses.is_dataclass(cls):
    raise ValueError(f"{cls!r} is not a settings dataclass")
  values = _plain(mapping)
  fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid fields: "
                     f"{sorted(fields)}")
  kwargs = {}
  for name, value in values.items():
    field = fields[name]
    default = (field.default if field.default is not dataclasses.MISSING
               else None)
    if dataclasses.is_dataclass(default) and not dataclasses.is_dataclass(
        value):
      value = config_from_dict(type(default), value)
    kwargs[name] = value
  return cls(**kwargs)
