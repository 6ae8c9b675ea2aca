"""launch_tpu.sh: argument errors, the dry run's gcloud commands, shellcheck."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "launch_tpu.sh")
WHERE = ["--project=proj", "--zone=europe-west4-a", "--name=simclr"]
EXPERIMENT = ["--config=configs/thesis_quick.py", "--workdir=/home/me/runs/q"]


def _launch(*args, path=None):
  env = dict(os.environ)
  if path is not None:
    env["PATH"] = path
  return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=60)


def test_shellcheck_clean():
  assert shutil.which("shellcheck"), (
      "shellcheck is missing: the test set-up (tests/install.sh) installs it")
  proc = subprocess.run(["shellcheck", SCRIPT], capture_output=True,
                        text=True)
  assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("args,message", [
    ([], "--project is required"),
    (["--project=p", "--zone=z"], "--name is required"),
    (WHERE + ["--accelerator=v3"], "not a TPU type"),
    (WHERE + ["--name=Bad_Name"], "lower-case"),
    (WHERE, "no experiment given"),
    (WHERE + ["--", "--config=configs/nope.py"], "is not a file"),
    (WHERE + ["--", "--workdir=/tmp/run"], "no --config"),
    (WHERE + ["--frobnicate"], "unknown argument '--frobnicate'"),
    (WHERE + ["--", "--config=configs/thesis.py", "--workdir=gs://b/run"],
     "not a URL"),
    (WHERE + ["--bucket=b", "--mount=relative", "--"] + EXPERIMENT,
     "absolute path"),
])
def test_argument_errors(args, message):
  proc = _launch(*args)
  assert proc.returncode == 2
  assert message in proc.stderr, proc.stderr


def test_dry_run_prints_every_gcloud_command_and_runs_none(tmp_path):
  # A gcloud on PATH that records any call: the dry run must make none.
  fake = tmp_path / "bin"
  fake.mkdir()
  (fake / "gcloud").write_text(f"#!/bin/sh\necho called >> {tmp_path}/calls\n")
  (fake / "gcloud").chmod(0o755)
  proc = _launch(*WHERE, "--accelerator=v3-8", "--dry-run", "--",
                 *EXPERIMENT, path=f"{fake}:{os.environ['PATH']}")
  assert proc.returncode == 0, proc.stderr
  assert not (tmp_path / "calls").exists()
  lines = [l for l in proc.stdout.splitlines() if not l.startswith("#")]
  assert len(lines) == 3
  create, scp, ssh = lines
  assert create.startswith("gcloud compute tpus tpu-vm create simclr "
                           "--accelerator-type=v3-8 "
                           "--version=tpu-ubuntu2204-base")
  assert scp.startswith("gcloud compute tpus tpu-vm scp ")
  assert "simclr:recon_jax.tar.gz --worker=all" in scp
  assert ssh.startswith("gcloud compute tpus tpu-vm ssh simclr --worker=all")
  for line in lines:
    assert line.rstrip().endswith("--project=proj --zone=europe-west4-a")
  assert "pip\\ install" in ssh and "RECON_JAX_DISTRIBUTED=1" in ssh
  assert "python\\ -m\\ recon_jax\\ --config=configs/thesis_quick.py" in ssh


def test_real_run_reuses_an_existing_vm(tmp_path):
  # gcloud's describe succeeds: no create; scp and ssh run for real.
  fake = tmp_path / "bin"
  fake.mkdir()
  (fake / "gcloud").write_text(
      f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\n")
  (fake / "gcloud").chmod(0o755)
  proc = _launch(*WHERE, "--", *EXPERIMENT,
                 path=f"{fake}:{os.environ['PATH']}")
  assert proc.returncode == 0, proc.stderr
  calls = (tmp_path / "calls").read_text().splitlines()
  assert [c.split()[3] for c in calls] == ["describe", "scp", "ssh"]


def test_missing_vm_without_create_is_an_error(tmp_path):
  fake = tmp_path / "bin"
  fake.mkdir()
  (fake / "gcloud").write_text("#!/bin/sh\nexit 1\n")
  (fake / "gcloud").chmod(0o755)
  proc = _launch(*WHERE, "--no-create", "--", *EXPERIMENT,
                 path=f"{fake}:{os.environ['PATH']}")
  assert proc.returncode == 2
  assert "not found" in proc.stderr
