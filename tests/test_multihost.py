"""Multi-host for real: 2 processes x 4 CPU devices through jax.distributed
(coordinator on localhost, Gloo collectives) against 1 process x 8 devices.

The tiny supervised and SimCLR recipes stream a packed AudioSet-layout set
(recon_jax.data.pipeline: each process reads only its rows); their final
parameters must equal the one-process run's within float32 rounding: 1e-6
for supervised, 2e-5 for SimCLR, whose NT-Xent gathers embeddings and
all-reduces gradients over Gloo in another order than one process does
(measured: 5e-6 after 10 steps). Killing one process makes the
other exit within the heartbeat with one error line; rerunning both
resumes and ends where an uninterrupted run ends. One process streaming the
AudioSet layout over its memory budget, killed and rerun, ends
bit-identical to an uninterrupted run. Experiments that are not multi-host
refuse at start with one line.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from recon_jax import provenance
from recon_jax.data import audioset
from recon_jax.data import pack
from recon_jax.data import pipeline
from recon_jax.experiments import registry
from recon_jax.experiments import training
from recon_jax.train import loop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import multihost_job  # noqa: E402
import subprocess_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = os.path.join(ROOT, "tests", "multihost_job.py")
TOLERANCE = {"supervised": 1e-6, "contrastive": 2e-5}
# Run alone (README command 2's second pytest call): 2 processes x 4 devices
# plus the pytest workers oversubscribe 2 cores, and the tests time the
# survivor's exit.
pytestmark = pytest.mark.serial


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(process_id: int, port: int, **extra) -> dict:
  return subprocess_env.env(
      devices=4, RECON_JAX_COORDINATOR=f"localhost:{port}",
      RECON_JAX_NUM_PROCESSES="2", RECON_JAX_PROCESS_ID=str(process_id),
      **extra)


_STARTED = []


@pytest.fixture(autouse=True)
def _no_process_left():
  """Whatever a test started is killed when it ends, passed or failed."""
  yield
  while _STARTED:
    p = _STARTED.pop()
    if p.poll() is None:
      p.kill()
      p.wait()


def _start_two(args, tmp_path, name, **extra):
  port = _free_port()
  procs = [subprocess.Popen(
      args, cwd=ROOT, env=_env(i, port, **extra), text=True,
      stdout=open(tmp_path / f"{name}_{i}.out", "w"),
      stderr=open(tmp_path / f"{name}_{i}.err", "w")) for i in range(2)]
  _STARTED.extend(procs)
  return procs


def _wait(procs, timeout=600):
  return [p.wait(timeout=timeout) for p in procs]


def _final_params(run_dir):
  return loop.restore_params_at(run_dir, loop.list_checkpoint_steps(
      run_dir)[-1])


def _max_difference(a, b) -> float:
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))),
      a, b)))


@pytest.fixture(scope="module")
def audioset_root(tmp_path_factory):
  """The tiny generated AudioSet-layout set (some clips listed, missing)."""
  root = str(tmp_path_factory.mktemp("audioset") / "audioset")
  audioset.generate_audioset(root, audioset.get_config("tiny"))
  return root


@pytest.fixture(scope="module")
def packed_audioset(audioset_root, tmp_path_factory):
  """That set packed."""
  out = str(tmp_path_factory.mktemp("packed") / "packed")
  manifest = pack.pack(audioset.list_audioset(audioset_root), out,
                       records_per_shard=8)
  assert manifest["splits"]["train"]["missing"] > 0
  return out


@pytest.fixture(scope="module")
def one_process(packed_audioset, tmp_path_factory):
  """The tiny recipes on this pytest process's 8 devices: the reference."""
  out = tmp_path_factory.mktemp("one")
  for recipe in ("supervised", "contrastive"):
    config = registry.without_experiment(
        multihost_job.recipe_config(recipe, packed_audioset))
    training.cnn12(config, str(out / recipe))
  return out


def test_two_processes_train_simclr_as_one_process(packed_audioset, one_process,
                                            tmp_path):
  # SimCLR here; the supervised recipe's 2-process run is the kill/resume
  # test's, compared with the same reference.
  procs = _start_two([sys.executable, JOB, str(tmp_path / "two"),
                      packed_audioset, "contrastive"], tmp_path, "job")
  codes = _wait(procs)
  errs = [(tmp_path / f"job_{i}.err").read_text()[-3000:] for i in range(2)]
  assert codes == [0, 0], errs
  for recipe in ("contrastive",):
    one = str(one_process / recipe / "seed_0")
    two = str(tmp_path / "two" / recipe / "seed_0")
    assert loop.list_checkpoint_steps(one) == loop.list_checkpoint_steps(two)
    assert (_max_difference(_final_params(one), _final_params(two)) <
            TOLERANCE[recipe])
    # Files by process 0 alone, once: one TensorBoard file, one metrics row
    # per logged step.
    files = os.listdir(two)
    assert len([f for f in files if f.startswith("events.out")]) == 1
    rows = open(os.path.join(two, "metrics.jsonl")).read().splitlines()
    want = open(os.path.join(one, "metrics.jsonl")).read().splitlines()
    assert len(rows) == len(want)


