"""The environment of a process a test starts (`recon-jax`, a job script).

It keeps the test session's XLA flags (tests/conftest.py: the optimisation
level, the collective timeout) so that a subprocess computes bit for bit
what the pytest process computes, and gives it `devices` fake CPU devices
(None: none forced, the package's default of one).
"""
import os

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def xla_flags(devices=None) -> str:
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith(DEVICE_COUNT_FLAG)]
  if devices is not None:
    flags.append(f"{DEVICE_COUNT_FLAG}={devices}")
  return " ".join(flags)


def env(devices=None, **extra) -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(devices),
              **extra)
