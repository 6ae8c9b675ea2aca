"""Bad input at the command line, one test per case: each ends with exactly
one `error:` line naming the problem, exit status 1, no traceback, and
nothing already written is lost or left looking complete.

(Cases of single entry points live beside them: the thesis config in
test_experiments_cli.py, the mission's stages in test_mission.py, a user's
clip for sonify_clip in test_sonify_clip.py, the sonification analyses in
test_sonification_experiment.py, the generators' entry points in
test_data_*.py.)

The cases run in one module fixture, a few processes at a time (each has
its own folders), so the file takes about as long as its slowest chain (a
tiny training, then the checkpoint cases on it).
"""
import concurrent.futures
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
import subprocess_env  # tests/subprocess_env.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config=configs/cnn12_events.py:tiny", "--config.data.source=fsd50k",
        "--config.train.num_epochs=1", "--config.train.warmup_epochs=0"]


def _env():
  return subprocess_env.env()


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


def _damage_first_clip(event_set, folder, damage):
  """A copy of the event set in `folder` whose first training clip is
  `damage`d; returns (its root, the clip's name)."""
  root = str(folder / "fsd50k")
  shutil.copytree(event_set, root)
  audio = os.path.join(root, "FSD50K.dev_audio")
  clip = os.path.join(audio, sorted(os.listdir(audio))[0])
  damage(clip)
  return root, os.path.basename(clip)


def _garble(path):
  with open(path, "wb") as f:
    f.write(b"RIFF\x00\x01 not a wave file at all" * 10)


def _nan_clip(path):
  x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
  x[100] = np.nan
  sf.write(path, x, 8000, subtype="FLOAT")


DAMAGES = {
    "corrupt_audio": _garble,
    "silent_audio": lambda p: sf.write(p, np.zeros(8000, np.float32), 8000,
                                       subtype="PCM_16"),
    "nan_audio": _nan_clip,
    "short_clip": lambda p: sf.write(p, np.full(100, 0.1, np.float32), 8000,
                                     subtype="PCM_16"),
}


def _probe(encoder_run, event_set, folder, *extra):
  return ["--config=configs/cnn12_probe.py:tiny,events",
          "--config.data.source=fsd50k", f"--config.data.dir={event_set}",
          f"--config.encoder.workdir={encoder_run}",
          f"--workdir={folder / 'probe'}", *extra]


def _in_small_tmpfs(mount, size, script):
  """Runs `script` (sh) with a fresh tmpfs of `size` at `mount`, in a user +
  mount namespace (no root on the host needed, nothing left mounted)."""
  assert shutil.which("unshare"), "util-linux's unshare is needed here"
  os.makedirs(mount, exist_ok=True)
  cmd = f"mount -t tmpfs -o size={size} none {mount} && {script}"
  return subprocess.run(["unshare", "--user", "--map-root-user", "--mount",
                         "sh", "-c", cmd], cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)


def _damage_checkpoint(run):
  """Overwrites the start of every file of `run`'s last checkpoint; returns
  (its folder, the steps kept)."""
  step_dir = os.path.join(run, "seed_0", loop.CHECKPOINTS, str(
      loop.list_checkpoint_steps(str(run / "seed_0"))[-1]))
  damaged = []
  for dirpath, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(dirpath, name)
      if os.path.getsize(path) > 64:
        with open(path, "r+b") as f:
          f.write(b"\x00garbage\xff" * 8)
        damaged.append(path)
  assert damaged
  return step_dir, sorted(os.listdir(os.path.dirname(step_dir)))


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
  """Every case, run three processes at a time: name -> (the finished
  process, the case's folder, what the case needs to check)."""
  root = tmp_path_factory.mktemp("cases")
  event_set = str(root / "events" / "fsd50k")
  events.generate_events(event_set, events.get_config("tiny"))
  folders, extra, jobs = {}, {}, {}

  def folder(name):
    folders[name] = root / name
    folders[name].mkdir()
    return folders[name]

  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    def submit(name, fn, *args):
      jobs[name] = pool.submit(fn, *args)

    # A tiny supervised CNN12 run, which the checkpoint cases need.
    trained_run = str(folder("trained") / "supervised")
    submit("trained", _recon_jax, TINY + [f"--config.data.dir={event_set}",
                                          f"--workdir={trained_run}"])
    submit("missing_data_folder", _recon_jax, TINY + [
        "--config.data.dir=/no/such/FSD50K",
        f"--workdir={folder('missing_data_folder') / 'run'}"])
    for name, damage in DAMAGES.items():
      data, extra[name] = _damage_first_clip(event_set, folder(name), damage)
      submit(name, _recon_jax, TINY + [f"--config.data.dir={data}",
                                       f"--workdir={folders[name] / 'run'}"])
    sf.write(str(root / "clip.wav"), np.zeros(800, np.float32), 8000)
    (root / "bare.py").write_text(textwrap.dedent("""
        import ml_collections
        def get_config():
          return ml_collections.ConfigDict({"seed": 0})
    """))
    for name, args in (
        ("missing_config", ["--config=configs/no_such_config.py"]),
        ("failing_config", ["--config=configs/cnn12_events.py:huge"]),
        ("misspelt_override", TINY + ["--config.trian.num_epochs=3"]),
        ("unknown_experiment", TINY + ["--config.experiment=telepathy"]),
        ("switched_experiment", TINY + ["--config.experiment=sonification"]),
        ("wav_as_config", [f"--config={root / 'clip.wav'}"]),
        ("no_experiment", [f"--config={root / 'bare.py'}"]),
        ("unexpected_argument", TINY + ["extra"])):
      submit(name, _recon_jax, args + [f"--workdir={folder(name) / 'run'}"])
    # A phone-CNN-style folder (or anything else) is not a CNN12 run.
    other = folder("another_model") / "phone_cnn"
    (other / "seed_0").mkdir(parents=True)
    (other / "seed_0" / "model_config.json").write_text(
        '{"kind": "phone_cnn", "model": {}}')
    submit("another_model", _recon_jax,
           _probe(str(other), event_set, folders["another_model"]))
    mount = str(folder("full_disk") / "small")
    submit("full_disk", _in_small_tmpfs, mount, "96k",
           f"{sys.executable} -m recon_jax --config=configs/make_events.py:"
           f"tiny --workdir={mount}/events; echo rc=$?; ls {mount}")

    trained = jobs["trained"].result()
    assert trained.returncode == 0, trained.stderr[-3000:]
    submit("another_config", _recon_jax, _probe(
        trained_run, event_set, folder("another_config"),
        "--config.model.width_divisor=32"))
    run = folder("corrupt_checkpoint") / "run"
    shutil.copytree(trained_run, run)
    extra["corrupt_checkpoint"] = _damage_checkpoint(run)
    submit("corrupt_checkpoint", _recon_jax, TINY + [
        f"--config.data.dir={event_set}", f"--workdir={run}"])
    mount = str(folder("read_only") / "ro")
    extra["read_only"] = loop.list_checkpoint_steps(
        os.path.join(trained_run, "seed_0"))
    submit("read_only", _in_small_tmpfs, mount, "64m",
           f"cp -r {trained_run} {mount}/run && mount -o remount,ro {mount} "
           f"&& {sys.executable} -m recon_jax {' '.join(TINY)} "
           f"--config.data.dir={event_set} --workdir={mount}/run; "
           f"echo rc=$?; ls {mount}/run/seed_0/{loop.CHECKPOINTS}")
    return {name: (job.result(), folders.get(name), extra.get(name))
            for name, job in jobs.items()}


