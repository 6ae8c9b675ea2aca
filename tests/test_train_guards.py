"""fit's guards: argument checks, run records, full disks, kept series, logs."""
import errno
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from recon_jax import provenance
from recon_jax import train
from recon_jax.train import loop
from recon_jax.train import metric_writers

_X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
_Y = _X @ np.arange(1, 6, dtype=np.float32)


def _epoch_batches(epoch):
  order = np.random.default_rng(epoch).permutation(64)
  return [{"x": _X[order[i:i + 16]], "y": _Y[order[i:i + 16]]}
          for i in range(0, 64, 16)]


def _loss_fn(params, batch, key):
  del key
  return jnp.mean((batch["x"] @ params["w"] - batch["y"])**2), {}


def _init_fn(key):
  return {"w": jax.random.normal(key, (5,))}


def _fit(workdir, num_steps=8, **kw):
  kw = {"checkpoint_every": 2, "log_every": 2, "keep_checkpoints": 2, **kw}
  return train.fit(workdir=str(workdir), init_fn=_init_fn, loss_fn=_loss_fn,
                   optimizer=optax.adam(0.1), epoch_batches=_epoch_batches,
                   num_steps=num_steps, seed=0, **kw)


def _tree_of_files(directory):
  """{relative path: bytes} of every file under `directory`."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out


@pytest.mark.parametrize("kw, message", [
    ({"num_steps": 0}, r"num_steps=0 must be >= 1 .*train nothing"),
    ({"num_steps": -5}, r"num_steps=-5 must be >= 1"),
    ({"num_steps": 2.5}, r"num_steps must be an integer"),
    ({"log_every": 0}, r"log_every=0 must be >= 1"),
    ({"checkpoint_every": 0}, r"checkpoint_every=0 must be >= 1"),
    ({"checkpoint_every": -2}, r"checkpoint_every=-2 must be >= 1"),
    ({"keep_checkpoints": 0}, r"keep_checkpoints=0 must be >= 1"),
    ({"keep_period": 0}, r"keep_period=0 must be >= 1"),
    ({"eval_every": -1}, r"eval_every=-1 must be >= 0"),
    ({"eval_every": 4}, r"eval_every=4 but no eval_fn"),
    ({"seed": "0"}, r"seed must be an integer"),
    ({"record": ["data"]}, r"record must be a dict"),
])
def test_values_that_cannot_work_are_refused_before_any_work(tmp_path, kw,
                                                              message):
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    if "seed" in kw:
      train.fit(workdir=str(workdir), init_fn=_init_fn, loss_fn=_loss_fn,
                optimizer=optax.adam(0.1), epoch_batches=_epoch_batches,
                num_steps=4, **kw)
    else:
      _fit(workdir, **kw)
  assert not workdir.exists()


def test_url_workdir_is_refused(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match=r"workdir='gs://bucket/run' is a URL"):
    _fit("gs://bucket/run")
  assert os.listdir(tmp_path) == []  # no local folder named 'gs:'


def test_unwritable_workdir_is_one_clear_error(tmp_path):
  (tmp_path / "file").write_text("not a folder")
  with pytest.raises(train.WorkdirWriteError,
                     match=r"cannot write to workdir .*file/run") as info:
    _fit(tmp_path / "file" / "run")
  assert info.value.__suppress_context__


def test_checkpoint_beyond_num_steps_is_refused(tmp_path):
  _fit(tmp_path, num_steps=4)
  before = _tree_of_files(tmp_path / "checkpoints")
  with pytest.raises(ValueError, match=r"checkpoint at step 4, beyond "
                     r"num_steps=2; use a new workdir"):
    _fit(tmp_path, num_steps=2)
  assert _tree_of_files(tmp_path / "checkpoints") == before


def test_record_of_another_run_stops_before_anything_is_touched(tmp_path):
  record_a = {"data": "abc123", "config": {"lr": 0.1, "layers": 3}}
  _fit(tmp_path, num_steps=4, record=record_a)
  assert provenance.read_json(tmp_path / "made_by.json") == record_a
  before = _tree_of_files(tmp_path)

  record_b = {"data": "abc123", "config": {"lr": 0.2, "layers": 3}}
  with pytest.raises(provenance.ProvenanceError,
                     match=r"training state in .* was made by another run "
                     r"\(config.lr: was 0.1, now 0.2\)"):
    _fit(tmp_path, num_steps=8, record=record_b)
  assert _tree_of_files(tmp_path) == before
  assert train.list_checkpoint_steps(str(tmp_path)) == [2, 4]

  # The same record resumes.
  state = _fit(tmp_path, num_steps=8, record=record_a)
  assert int(state.step) == 8


def test_checkpoints_without_a_record_are_not_adopted(tmp_path):
  _fit(tmp_path, num_steps=2)
  before = _tree_of_files(tmp_path)
  with pytest.raises(provenance.ProvenanceError,
                     match=r"has no record of what made it"):
    _fit(tmp_path, num_steps=4, record={"data": "abc"})
  assert _tree_of_files(tmp_path) == before


def _failing_save(monkeypatch, at_step, error):
  real_save = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == at_step:
      raise error
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)


@pytest.mark.parametrize("error, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    # What TensorStore (orbax's array writer) raises on a full disk.
    (ValueError("RESOURCE_EXHAUSTED: Error writing local file \"/x/_sharding\""
                ": Failed to write 83 bytes to file 8: No space left on "
                "device [os_error_code='28']"), "disk full"),
])
def test_failed_checkpoint_write_is_one_error_and_keeps_the_last_good(
    tmp_path, monkeypatch, error, reason):
  _failing_save(monkeypatch, 6, error)
  with pytest.raises(train.CheckpointWriteError) as info:
    _fit(tmp_path, num_steps=8)
  message = str(info.value)
  assert message.startswith(
      f"could not write checkpoint step 6 to {tmp_path}/checkpoints: "
      f"{reason}"), message
  assert message.endswith("last good checkpoint: step 4 kept"), message
  assert info.value.__suppress_context__  # no chain of orbax frames
  assert isinstance(info.value, OSError)
  assert train.list_checkpoint_steps(str(tmp_path)) == [2, 4]
  params = train.restore_params_at(str(tmp_path), 4)
  assert np.all(np.isfinite(params["w"]))


def test_a_run_stopped_by_a_full_disk_resumes_to_the_same_result(
    tmp_path, monkeypatch):
  with monkeypatch.context() as m:
    _failing_save(m, 6, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(train.CheckpointWriteError):
      _fit(tmp_path / "full", num_steps=8)
  resumed = _fit(tmp_path / "full", num_steps=8)
  reference = _fit(tmp_path / "ref", num_steps=8)
  np.testing.assert_array_equal(resumed.params["w"], reference.params["w"])


def test_a_save_failing_in_the_background_names_its_own_step(tmp_path,
                                                             monkeypatch):
  """Orbax writes asynchronously: step 6's failure surfaces at its wait."""
  real_save = ocp.CheckpointManager.save
  real_wait = ocp.CheckpointManager.wait_until_finished
  failed = []

  def save(self, step, *args, **kwargs):
    if step == 6:
      failed.append(step)  # as if the background write then hit ENOSPC
      return True
    return real_save(self, step, *args, **kwargs)

  def wait(self):
    if failed:
      failed.clear()
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_wait(self)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", wait)
  with pytest.raises(train.CheckpointWriteError,
                     match=r"could not write checkpoint step 6 .*disk full.*"
                     r"last good checkpoint: step 4 kept"):
    _fit(tmp_path, num_steps=12)


