"""A small PhoneCNN training job, run as a subprocess by test_train_loop.py.

Usage: python fit_job.py WORKDIR NUM_STEPS SECONDS_PER_BATCH [NAN_AT_STEP]
Prints the final parameters' checksum. The data and the model are small
and synthetic, but the code path is the real one (8 fake devices, orbax).
"""
import os
import sys
import time

import subprocess_env  # tests/subprocess_env.py

os.environ["XLA_FLAGS"] = subprocess_env.xla_flags(devices=8)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from recon_jax import models  # noqa: E402
from recon_jax import train  # noqa: E402
from recon_jax.train import classification  # noqa: E402

BATCH = 16


def make_model():
  return models.PhoneCNN(conv_features=(4, 4, 4), dense_features=(16, 16, 16),
                         num_classes=5, dropout_rate=0.2)


def make_data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 201, 16)).astype(np.float32)
  y = rng.integers(0, 5, size=64).astype(np.int32)
  return x, y


class SlowBatches:
  """One epoch's batches; __getitem__ can sleep to make the job killable."""

  def __init__(self, epoch, seconds, nan_at_batch=None):
    self.x, self.y = make_data()
    self.order = np.random.default_rng(epoch).permutation(len(self.y))
    self.seconds = seconds
    self.nan_at_batch = nan_at_batch

  def __len__(self):
    return len(self.y) // BATCH

  def __getitem__(self, i):
    time.sleep(self.seconds)
    idx = self.order[i * BATCH:(i + 1) * BATCH]
    x = self.x[idx].copy()
    if self.nan_at_batch is not None and i == self.nan_at_batch:
      x[0, 0, 0] = np.nan
    return {"inputs": x, "labels": self.y[idx]}


def run(workdir, num_steps, seconds=0.0, nan_at_step=None, seed=0):
  model = make_model()
  per_epoch = 64 // BATCH

  def epoch_batches(epoch):
    nan_batch = None
    if nan_at_step is not None and nan_at_step // per_epoch == epoch:
      nan_batch = nan_at_step % per_epoch
    return SlowBatches(epoch, seconds, nan_batch)

  return train.fit(
      workdir=workdir,
      init_fn=lambda k: model.init(k, np.zeros((1, 201, 16), np.float32))["params"],
      loss_fn=classification.softmax_classifier_loss(model),
      optimizer=classification.adagrad_with_l2(0.05, 1e-4),
      epoch_batches=epoch_batches, num_steps=num_steps, seed=seed,
      checkpoint_every=2, keep_checkpoints=2, log_every=2,
      record={"job": "fit_job", "num_steps": num_steps, "seed": seed})


def checksum(params):
  return float(sum(np.sum(np.asarray(v, np.float64)**2)
                   for v in jax.tree.leaves(params)))


if __name__ == "__main__":
  state = run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
              int(sys.argv[4]) if len(sys.argv) > 4 else None)
  print(f"CHECKSUM {checksum(state.params):.10e}")