def _finished_steps(run_dir):
  directory = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def test_a_killed_process_stops_the_other_and_the_rerun_resumes(
    packed_audioset, one_process, tmp_path):
  # The supervised recipe of multihost_job, through the command line.
  command = [sys.executable, "-m", "recon_jax",
             "--config=configs/cnn12_events.py:tiny",
             f"--workdir={tmp_path / 'two'}",
             "--config.data.source=packed",
             f"--config.data.dir={packed_audioset}",
             "--config.data.in_memory_limit_gb=0"]
  run = str(tmp_path / "two" / "seed_0")
  procs = _start_two(command, tmp_path, "killed",
                     RECON_JAX_HEARTBEAT_SECONDS="20")
  deadline = time.monotonic() + 300
  while not _finished_steps(run) and time.monotonic() < deadline:
    assert all(p.poll() is None for p in procs), "a process ended early"
    time.sleep(0.1)
  assert _finished_steps(run), "no checkpoint within 300 s"
  procs[1].send_signal(signal.SIGKILL)
  killed_at = time.monotonic()
  code = procs[0].wait(timeout=120)
  waited = time.monotonic() - killed_at
  procs[1].wait()
  err = (tmp_path / "killed_0.err").read_text()
  assert code != 0
  assert waited < 60, f"the survivor took {waited:.0f} s to stop"
  lines = [l for l in err.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, err[-3000:]
  # Either the peer watch saw the heartbeat stop, or JAX/Gloo killed the
  # process first and the launcher (cli.supervise) reported it.
  assert re.search(r"another process of (this 2-process run stopped|the "
                   r"run died)", lines[0]), lines[0]
  assert "rerun the same command on every host" in lines[0]
  assert "Traceback" not in err
  kept = _finished_steps(run)
  assert kept and kept[-1] < 10, kept  # Killed before the end.
  # The rerun resumes from the kept checkpoint and ends where one
  # uninterrupted process ends.
  assert _wait(_start_two(command, tmp_path, "rerun")) == [0, 0], (
      (tmp_path / "rerun_0.err").read_text()[-3000:])
  assert "Resumed from" in (tmp_path / "rerun_0.err").read_text()
  reference = str(one_process / "supervised" / "seed_0")
  assert loop.list_checkpoint_steps(run) == loop.list_checkpoint_steps(
      reference)
  assert _max_difference(_final_params(run), _final_params(
      reference)) < TOLERANCE["supervised"]
  # Metrics by process 0 alone: one TensorBoard file per launch.
  assert len([f for f in os.listdir(run) if f.startswith("events.out")]) == 2


def test_a_streamed_run_over_its_budget_killed_resumes_bit_identical(
    audioset_root, one_process, tmp_path):
  """One process: `recon-jax` on the AudioSet layout itself (packed under
  the work dir, as its samples exceed the budget), SIGKILLed after a
  checkpoint and rerun, ends bit-identical to the uninterrupted reference
  (which streamed the same clips from shards of another size)."""
  command = [sys.executable, "-m", "recon_jax",
             "--config=configs/cnn12_events.py:tiny",
             f"--workdir={tmp_path / 'run'}",
             "--config.data.source=generated_audioset",
             "--config.data.size=tiny", f"--config.data.dir={audioset_root}",
             # ~19 MB as float32: over this budget, so packed and streamed.
             "--config.data.in_memory_limit_gb=0.005"]
  env = subprocess_env.env(devices=8)
  run = str(tmp_path / "run" / "seed_0")
  proc = subprocess.Popen(command, cwd=ROOT, env=env, text=True,
                          stdout=subprocess.DEVNULL,
                          stderr=open(tmp_path / "killed.err", "w"))
  _STARTED.append(proc)
  deadline = time.monotonic() + 300
  while not _finished_steps(run) and time.monotonic() < deadline:
    assert proc.poll() is None, (tmp_path / "killed.err").read_text()[-3000:]
    time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  kept = _finished_steps(run)
  assert kept and kept[-1] < 10, kept
  done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Resumed from" in done.stderr
  reference = str(one_process / "supervised" / "seed_0")
  assert loop.list_checkpoint_steps(run) == loop.list_checkpoint_steps(
      reference)
  assert _max_difference(_final_params(run), _final_params(reference)) == 0
  packed = os.path.join(tmp_path, "run", "data", "packed")
  (folder,) = os.listdir(packed)
  assert folder.startswith("audioset-")
  data = pipeline.open_packed(os.path.join(packed, folder))
  assert data.nbytes > 0.005 * 2**30
  made_by = provenance.read_json(os.path.join(run, "made_by.json"))
  assert made_by["data"] == data.fingerprint


def test_single_process_experiments_refuse_on_two_processes(tmp_path):
  command = [sys.executable, "-m", "recon_jax",
             "--config=configs/sonify_clip.py", f"--workdir={tmp_path}/s"]
  procs = _start_two(command, tmp_path, "refuse")
  assert _wait(procs, timeout=300) == [1, 1]
  for i in range(2):
    err = (tmp_path / f"refuse_{i}.err").read_text()
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    assert "'sonify_clip' runs on one process" in lines[0]
    assert "2 JAX processes" in lines[0]
    assert not os.path.exists(tmp_path / "s")


def test_every_experiment_is_multihost_or_refuses():
  several = {n for n, e in registry.EXPERIMENTS.items() if e.multihost}
  assert several == {"cnn12"}
  for name, experiment in registry.EXPERIMENTS.items():
    registry.check_processes(experiment, 1)
    if name not in several:
      with pytest.raises(ValueError, match="runs on one process"):
        registry.check_processes(experiment, 4)