def test_full_disk_while_writing_metrics_is_one_error(tmp_path, monkeypatch):
  real_write = metric_writers.MetricWriter.write_scalars

  def write_scalars(self, step, scalars):
    if step == 6:
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_write(self, step, scalars)

  monkeypatch.setattr(metric_writers.MetricWriter, "write_scalars",
                      write_scalars)
  with pytest.raises(train.WorkdirWriteError,
                     match=r"could not write metrics at step 6 to .*: disk "
                     r"full \(\[Errno 28\] No space left on device\); last "
                     r"good checkpoint: step 4 kept") as info:
    _fit(tmp_path, num_steps=8)
  assert info.value.__suppress_context__


def test_keep_period_keeps_a_series_for_later_analysis(tmp_path):
  final = _fit(tmp_path, num_steps=20, checkpoint_every=4, keep_checkpoints=1,
               keep_period=6)
  # The newest, plus the initialisation and every multiple of 6 (saved
  # even though checkpoint_every is 4).
  steps = train.list_checkpoint_steps(str(tmp_path))
  assert steps == [0, 6, 12, 18, 20]
  series = [train.restore_params_at(str(tmp_path), s) for s in steps]
  assert all(isinstance(p["w"], np.ndarray) for p in series)
  assert len({p["w"].tobytes() for p in series}) == 5
  np.testing.assert_array_equal(series[-1]["w"], final.params["w"])

  # Same as the step-12 state of a run that stopped there, and step 0 is
  # the initialisation that run started from.
  at_12 = _fit(tmp_path / "to12", num_steps=12, checkpoint_every=4)
  np.testing.assert_array_equal(series[2]["w"], at_12.params["w"])
  init_key, _ = jax.random.split(jax.random.key(0))
  initial = loop.init_train_state(_init_fn, optax.adam(0.1), init_key,
                                  loop.make_mesh())
  np.testing.assert_array_equal(series[0]["w"], initial.params["w"])

  target = {"w": jax.ShapeDtypeStruct((5,), jnp.float32)}
  np.testing.assert_array_equal(
      train.restore_params_at(str(tmp_path), 12, target)["w"], series[2]["w"])


