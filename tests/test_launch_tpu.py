"""launch_tpu.sh: argument errors, the dry run's gcloud commands and the
command each worker runs, what is shipped, its temp files, shellcheck.

Every run but the argument errors happens in a fresh `git clone` of this
repository (with the launch_tpu.sh under test copied in), so uncommitted
work in this checkout does not change what the script sees.
"""
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "launch_tpu.sh")
WHERE = ["--project=proj", "--zone=europe-west4-a", "--name=simclr"]
CONFIG = "configs/thesis_quick.py"
EXPERIMENT = [f"--config={CONFIG}", "--workdir=/home/me/runs/q"]
SHARED = ["--bucket=my-bucket", "--",
          f"--config={CONFIG}", "--workdir=/mnt/recon_jax/runs/q"]


def _clone(dest):
  subprocess.run(["git", "clone", "-q", ROOT, str(dest)], check=True,
                 capture_output=True)
  for key, value in (("user.name", "test"), ("user.email", "t@example.com")):
    subprocess.run(["git", "-C", str(dest), "config", key, value], check=True)
  shutil.copy(SCRIPT, dest / "launch_tpu.sh")
  return dest


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
  """A clean clone; tests that change files make their own."""
  return _clone(tmp_path_factory.mktemp("clone") / "recon_jax")


def _fake_gcloud(tmp_path, body=None):
  """A gcloud on PATH that appends its arguments to tmp_path/calls."""
  fake = tmp_path / "bin"
  fake.mkdir(exist_ok=True)
  body = body or ""
  (fake / "gcloud").write_text(
      f"#!/bin/bash\necho \"$@\" >> {tmp_path}/calls\n{body}\n")
  (fake / "gcloud").chmod(0o755)
  return f"{fake}:{os.environ['PATH']}"


def _launch(*args, repo_dir=None, path=None, tmpdir=None):
  env = dict(os.environ)
  if path is not None:
    env["PATH"] = path
  if tmpdir is not None:
    env["TMPDIR"] = str(tmpdir)
  script = SCRIPT if repo_dir is None else str(repo_dir / "launch_tpu.sh")
  return subprocess.run(["bash", script, *args],
                        cwd=ROOT if repo_dir is None else repo_dir, env=env,
                        capture_output=True, text=True, timeout=60)


def _dry_run(repo_dir, *args, **kwargs):
  """The dry run's gcloud lines (create, scp, ssh) and the ssh --command."""
  proc = _launch(*WHERE, "--dry-run", *args, repo_dir=repo_dir, **kwargs)
  assert proc.returncode == 0, proc.stderr
  lines = [l for l in proc.stdout.splitlines() if not l.startswith("#")]
  assert len(lines) == 3, proc.stdout
  ssh = shlex.split(lines[2])
  command = [a for a in ssh if a.startswith("--command=")]
  assert len(command) == 1
  return lines, command[0][len("--command="):]


def _head(repo_dir):
  return subprocess.run(["git", "-C", str(repo_dir), "rev-parse",
                         "--short=12", "HEAD"], check=True,
                        capture_output=True, text=True).stdout.strip()


def test_shellcheck_clean():
  assert shutil.which("shellcheck"), (
      "shellcheck is missing: the test set-up (tests/install.sh) installs it")
  proc = subprocess.run(["shellcheck", SCRIPT], capture_output=True,
                        text=True)
  assert proc.returncode == 0, proc.stdout


def test_help_names_every_flag():
  proc = _launch("--help")
  assert proc.returncode == 0
  for flag in ("--project", "--accelerator", "--runtime", "--spot",
               "--no-create", "--bucket", "--mount", "--ship-working-tree",
               "--dry-run"):
    assert flag in proc.stdout, flag


