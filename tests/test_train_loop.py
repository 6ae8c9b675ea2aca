"""The training loop: sharding, checkpoints, kill/resume, NaN guard, logs."""
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from recon_jax import train
from recon_jax.train import classification
from recon_jax.train import metric_writers

sys.path.insert(0, os.path.dirname(__file__))
import fit_job  # noqa: E402


def _linear_task(workdir, num_steps, seed=0, **kw):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 5)).astype(np.float32)
  y = x @ np.arange(1, 6, dtype=np.float32)

  def epoch_batches(epoch):
    order = np.random.default_rng(epoch).permutation(64)
    return [{"x": x[order[i:i + 16]], "y": y[order[i:i + 16]]}
            for i in range(0, 64, 16)]

  def loss_fn(params, batch, key):
    del key
    return jnp.mean((batch["x"] @ params["w"] - batch["y"])**2), {}

  return train.fit(workdir=workdir,
                   init_fn=lambda k: {"w": jax.random.normal(k, (5,))},
                   loss_fn=loss_fn, optimizer=optax.adam(0.1),
                   epoch_batches=epoch_batches, num_steps=num_steps, seed=seed,
                   checkpoint_every=10, log_every=10, **kw)


def _tensorboard_scalars(logdir):
  """{tag: [(step, value)]} read by TensorFlow's own record reader.

  An independent reader (TensorBoard's format as TensorFlow defines it,
  record CRCs checked) of the event files tensorboardX wrote.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  scalars = {}
  files = sorted(f for f in os.listdir(logdir) if ".tfevents." in f)
  assert files, os.listdir(logdir)
  for name in files:
    for record in tf.data.TFRecordDataset(os.path.join(logdir, name)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append((event.step,
                                                  value.simple_value))
  return scalars


def test_fit_learns_on_eight_devices_and_logs(tmp_path):
  evals = []
  state = _linear_task(str(tmp_path), 200,
                       eval_fn=lambda p, s: evals.append(s) or {"w0": p["w"][0]},
                       eval_every=100)
  np.testing.assert_allclose(state.params["w"], np.arange(1, 6), atol=0.05)
  assert evals == [100, 200]
  assert len(state.params["w"].sharding.device_set) == 8
  rows = metric_writers.read_jsonl_metrics(str(tmp_path))
  assert [r["step"] for r in rows if "train/loss" in r] == list(range(10, 201, 10))
  assert rows[-1]["eval/w0"] == pytest.approx(float(state.params["w"][0]))
  # TensorBoard holds the same rows (as float32).
  scalars = _tensorboard_scalars(str(tmp_path))
  for tag in ("train/loss", "train/grad_norm", "eval/w0"):
    assert scalars[tag] == [(r["step"], pytest.approx(r[tag], rel=1e-6))
                            for r in rows if tag in r], tag
  assert [s for s, _ in scalars["eval/w0"]] == [100, 200]
  # keep_checkpoints=3 by default: only the newest three remain.
  assert sorted(int(d) for d in os.listdir(tmp_path / "checkpoints")) == [180, 190, 200]


def test_resume_continues_from_latest_checkpoint(tmp_path):
  full = _linear_task(str(tmp_path / "a"), 40)
  _linear_task(str(tmp_path / "b"), 20)
  resumed = _linear_task(str(tmp_path / "b"), 40)
  np.testing.assert_array_equal(resumed.params["w"], full.params["w"])
  assert int(resumed.step) == 40


def test_same_seed_same_parameters_other_seed_differs(tmp_path):
  a = _linear_task(str(tmp_path / "a"), 5)
  b = _linear_task(str(tmp_path / "b"), 5)
  c = _linear_task(str(tmp_path / "c"), 5, seed=1)
  np.testing.assert_array_equal(a.params["w"], b.params["w"])
  assert not np.array_equal(a.params["w"], c.params["w"])


def test_batch_not_divisible_by_devices_is_a_clear_error():
  with pytest.raises(ValueError, match="does not split over 8 devices"):
    train.shard_batch({"x": np.zeros((12, 3))}, train.make_mesh())


def _job(workdir, steps, seconds, *extra):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(os.path.dirname(__file__))] + sys.path))
  return subprocess.Popen(
      [sys.executable, os.path.join(os.path.dirname(__file__), "fit_job.py"),
       workdir, str(steps), str(seconds), *map(str, extra)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _checksum(proc):
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return float(out.split("CHECKSUM")[-1])


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
  steps = 12
  reference = _job(str(tmp_path / "ref"), steps, 0.0)
  victim = _job(str(tmp_path / "killed"), steps, 0.4)
  ckpt_dir = tmp_path / "killed" / "checkpoints"
  deadline = time.time() + 240
  while time.time() < deadline:
    done = [d for d in os.listdir(ckpt_dir)] if ckpt_dir.exists() else []
    if any(d.isdigit() and int(d) >= 4 for d in done):
      break
    assert victim.poll() is None, victim.stderr.read()[-3000:]
    time.sleep(0.05)
  victim.send_signal(signal.SIGKILL)
  victim.wait()
  survivors = sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  assert survivors and max(survivors) < steps, survivors
  resumed = _job(str(tmp_path / "killed"), steps, 0.0)
  assert _checksum(resumed) == _checksum(reference)


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
  workdir = str(tmp_path)
  with pytest.raises(train.TrainingDivergedError, match="NaN/Inf"):
    fit_job.run(workdir, num_steps=12, nan_at_step=5)
  manager = train.checkpoint_manager(os.path.join(workdir, "checkpoints"), 2)
  assert manager.latest_step() == 4
  model = fit_job.make_model()
  params = model.init(jax.random.key(0), np.zeros((1, 201, 16), np.float32))
  optimizer = classification.adagrad_with_l2(0.05, 1e-4)
  restored = train.restore_latest(
      manager, train.TrainState(jnp.zeros((), jnp.int32), params["params"],
                                optimizer.init(params["params"])))
  assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(restored.params))


def test_shard_batch_places_rows_by_the_mesh_not_the_process():
  """A mesh in any device order still gets the batch's rows in order."""
  mesh = train.make_mesh(list(reversed(jax.devices())))
  x = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
  sharded = train.shard_batch({"x": x}, mesh)["x"]
  np.testing.assert_array_equal(np.asarray(sharded), x)
  for shard in sharded.addressable_shards:
    np.testing.assert_array_equal(np.asarray(shard.data), x[shard.index])


def test_resumed_runs_relog_steps_and_readers_keep_the_last_row(tmp_path):
  writer = metric_writers.MetricWriter(str(tmp_path))
  writer.write_scalars(10, {"train/loss": 3.0})
  writer.write_scalars(10, {"eval/accuracy": 0.5})
  writer.write_scalars(10, {"train/loss": 2.0})  # re-logged after a resume
  writer.close()
  rows = metric_writers.read_jsonl_metrics(str(tmp_path))
  assert sorted(rows, key=sorted) == [{"step": 10, "eval/accuracy": 0.5},
                                      {"step": 10, "train/loss": 2.0}]