def test_restore_params_at_names_what_is_wrong(tmp_path):
  _fit(tmp_path, num_steps=4)
  with pytest.raises(FileNotFoundError,
                     match=r"no checkpoint at step 3 .*kept steps: \[2, 4\]"):
    train.restore_params_at(str(tmp_path), 3)
  with pytest.raises(ValueError, match=r"\['w'\]: saved \(5,\) float32, "
                     r"target \(6,\) float32"):
    train.restore_params_at(str(tmp_path), 4, {"w": np.zeros(6, np.float32)})
  with pytest.raises(ValueError, match=r"\['b'\]: not in the checkpoint"):
    train.restore_params_at(str(tmp_path), 4,
                            {"w": np.zeros(5, np.float32), "b": np.zeros(1)})
  with pytest.raises(FileNotFoundError, match=r"no checkpoints in"):
    train.list_checkpoint_steps(str(tmp_path / "elsewhere"))


def test_progress_bar_and_rate_log_line(tmp_path, capfd, caplog):
  with caplog.at_level(logging.INFO, logger="absl"):
    _fit(tmp_path, num_steps=8, log_every=4)
  err = capfd.readouterr().err
  # tqdm: steps, rate (steps/s, or s/step when slower than 1/s), ETA.
  assert "8/8" in err and ("step/s" in err or "s/step" in err), err
  lines = [r.getMessage() for r in caplog.records]
  assert any(l.startswith("step 8/8 (100%), ") and "steps/s, ETA" in l
             for l in lines), lines


@pytest.mark.parametrize("step, value, message", [
    (-1, 1.0, r"step must be >= 0, got -1"),
    (2.0, 1.0, r"step must be an integer, got 2.0"),
    (3, None, r"'loss' at step 3 has no value"),
    (3, float("nan"), r"'loss' at step 3 is nan \(not finite\)"),
    (3, np.float32("inf"), r"'loss' at step 3 is inf \(not finite\)"),
    (3, np.ones(2), r"'loss' at step 3 must be one scalar, got shape \(2,\)"),
    (3, "high", r"'loss' at step 3 is not a number: 'high'"),
])
def test_metric_writer_refuses_what_cannot_be_logged(tmp_path, step, value,
                                                    message):
  writer = metric_writers.MetricWriter(str(tmp_path))
  with pytest.raises(ValueError, match=message):
    writer.write_scalars(step, {"loss": value})
  writer.close()
  assert metric_writers.read_jsonl_metrics(str(tmp_path)) == []


def test_row_torn_by_a_kill_does_not_spoil_the_file(tmp_path):
  with open(tmp_path / "metrics.jsonl", "w") as f:
    f.write(json.dumps({"step": 2, "train/loss": 1.0}) + "\n")
    f.write('{"step": 4, "train/lo')  # killed mid-write
  writer = metric_writers.MetricWriter(str(tmp_path))
  writer.write_scalars(4, {"train/loss": 0.5})
  writer.close()
  assert metric_writers.read_jsonl_metrics(str(tmp_path)) == [
      {"step": 2, "train/loss": 1.0}, {"step": 4, "train/loss": 0.5}]
