"""Test set-up: a fake 8-device CPU mesh, set before JAX is imported anywhere,
and one XLA compilation cache for the whole session.

The cache lives in a fresh temporary folder (never reused across sessions,
so every run compiles what it runs at least once) and reaches the
subprocesses the tests start through the environment: the many tiny runs of
the same recipes (in-process, through `recon-jax`, on two processes) then
compile each program once per session instead of once per run. Loading a
cached executable gives the same results as compiling it.
"""
import atexit
import os
import shutil
import tempfile

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
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="recon_jax_tests_xla_cache_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

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
