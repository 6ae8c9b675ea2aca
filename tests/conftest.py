"""Test set-up: a fake 8-device CPU mesh, set before JAX is imported anywhere.

No persistent compilation cache: JAX writes its entries in place
(lru_cache.put: `write_bytes`), so a process the tests SIGKILL, or a second
process reading while one writes, can leave or see a partial entry; with one
shared by the session, kill-and-rerun tests hung in block_until_ready three
times in one afternoon.
"""
import os

# XLA's backend at -O0: the suite's programs are tiny, so compiling them is
# most of its time; -O0 compiles ~25% faster and runs them about as fast.
# Processes the tests start keep these flags (tests/subprocess_env.py), so
# they compute bit for bit what this process computes.
# The in-process collectives of the 8 fake devices abort the process when
# one device's thread reaches a rendezvous more than XLA's termination
# timeout after the others; on 2 cores shared by two pytest workers and the
# processes they start, a thread can be descheduled that long, so the
# timeout is raised (a real deadlock still ends at the tests' own timeouts).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    " --xla_cpu_collective_call_terminate_timeout_seconds=1200"
    " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", False)


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "serial: run alone after the parallel part (README command "
      "2's second pytest call): several processes with wall-clock deadlines")


@pytest.fixture(scope="session", autouse=True)
def _eight_devices():
  assert jax.device_count() == 8, (
      f"tests expect 8 fake CPU devices, got {jax.device_count()}: XLA_FLAGS "
      "was set after JAX initialised its backend")
