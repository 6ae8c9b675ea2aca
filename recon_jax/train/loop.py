"""One data-parallel training loop for any model (flax/examples style).

Parameters and optimiser state are replicated over a 1-D `Mesh` of every
device (axis 'data'); each batch is split along its first axis. The step is
`jax.jit` with `NamedSharding`s; a loss that needs explicit collectives (the
contrastive NT-Xent over the global batch) runs `shard_map` inside it.

Determinism: the batch of step s depends only on (seed, epoch, position in
the epoch) and the loss's PRNG key is fold_in(key(seed), s), so a run
resumed from a checkpoint at step s ends with exactly the parameters of an
uninterrupted run on the same device count.

Multi-host: every host computes the same global batch indices, keeps its
own slice of rows, and the global array is assembled with
`jax.make_array_from_process_local_data`; only process 0 writes metrics.
"""
import dataclasses
import os
import time
from typing import Any, Callable, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from recon_jax.train import metric_writers

DATA_AXIS = "data"


def _not_orbax_chatter(record) -> bool:
  """Orbax logs every save step by step at INFO; keep its warnings only."""
  return record.levelno > 20 or "/orbax/" not in record.pathname  # 20: INFO


logging.get_absl_logger().addFilter(_not_orbax_chatter)


class TrainingDivergedError(FloatingPointError):
  """The loss or gradient became NaN/Inf; the last good checkpoint is kept."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all), axis name 'data'."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def shard_batch(batch: dict, mesh: jax.sharding.Mesh) -> dict:
  """Global arrays from a host-global batch, sharded over 'data'.

  Every host holds the same global batch and hands each of its devices the
  rows the mesh assigns to it, whatever the mesh's device order.

  Args:
    batch: dict of arrays whose first axis is the GLOBAL batch (the same on
      every host).
  """
  n_dev = mesh.devices.size
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))

  def put(x):
    x = np.asarray(x)
    if x.shape[0] % n_dev:
      raise ValueError(f"global batch of {x.shape[0]} does not split over "
                       f"{n_dev} devices; choose a batch size divisible by it")
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(put, batch)


def checkpoint_manager(directory: str, keep: int) -> ocp.CheckpointManager:
  """Orbax manager: atomic saves (temp dir, then rename), last `keep` kept."""
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def restore_latest(manager: ocp.CheckpointManager, target):
  """Restores the newest checkpoint onto `target`'s structure and shardings.

  Returns None when there is none.
  """
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"checkpoint {manager.directory}/{step} does not match "
                     f"this model/optimiser: {e}") from e


class _Progress:
  """Steps/s and ETA in the log lines of long runs."""

  def __init__(self, first_step, num_steps):
    self.first, self.num_steps = first_step, num_steps
    self.t0 = time.time()

  def line(self, step):
    elapsed = time.time() - self.t0
    rate = (step - self.first) / max(elapsed, 1e-9)
    eta = (self.num_steps - step) / rate if rate > 0 else float("nan")
    return (f"step {step}/{self.num_steps} ({100 * step / self.num_steps:.0f}%)"
            f", {rate:.2f} steps/s, ETA {eta:.0f}s")


def _epoch_and_offset(epoch_batches, step):
  """(epoch, index in epoch) of global step `step`."""
  epoch = 0
  while True:
    n = len(epoch_batches(epoch))
    if n == 0:
      raise ValueError(f"epoch {epoch} has no batches")
    if step < n:
      return epoch, step
    step -= n
    epoch += 1


def make_train_step(loss_fn, optimizer: optax.GradientTransformation,
                    key: jax.Array, mesh: jax.sharding.Mesh):
  """The jitted step: (state, sharded batch) -> (state, metrics, finite).

  The loss's key at step s is fold_in(key, s); parameters and optimiser
  state stay replicated over `mesh`, the batch arrives sharded on 'data'
  (see shard_batch) and XLA inserts the gradient all-reduce.
  """
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def train_step(state, batch):
    step_key = jax.random.fold_in(key, state.step)
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch, step_key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    metrics = {"loss": loss, "grad_norm": grad_norm, **aux}
    finite = (jnp.isfinite(loss) & jnp.isfinite(grad_norm) &
              jnp.isfinite(optax.tree.norm(params)))
    return TrainState(state.step + 1, params, opt_state), metrics, finite

  return jax.jit(train_step, out_shardings=replicated, donate_argnums=0)


def init_train_state(init_fn, optimizer, key, mesh) -> TrainState:
  """A fresh TrainState, replicated over `mesh`."""
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def init_state(key):
    params = init_fn(key)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))

  return jax.jit(init_state, out_shardings=replicated)(key)


def fit(*,
        workdir: str,
        init_fn: Callable[[jax.Array], Any],
        loss_fn: Callable[[Any, dict, jax.Array], tuple[jax.Array, dict]],
        optimizer: optax.GradientTransformation,
        epoch_batches: Callable[[int], Sequence[dict]],
        num_steps: int,
        seed: int,
        checkpoint_every: int = 500,
        keep_checkpoints: int = 3,
        log_every: int = 50,
        eval_fn: Callable[[Any, int], dict] | None = None,
        eval_every: int = 0,
        mesh: jax.sharding.Mesh | None = None) -> TrainState:
  """Trains `init_fn`'s parameters on `loss_fn`, checkpointed and resumable.

  Args:
    workdir: checkpoints go to workdir/checkpoints, metrics to workdir (a
      TensorBoard event file and metrics.jsonl).
    init_fn: key -> initial params.
    loss_fn: (params, batch, key) -> (scalar loss, dict of scalar metrics),
      traced under jit with the batch sharded over the 'data' axis.
    optimizer: optax transformation.
    epoch_batches: epoch -> sequence of host-global batches (dicts of
      arrays, first axis the global batch), deterministic in the epoch.
    num_steps: total optimiser steps; a finished run returns at once.
    seed: the run's seed (init and per-step loss keys).
    checkpoint_every: steps between checkpoints (and one at the end).
    eval_fn: (params, step) -> dict of scalars, run every `eval_every`
      steps and at the end, logged with an 'eval/' prefix.

  Returns:
    The final TrainState.

  Raises:
    TrainingDivergedError: on a NaN/Inf loss or gradient; no checkpoint is
      written after the last finite step.
  """
  mesh = make_mesh() if mesh is None else mesh
  init_key, loop_key = jax.random.split(jax.random.key(seed))
  state = init_train_state(init_fn, optimizer, init_key, mesh)
  manager = checkpoint_manager(os.path.join(workdir, "checkpoints"),
                               keep_checkpoints)
  restored = restore_latest(manager, state)
  if restored is not None:
    state = restored
    logging.info("Resumed from %s at step %d", manager.directory,
                 int(state.step))

  train_step = make_train_step(loss_fn, optimizer, loop_key, mesh)

  writer = metric_writers.MetricWriter(workdir, enabled=jax.process_index() == 0)
  step = int(state.step)
  progress = _Progress(step, num_steps)
  epoch, offset = (_epoch_and_offset(epoch_batches, step)
                   if step < num_steps else (0, 0))
  all_finite = jnp.array(True)
  last_checked = step
  pending = []  # device metrics since the last log line

  def check_finite_or_raise(upto_step):
    if not bool(all_finite):
      manager.wait_until_finished()
      raise TrainingDivergedError(
          f"loss or gradient became NaN/Inf between steps {last_checked} and "
          f"{upto_step}; last good checkpoint: step {manager.latest_step()} "
          f"in {manager.directory}")

  try:
    while step < num_steps:
      batches = epoch_batches(epoch)
      for index in range(offset, len(batches)):
        if step >= num_steps:
          break
        state, metrics, finite = train_step(state, shard_batch(batches[index],
                                                               mesh))
        all_finite = all_finite & finite
        pending.append(metrics)
        step += 1
        is_last = step == num_steps
        if step % log_every == 0 or is_last:
          check_finite_or_raise(step)
          last_checked = step
          mean = jax.tree.map(lambda *v: np.mean(np.asarray(v)), *pending)
          pending = []
          writer.write_scalars(step, {"train/" + k: v for k, v in mean.items()})
          logging.info("%s", progress.line(step))
        if eval_fn is not None and ((eval_every and step % eval_every == 0)
                                    or is_last):
          writer.write_scalars(step, {"eval/" + k: v for k, v in
                                      eval_fn(state.params, step).items()})
        if step % checkpoint_every == 0 or is_last:
          check_finite_or_raise(step)
          manager.save(step, args=ocp.args.StandardSave(state))
      epoch, offset = epoch + 1, 0
  finally:
    manager.wait_until_finished()
    writer.close()
  return state