@pytest.mark.parametrize("args,message", [
    ([], "--project is required"),
    (["--project=p", "--zone=z"], "--name is required"),
    (WHERE + ["--accelerator=v3"], "not a TPU type"),
    (WHERE + ["--accelerator=v5e-8"], "v5litepod-N"),
    (WHERE + ["--accelerator=v9-8"], "pass --runtime"),
    (WHERE + ["--name=Bad_Name"], "lower-case"),
    (WHERE, "no experiment given"),
    (WHERE + ["--", "--config=configs/nope.py", "--workdir=/r"],
     "is not a file"),
    (WHERE + ["--", f"--config={ROOT}/{CONFIG}", "--workdir=/r"],
     "inside this checkout"),
    (WHERE + ["--", "--workdir=/tmp/run"], "no --config"),
    (WHERE + ["--", f"--config={CONFIG}"], "no --workdir"),
    (WHERE + ["--", f"--config={CONFIG}", "--workdir", "/r"], "with ="),
    (WHERE + ["--frobnicate"], "unknown argument '--frobnicate'"),
    (WHERE + ["--", "--config=configs/thesis.py", "--workdir=gs://b/run"],
     "not a URL"),
    (WHERE + ["--bucket=my-bucket", "--mount=relative", "--"] + EXPERIMENT,
     "absolute path"),
    (WHERE + ["--bucket=Not a bucket", "--"] + EXPERIMENT,
     "not a bucket name"),
    # A multi-host slice needs a work dir all its workers share.
    (WHERE + ["--accelerator=v3-32", "--"] + EXPERIMENT, "multi-host"),
    (WHERE + ["--accelerator=v3-32", "--bucket=my-bucket", "--"] + EXPERIMENT,
     "under --mount"),
    (WHERE + ["--accelerator=v4-16", "--", f"--config={CONFIG}",
              "--workdir=/mnt/recon_jax/q"], "add --bucket"),
])
def test_argument_errors(args, message):
  proc = _launch(*args)
  assert proc.returncode == 2
  assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize("workdir,message", [
    ("runs/q", "is relative"),
    ("./runs/q", "is relative"),
    ("~/runs/q", "is relative"),
    ("/home/me/recon_jax_code/d3c1b7e84314/runs/q", "inside the code folder"),
    ("/home/me/recon_jax_code", "inside the code folder"),
    ("/home/me/runs/../recon_jax_code/x", "inside the code folder"),
    ("/home/me/runs/../q", "without . or .."),
])
def test_work_dir_relative_or_in_the_code_folder_is_refused(
    repo, tmp_path, workdir, message):
  # Refused before any gcloud call: nothing can wipe or bury a work dir.
  path = _fake_gcloud(tmp_path)
  proc = _launch(*WHERE, "--", f"--config={CONFIG}", f"--workdir={workdir}",
                 repo_dir=repo, path=path)
  assert proc.returncode == 2
  assert message in proc.stderr, proc.stderr
  assert len(proc.stderr.splitlines()) == 2  # the reason, then --help
  assert not (tmp_path / "calls").exists()


def test_dry_run_prints_every_gcloud_command_and_runs_none(repo, tmp_path):
  path = _fake_gcloud(tmp_path)
  lines, command = _dry_run(repo, "--accelerator=v3-8", "--", *EXPERIMENT,
                            path=path)
  assert not (tmp_path / "calls").exists()
  create, scp, ssh = lines
  assert create.startswith("gcloud compute tpus tpu-vm create simclr "
                           "--accelerator-type=v3-8 "
                           "--version=tpu-ubuntu2204-base")
  assert scp.startswith("gcloud compute tpus tpu-vm scp ")
  version = _head(repo)
  assert f"simclr:recon_jax_code-{version}.tar.gz --worker=all" in scp
  assert ssh.startswith("gcloud compute tpus tpu-vm ssh simclr --worker=all")
  for line in lines:
    assert line.rstrip().endswith("--project=proj --zone=europe-west4-a")
  assert "RECON_JAX_DISTRIBUTED=1" in command
  assert ("-m recon_jax --config=configs/thesis_quick.py "
          "--workdir=/home/me/runs/q") in command


def test_code_goes_to_a_folder_per_commit_and_nothing_is_deleted(repo):
  _, command = _dry_run(repo, "--", *EXPERIMENT)
  version = _head(repo)
  assert f"code=$HOME/recon_jax_code/{version};" in command
  assert f'tar -xzf recon_jax_code-{version}.tar.gz -C "$code"' in command
  assert 'cd "$code"' in command
  # The one thing removed is the archive it just unpacked.
  removals = re.findall(r"\brm\b[^;&|]*", command)
  assert removals == [f"rm -f recon_jax_code-{version}.tar.gz"], removals
  # The worker refuses a work dir inside the code folder too.
  assert '"$HOME/recon_jax_code/"*) echo' in command


def test_absolute_work_dir_is_passed_unchanged(repo):
  _, command = _dry_run(repo, "--", f"--config={CONFIG}",
                        "--workdir=/home/me/runs/x y")
  assert "workdir=/home/me/runs/x\\ y;" in command
  assert "--workdir=/home/me/runs/x\\ y" in command


def test_worker_makes_a_venv_with_the_tested_jax(repo):
  _, command = _dry_run(repo, "--", *EXPERIMENT)
  jax = importlib.metadata.version("jax")
  assert "sys.exit(sys.version_info < (3, 10))" in command
  assert "recon_jax needs python >= 3.10" in command
  assert 'python3 -m venv --clear "$code/.venv"' in command
  assert (f'"$code/.venv/bin/pip" install -q jax\\[tpu\\]=={jax} '
          in command)
  assert '-e "$code"' in command
  assert "exec .venv/bin/python -m recon_jax" in command
  steps = command.split("; ")
  venv = next(i for i, s in enumerate(steps) if "-m venv" in s)
  pip = next(i for i, s in enumerate(steps) if "bin/pip\" install" in s)
  assert steps.index("set -euo pipefail") < venv < pip < len(steps) - 1


