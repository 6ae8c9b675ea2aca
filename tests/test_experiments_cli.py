"""Bad input through the command line: one clear error line, exit 1, no work.

Each case runs an entry point as a user would and checks that it stops
before doing any work (no corpus made) with one line naming the problem.
"""
import concurrent.futures
import os
import subprocess
import sys
import textwrap

import pytest
import subprocess_env  # tests/subprocess_env.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, cwd=ROOT):
  env = subprocess_env.env()
  return subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


def _assert_one_clear_error(proc, pattern):
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  import re
  assert re.search(pattern, errors[0]), errors[0]


THESIS = ["-m", "recon_jax", "--config=configs/thesis_tiny.py"]


BAD_THESIS_FLAGS = [
    (["--config.reconstruction.layers=(1,17)"], r"layer 17 does not exist"),
    (["--config.reconstruction.methods=('telepathy',)"],
     r"unknown method 'telepathy'"),
    (["--config.classifier.train.num_epochs=0"], r"num_epochs=0"),
    (["--config.reconstruction.decoder_train.finetune_steps=-2"],
     r"finetune_steps"),
    (["--config.reconstruction.backprop.learning_rate=-1.0"],
     r"learning_rate"),
    (["--config.corpus.timit_dir=/no/such/TIMIT"], r"/no/such/TIMIT"),
]


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
  """Every BAD_THESIS_FLAGS case, three processes at a time (each with its
  own work dir): [(process, work dir)]."""
  root = tmp_path_factory.mktemp("refused")
  workdirs = [root / str(i) / "run" for i in range(len(BAD_THESIS_FLAGS))]
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    procs = list(pool.map(
        lambda case: _run(THESIS + [f"--workdir={case[0]}"] + case[1][0]),
        zip(workdirs, BAD_THESIS_FLAGS)))
  return list(zip(procs, workdirs))


@pytest.mark.parametrize("case", range(len(BAD_THESIS_FLAGS)),
                         ids=[p for _, p in BAD_THESIS_FLAGS])
def test_thesis_entry_point_refuses_bad_config_before_any_work(refused, case):
  proc, workdir = refused[case]
  _assert_one_clear_error(proc, BAD_THESIS_FLAGS[case][1])
  assert not (workdir / "corpus").exists()


def test_remote_workdir_is_refused():
  proc = _run(THESIS + ["--workdir=gs://bucket/run"])
  _assert_one_clear_error(proc, r"gs://bucket/run.*is a URL")


def test_misspelt_field_in_a_config_file_is_refused(tmp_path):
  config_file = tmp_path / "my_thesis.py"
  config_file.write_text(textwrap.dedent("""
      from configs import thesis_tiny

      def get_config():
        c = thesis_tiny.get_config()
        c.corpus.timitdir = "/data/TIMIT"  # misspelt: timit_dir
        return c
  """))
  env_root = ROOT
  proc = _run(["-m", "recon_jax", f"--config={config_file}",
               f"--workdir={tmp_path / 'run'}"], cwd=env_root)
  assert proc.returncode != 0
  assert "timitdir" in proc.stderr
  assert not (tmp_path / "run" / "corpus").exists()