# --- Files -------------------------------------------------------------------


def test_missing_data_folder(ran):
  proc, folder, _ = ran["missing_data_folder"]
  _one_error(proc, r"/no/such/FSD50K.*no such directory")
  assert not (folder / "run").exists()


@pytest.mark.parametrize("case, pattern", [
    ("corrupt_audio", "{}: unreadable or corrupt audio"),
    ("silent_audio", "{}: silent clip"),
    ("nan_audio", "{}: 1 NaN or infinite sample"),
    ("short_clip", "{}: 100 samples, shorter than .*receptive field"),
])
def test_bad_audio_file_stops_before_training(ran, case, pattern):
  proc, folder, clip = ran[case]
  _one_error(proc, pattern.format(re.escape(clip)))
  assert not (folder / "run" / "seed_0").exists()


def test_missing_config_file(ran):
  _one_error(ran["missing_config"][0],
             r"--config=configs/no_such_config.py: no such config file")


def test_config_file_that_fails(ran):
  _one_error(ran["failing_config"][0],
             r"bad command line: flag --config=configs/cnn12_events.py:"
             r"huge: ValueError: config variant 'huge': want one size")


def test_misspelt_override(ran):
  _one_error(ran["misspelt_override"][0],
             r"bad command line: the config has no field 'trian'; did you "
             r"mean 'train'\?$")


def test_switched_experiment_names_the_missing_fields(ran):
  _one_error(ran["switched_experiment"][0],
             r"config.experiment='sonification', but this config lacks the "
             r"fields sonification's configs have: .*run configs/"
             r"sonification.py")


def test_a_wav_as_config_is_one_line(ran):
  _one_error(ran["wav_as_config"][0],
             r"--config=\S+clip.wav is not a Python config file")


def test_unknown_experiment(ran):
  _one_error(ran["unknown_experiment"][0],
             r"unknown experiment 'telepathy'.*mission")


def test_config_naming_no_experiment(ran):
  _one_error(ran["no_experiment"][0],
             r"names no experiment: set config.experiment")


def test_unexpected_argument(ran):
  _one_error(ran["unexpected_argument"][0], r"unexpected arguments: extra")


# --- Checkpoints ------------------------------------------------------------


def test_checkpoint_of_another_config(ran):
  proc, folder, _ = ran["another_config"]
  _one_error(proc, r"the encoder in .* has widths .* but the config's model "
             r"block describes")
  assert not (folder / "probe").exists()


def test_checkpoint_of_another_model(ran):
  _one_error(ran["another_model"][0],
             r"kind 'phone_cnn', not a CNN12 encoder run")


def test_corrupt_checkpoint_keeps_the_run(ran):
  proc, _, (step_dir, before) = ran["corrupt_checkpoint"]
  print(_one_error(proc, r"checkpoint"))
  assert sorted(os.listdir(os.path.dirname(step_dir))) == before


# --- Disk --------------------------------------------------------------------


def test_full_disk(ran):
  proc = ran["full_disk"][0]
  assert proc.stdout.splitlines()[0] == "rc=1", proc.stdout + proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert "disk full" in errors[0]
  # Never a set that looks complete: only the .partial folder was started.
  assert "events\n" not in proc.stdout.split("\n", 1)[1] + "\n"


def test_read_only_workdir_keeps_the_checkpoints(ran):
  proc, _, steps = ran["read_only"]
  lines = proc.stdout.splitlines()
  assert lines[0] == "rc=1", proc.stdout + proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert re.search(r"read-only|cannot write", errors[0]), errors[0]
  kept = [l for l in lines[1:] if l.isdigit()]
  assert kept == [str(s) for s in steps]
