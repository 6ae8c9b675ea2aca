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

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="recon_jax_tests_xla_cache_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="session", autouse=True)
def _eight_devices():
  assert jax.device_count() == 8, (
      f"tests expect 8 fake CPU devices, got {jax.device_count()}: XLA_FLAGS "
      "was set after JAX initialised its backend")