def test_without_a_local_jax_the_range_of_setup_py_is_pinned(repo, tmp_path):
  fake = tmp_path / "nopython"
  fake.mkdir()
  for py in ("python3", "python"):
    (fake / py).write_text("#!/bin/sh\nexit 1\n")
    (fake / py).chmod(0o755)
  setup = (repo / "setup.py").read_text()
  jax_range = re.search(r'"jax([<>=][^"]*)"', setup).group(1)
  _, command = _dry_run(repo, "--", *EXPERIMENT,
                        path=f"{fake}:{os.environ['PATH']}")
  # %q escapes [ ] < > , with backslashes.
  assert f"install -q jax[tpu]{jax_range} -f " in command.replace("\\", "")


def test_bucket_installs_gcsfuse_when_missing_and_mounts(repo):
  _, command = _dry_run(repo, "--accelerator=v3-32", *SHARED)
  install = command[command.index("command -v gcsfuse"):
                    command.index("; mountpoint -q")]
  for part in ("gcsfuse-$(lsb_release -c -s)",
               "signed-by=/usr/share/keyrings/cloud.google.asc",
               "https://packages.cloud.google.com/apt/doc/apt-key.gpg",
               "sudo apt-get install -y -q gcsfuse",
               "install it by hand"):
    assert part in install, part
  mount = command[command.index("mountpoint -q"):
                  command.index('; mkdir -p "$code"')]
  assert mount == ("mountpoint -q /mnt/recon_jax || { sudo mkdir -p "
                   "/mnt/recon_jax && sudo chown \"$USER\" /mnt/recon_jax "
                   "&& gcsfuse --implicit-dirs my-bucket /mnt/recon_jax; }")
  assert command.index(install) < command.index(mount) < command.index(
      "exec .venv/bin/python")


def test_no_bucket_no_gcsfuse(repo):
  _, command = _dry_run(repo, "--", *EXPERIMENT)
  assert "gcsfuse" not in command


@pytest.mark.parametrize("accelerator,runtime", [
    ("v2-8", "tpu-ubuntu2204-base"),
    ("v3-8", "tpu-ubuntu2204-base"),
    ("v4-8", "tpu-ubuntu2204-base"),
    ("v5litepod-8", "v2-alpha-tpuv5-lite"),
    ("v5p-8", "v2-alpha-tpuv5"),
    ("v6e-8", "v2-alpha-tpuv6e"),
    ("v6e-64", "v2-alpha-tpuv6e"),
])
def test_runtime_follows_the_accelerator(repo, accelerator, runtime):
  experiment = SHARED if int(accelerator.split("-")[1]) > 8 else (
      ["--"] + EXPERIMENT)
  (create, _, _), _ = _dry_run(repo, f"--accelerator={accelerator}",
                               *experiment)
  assert (f"--accelerator-type={accelerator} --version={runtime} "
          "--project") in create


def test_runtime_and_spot_flags(repo):
  (create, _, _), _ = _dry_run(repo, "--accelerator=v5p-8",
                               "--runtime=my-runtime", "--spot", "--",
                               *EXPERIMENT)
  assert ("--accelerator-type=v5p-8 --version=my-runtime --spot "
          "--project") in create


def test_dry_run_leaves_no_temp_file(repo, tmp_path):
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  _dry_run(repo, "--", *EXPERIMENT, tmpdir=tmp)
  _dry_run(repo, "--ship-working-tree", "--", *EXPERIMENT, tmpdir=tmp)
  assert not list(tmp.iterdir())


def test_failed_run_leaves_no_temp_file(repo, tmp_path):
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  # describe finds the VM; the copy to the workers fails.
  path = _fake_gcloud(tmp_path, body='[ "$4" != scp ]')
  proc = _launch(*WHERE, "--", *EXPERIMENT, repo_dir=repo, path=path,
                 tmpdir=tmp)
  assert proc.returncode != 0
  assert not list(tmp.iterdir())


def _shipped(repo_dir, tmp_path, *flags):
  """Runs for real with a fake gcloud that keeps the archive it is sent."""
  path = _fake_gcloud(
      tmp_path, body=f'[ "$4" = scp ] && cp "$5" {tmp_path}/shipped.tar.gz;'
      " true")
  proc = _launch(*WHERE, *flags, "--", *EXPERIMENT, repo_dir=repo_dir,
                 path=path)
  return proc, tmp_path / "shipped.tar.gz"


def _read(archive, name):
  with tarfile.open(archive) as tar:
    return tar.extractfile(name).read().decode()


