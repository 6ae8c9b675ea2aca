"""recon_jax.checks: one clear error naming the field, value and want."""
import numpy as np
import pytest

from recon_jax import checks
from recon_jax.train import cnn12_data


def test_integers_reals_booleans_and_choices():
  assert checks.integer(np.int64(3), "n", lo=1) == 3
  assert checks.real(2, "x", lo=0, hi=2) == 2.0
  assert checks.boolean(np.bool_(True), "flag") is True
  assert checks.one_of("a", "mode", ("a", "b")) == "a"
  for call, message in (
      (lambda: checks.integer(True, "n", lo=1), "n=True: want an integer >= 1"),
      (lambda: checks.integer(2.0, "n"), "n=2.0: want an integer"),
      (lambda: checks.integer(0, "n", 1, 4), r"n=0: want an integer in \[1, 4\]"),
      (lambda: checks.real(float("nan"), "x", lo=0), "x=nan: want a number >= 0"),
      (lambda: checks.real(3, "x", 0, 2), r"x=3: want a number in \[0, 2\]"),
      (lambda: checks.boolean(1, "flag"), "flag=1: want True or False"),
      (lambda: checks.one_of("c", "mode", ("a", "b")),
       r"mode='c': want one of \('a', 'b'\)")):
    with pytest.raises(ValueError, match=message):
      call()


@pytest.mark.parametrize("field,value,message", [
    ("in_memory_limit_gb", -1.0, "data.in_memory_limit_gb"),
    ("read_threads", 0, "data.read_threads=0: want an integer >= 1"),
    ("worker_processes", -1, "data.worker_processes=-1"),
    ("prefetch_batches", True, "data.prefetch_batches=True"),
])
def test_streaming_fields_of_the_data_block_are_checked(field, value, message):
  c = cnn12_data.data_config("generated_events", "tiny")
  c[field] = value
  with pytest.raises(ValueError, match=message):
    cnn12_data.check_data_config(c)
