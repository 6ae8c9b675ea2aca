"""A generated AudioSet-layout set larger than its memory budget is packed,
streamed through Grain into `recon-jax` training, killed at a checkpoint,
and the rerun ends bit-identical to an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from recon_jax import provenance
from recon_jax.data import pack
from recon_jax.data import pipeline
from recon_jax.experiments import registry
from recon_jax.experiments import training
from recon_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/cnn12_events.py:tiny"


def _overrides(data_dir):
  return {"source": "generated_audioset", "size": "tiny", "dir": data_dir,
          # The tiny set is ~19 MB as float32: over this budget, so streamed.
          "in_memory_limit_gb": 0.005}


def _command(workdir, data_dir):
  return [sys.executable, "-m", "recon_jax", f"--config={CONFIG}",
          f"--workdir={workdir}"] + [
              f"--config.data.{k}={v}" for k, v in _overrides(data_dir).items()]


def _finished_steps(run_dir):
  directory = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def test_audioset_over_budget_streams_is_killed_and_resumes_bit_identical(
    tmp_path):
  data_dir = str(tmp_path / "audioset")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  killed = str(tmp_path / "killed")
  run = os.path.join(killed, "seed_0")
  proc = subprocess.Popen(_command(killed, data_dir), cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.monotonic() + 300
  while not _finished_steps(run) and time.monotonic() < deadline:
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  kept = _finished_steps(run)
  assert kept and kept[-1] < 10, kept

  # Meanwhile-equivalent uninterrupted run in this process (8 devices too).
  import importlib  # pylint: disable=g-import-not-at-top
  config = importlib.import_module("configs.cnn12_events").get_config("tiny")
  for k, v in _overrides(data_dir).items():
    config.data[k] = v
  whole = str(tmp_path / "whole")
  training.cnn12(registry.without_experiment(config), whole)

  done = subprocess.run(_command(killed, data_dir), cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Resumed from" in done.stderr
  steps = loop.list_checkpoint_steps(run)
  a = loop.restore_params_at(run, steps[-1])
  b = loop.restore_params_at(os.path.join(whole, "seed_0"), steps[-1])
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a),
                                                   jax.tree.leaves(b)))

  # It streamed the pack made from the AudioSet layout, and says so.
  packed = [os.path.join(killed, "data", "packed", d) for d in os.listdir(
      os.path.join(killed, "data", "packed"))]
  assert len(packed) == 1 and packed[0].split(os.sep)[-1].startswith(
      "audioset-")
  data = pipeline.open_packed(packed[0])
  assert data.nbytes > 0.005 * 2**30
  made_by = provenance.read_json(os.path.join(run, "made_by.json"))
  assert made_by["data"] == data.fingerprint
  report = provenance.read_json(os.path.join(packed[0], pack.REPORT))
  assert sum(len(v) for v in report["missing"].values()) > 0
