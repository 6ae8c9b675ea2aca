"""Bad input at the command line, one test per case: each ends with exactly
one `error:` line naming the problem, exit status 1, no traceback, and
nothing already written is lost or left looking complete.

(Cases of single entry points live beside them: the thesis config in
test_experiments_cli.py, the mission's stages in test_mission.py, a user's
clip for sonify_clip in test_sonify_clip.py, the sonification analyses in
test_sonification_experiment.py, the generators' entry points in
test_data_*.py.)
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from recon_jax.data import events
from recon_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config=configs/cnn12_events.py:tiny", "--config.data.source=fsd50k",
        "--config.train.num_epochs=1", "--config.train.warmup_epochs=0"]


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  return env


def _recon_jax(args, cwd=ROOT, timeout=300):
  return subprocess.run([sys.executable, "-m", "recon_jax"] + args, cwd=cwd,
                        env=_env(), capture_output=True, text=True,
                        timeout=timeout)


def _one_error(proc, pattern):
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  assert re.search(pattern, errors[0]), errors[0]
  return errors[0]


@pytest.fixture(scope="module")
def event_set(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("events") / "fsd50k")
  events.generate_events(root, events.get_config("tiny"))
  return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, event_set):
  """A tiny supervised CNN12 run made through the command line."""
  workdir = str(tmp_path_factory.mktemp("runs") / "supervised")
  proc = _recon_jax(TINY + [f"--config.data.dir={event_set}",
                            f"--workdir={workdir}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def _damaged_copy(event_set, tmp_path, damage):
  """A copy of the event set whose first training clip is `damage`d."""
  root = str(tmp_path / "fsd50k")
  shutil.copytree(event_set, root)
  clip = os.path.join(root, "FSD50K.dev_audio",
                      sorted(os.listdir(os.path.join(root,
                                                     "FSD50K.dev_audio")))[0])
  damage(clip)
  return root, os.path.basename(clip)


def _train_on(root, tmp_path):
  workdir = tmp_path / "run"
  proc = _recon_jax(TINY + [f"--config.data.dir={root}",
                            f"--workdir={workdir}"])
  return proc, workdir


# --- Files -------------------------------------------------------------------


def test_missing_data_folder(tmp_path):
  proc = _recon_jax(TINY + ["--config.data.dir=/no/such/FSD50K",
                            f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"/no/such/FSD50K.*no such directory")
  assert not (tmp_path / "run").exists()


def test_corrupt_audio_file(event_set, tmp_path):
  def garble(path):
    with open(path, "wb") as f:
      f.write(b"RIFF\x00\x01 not a wave file at all" * 10)
  root, name = _damaged_copy(event_set, tmp_path, garble)
  proc, workdir = _train_on(root, tmp_path)
  _one_error(proc, rf"{name}: unreadable or corrupt audio")
  assert not (workdir / "seed_0").exists()


def test_silent_audio_file(event_set, tmp_path):
  root, name = _damaged_copy(event_set, tmp_path, lambda p: sf.write(
      p, np.zeros(8000, np.float32), 8000, subtype="PCM_16"))
  proc, workdir = _train_on(root, tmp_path)
  _one_error(proc, rf"{name}: silent clip")
  assert not (workdir / "seed_0").exists()


def test_nan_audio_file(event_set, tmp_path):
  def nan_clip(path):
    x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    x[100] = np.nan
    sf.write(path, x, 8000, subtype="FLOAT")
  root, name = _damaged_copy(event_set, tmp_path, nan_clip)
  proc, workdir = _train_on(root, tmp_path)
  _one_error(proc, rf"{name}: 1 NaN or infinite sample")
  assert not (workdir / "seed_0").exists()


def test_clip_shorter_than_the_receptive_field(event_set, tmp_path):
  root, name = _damaged_copy(event_set, tmp_path, lambda p: sf.write(
      p, np.full(100, 0.1, np.float32), 8000, subtype="PCM_16"))
  proc, _ = _train_on(root, tmp_path)
  _one_error(proc, rf"{name}: 100 samples, shorter than .*receptive field")


def test_missing_config_file(tmp_path):
  proc = _recon_jax(["--config=configs/no_such_config.py",
                     f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"--config=configs/no_such_config.py: no such config file")


def test_config_file_that_fails(tmp_path):
  proc = _recon_jax(["--config=configs/cnn12_events.py:huge",
                     f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"bad command line: flag --config=configs/cnn12_events.py:"
             r"huge: ValueError: config variant 'huge': want one size")


def test_misspelt_override(tmp_path):
  proc = _recon_jax(TINY + ["--config.trian.num_epochs=3",
                            f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"bad command line: no field 'trian' Did you mean \"train\"")


def test_unknown_experiment(tmp_path):
  proc = _recon_jax(TINY + ["--config.experiment=telepathy",
                            f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"unknown experiment 'telepathy'.*mission")


def test_config_naming_no_experiment(tmp_path):
  config = tmp_path / "bare.py"
  config.write_text(textwrap.dedent("""
      import ml_collections
      def get_config():
        return ml_collections.ConfigDict({"seed": 0})
  """))
  proc = _recon_jax([f"--config={config}", f"--workdir={tmp_path / 'run'}"])
  _one_error(proc, r"names no experiment: set config.experiment")


def test_unexpected_argument(tmp_path):
  proc = _recon_jax(TINY + [f"--workdir={tmp_path / 'run'}", "extra"])
  _one_error(proc, r"unexpected arguments: extra")


# --- Checkpoints ------------------------------------------------------------


def _probe(encoder_run, event_set, tmp_path, *extra):
  return _recon_jax(["--config=configs/cnn12_probe.py:tiny,events",
                     "--config.data.source=fsd50k",
                     f"--config.data.dir={event_set}",
                     f"--config.encoder.workdir={encoder_run}",
                     f"--workdir={tmp_path / 'probe'}", *extra])


def test_checkpoint_of_another_config(trained_run, event_set, tmp_path):
  proc = _probe(trained_run, event_set, tmp_path,
                "--config.model.width_divisor=32")
  _one_error(proc, r"the encoder in .* has widths .* but the config's model "
             r"block describes")
  assert not (tmp_path / "probe").exists()


def test_checkpoint_of_another_model(event_set, tmp_path):
  # A phone-CNN-style folder (or anything else) is not a CNN12 run.
  other = tmp_path / "phone_cnn"
  (other / "seed_0").mkdir(parents=True)
  (other / "seed_0" / "model_config.json").write_text(
      '{"kind": "phone_cnn", "model": {}}')
  proc = _probe(str(other), event_set, tmp_path)
  _one_error(proc, r"kind 'phone_cnn', not a CNN12 encoder run")


def test_corrupt_checkpoint_keeps_the_run(trained_run, event_set, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(trained_run, run)
  step_dir = os.path.join(run, "seed_0", loop.CHECKPOINTS,
                          str(loop.list_checkpoint_steps(
                              str(run / "seed_0"))[-1]))
  damaged = []
  for dirpath, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(dirpath, name)
      if os.path.getsize(path) > 64:
        with open(path, "r+b") as f:
          f.write(b"\x00garbage\xff" * 8)
        damaged.append(path)
  assert damaged
  before = sorted(os.listdir(os.path.dirname(step_dir)))
  proc = _recon_jax(TINY + [f"--config.data.dir={event_set}",
                            f"--workdir={run}"])
  print(_one_error(proc, r"checkpoint"))
  assert sorted(os.listdir(os.path.dirname(step_dir))) == before


# --- Disk --------------------------------------------------------------------


def _in_small_tmpfs(mount, size, script):
  """Runs `script` (sh) with a fresh tmpfs of `size` at `mount`, in a user +
  mount namespace (no root on the host needed, nothing left mounted)."""
  assert shutil.which("unshare"), "util-linux's unshare is needed here"
  os.makedirs(mount, exist_ok=True)
  cmd = f"mount -t tmpfs -o size={size} none {mount} && {script}"
  return subprocess.run(["unshare", "--user", "--map-root-user", "--mount",
                         "sh", "-c", cmd], cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)


def test_full_disk(tmp_path):
  mount = str(tmp_path / "small")
  proc = _in_small_tmpfs(
      mount, "96k", f"{sys.executable} -m recon_jax "
      f"--config=configs/make_events.py:tiny --workdir={mount}/events; "
      f"echo rc=$?; ls {mount}")
  assert proc.stdout.splitlines()[0] == "rc=1", proc.stdout + proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert "disk full" in errors[0]
  # Never a set that looks complete: only the .partial folder was started.
  assert "events\n" not in proc.stdout.split("\n", 1)[1] + "\n"


def test_read_only_workdir_keeps_the_checkpoints(trained_run, event_set,
                                                 tmp_path):
  mount = str(tmp_path / "ro")
  run = f"{mount}/run"
  data_dir = event_set
  proc = _in_small_tmpfs(
      mount, "64m", f"cp -r {trained_run} {run} && "
      f"mount -o remount,ro {mount} && "
      f"{sys.executable} -m recon_jax {' '.join(TINY)} "
      f"--config.data.dir={data_dir} "
      f"--workdir={run}; echo rc=$?; ls {run}/seed_0/{loop.CHECKPOINTS}")
  lines = proc.stdout.splitlines()
  assert lines[0] == "rc=1", proc.stdout + proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert re.search(r"read-only|cannot write", errors[0]), errors[0]
  kept = [l for l in lines[1:] if l.isdigit()]
  assert kept == [str(s) for s in loop.list_checkpoint_steps(
      os.path.join(trained_run, "seed_0"))]