def test_uncommitted_config_is_refused(tmp_path):
  clone = _clone(tmp_path / "recon_jax")
  with open(clone / CONFIG, "a") as f:
    f.write("# changed\n")
  proc, archive = _shipped(clone, tmp_path)
  assert proc.returncode == 2
  assert "uncommitted changes" in proc.stderr
  assert CONFIG in proc.stderr and "--ship-working-tree" in proc.stderr
  assert not (tmp_path / "calls").exists() and not archive.exists()


@pytest.mark.parametrize("new_file", ["configs/mine.py",
                                      "recon_jax/new_module.py"])
def test_untracked_code_is_refused(tmp_path, new_file):
  clone = _clone(tmp_path / "recon_jax")
  (clone / new_file).write_text("x = 1\n")
  proc, _ = _shipped(clone, tmp_path)
  assert proc.returncode == 2
  assert new_file in proc.stderr


def test_head_is_shipped_when_only_other_files_changed(tmp_path):
  clone = _clone(tmp_path / "recon_jax")
  readme = (clone / "README.md").read_text()
  (clone / "README.md").write_text("changed\n")
  proc, archive = _shipped(clone, tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert _read(archive, "README.md") == readme
  assert f"recon_jax_code-{_head(clone)}.tar.gz" in (
      tmp_path / "calls").read_text()


def test_ship_working_tree_ships_the_changes(tmp_path):
  clone = _clone(tmp_path / "recon_jax")
  with open(clone / CONFIG, "a") as f:
    f.write("# changed\n")
  (clone / "configs" / "mine.py").write_text("x = 1\n")  # untracked
  (clone / "runs").mkdir()
  (clone / "runs" / "ignored.txt").write_text("ignored\n")  # /runs/ ignored
  (clone / "README.md").unlink()  # deleted tracked file: not shipped
  proc, archive = _shipped(clone, tmp_path, "--ship-working-tree")
  assert proc.returncode == 0, proc.stderr
  assert _read(archive, CONFIG).endswith("# changed\n")
  assert _read(archive, "configs/mine.py") == "x = 1\n"
  with tarfile.open(archive) as tar:
    names = tar.getnames()
  assert "runs/ignored.txt" not in names and "README.md" not in names
  assert "launch_tpu.sh" in names and "setup.py" in names
  calls = (tmp_path / "calls").read_text()
  assert re.search(rf"recon_jax_code-{_head(clone)}-wt-[0-9a-f]{{12}}"
                   r"\.tar\.gz", calls), calls


def test_working_tree_folder_changes_with_the_contents(repo, tmp_path):
  def folder(clone):
    (_, scp, _), _ = _dry_run(clone, "--ship-working-tree", "--",
                              *EXPERIMENT)
    return re.search(r"recon_jax_code-(\S+)\.tar\.gz", scp).group(1)
  clone = _clone(tmp_path / "recon_jax")
  first = folder(clone)
  assert first == folder(clone)
  (clone / CONFIG).write_text((clone / CONFIG).read_text() + "# changed\n")
  assert folder(clone) != first


def test_real_run_reuses_an_existing_vm(repo, tmp_path):
  # gcloud's describe succeeds: no create; scp and ssh run for real.
  path = _fake_gcloud(tmp_path)
  proc = _launch(*WHERE, "--", *EXPERIMENT, repo_dir=repo, path=path)
  assert proc.returncode == 0, proc.stderr
  calls = (tmp_path / "calls").read_text().splitlines()
  assert [c.split()[3] for c in calls] == ["describe", "scp", "ssh"]


def test_real_run_creates_a_missing_vm(repo, tmp_path):
  path = _fake_gcloud(tmp_path, body='[ "$4" != describe ]')
  proc = _launch(*WHERE, "--accelerator=v6e-8", "--", *EXPERIMENT,
                 repo_dir=repo, path=path)
  assert proc.returncode == 0, proc.stderr
  calls = (tmp_path / "calls").read_text().splitlines()
  assert [c.split()[3] for c in calls] == ["describe", "create", "scp", "ssh"]
  assert "--version=v2-alpha-tpuv6e" in calls[1]


def test_missing_vm_without_create_is_an_error(repo, tmp_path):
  path = _fake_gcloud(tmp_path, body="exit 1")
  proc = _launch(*WHERE, "--no-create", "--", *EXPERIMENT, repo_dir=repo,
                 path=path)
  assert proc.returncode == 2
  assert "not found" in proc.stderr


def test_preempted_vm_is_named_not_reused(repo, tmp_path):
  path = _fake_gcloud(tmp_path, body="echo PREEMPTED")
  proc = _launch(*WHERE, "--", *EXPERIMENT, repo_dir=repo, path=path)
  assert proc.returncode == 2
  assert "is PREEMPTED" in proc.stderr and "delete simclr" in proc.stderr
  calls = (tmp_path / "calls").read_text().splitlines()
  assert [c.split()[3] for c in calls] == ["describe"]
