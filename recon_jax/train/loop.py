"""One data-parallel training loop for any model (flax/examples style).

Parameters and optimiser state are replicated over a 1-D `Mesh` of every
device (axis 'data'); each batch is split along its first axis. The step is
`jax.jit` with `NamedSharding`s; a loss that needs explicit collectives (the
contrastive NT-Xent over the global batch) runs `shard_map` inside it.

Determinism: the batch of step s depends only on (seed, epoch, position in
the epoch) and the loss's PRNG key is fold_in(key(seed), s), so a run
resumed from a checkpoint at step s ends with exactly the parameters of an
uninterrupted run on the same device count.

Multi-host: every host computes the same global batch indices. A batch
sequence marked `process_local` (recon_jax.data.clips.EpochBatches with the
rows of `process_rows`) hands each host only its own rows, read from its own
storage, and the global array is assembled with
`jax.make_array_from_process_local_data`; any other sequence gives every
host the whole global batch and each keeps its rows (`shard_batch`). Only
process 0 writes metrics and records; orbax writes each checkpoint once.

Work directory: workdir/checkpoints (orbax; the newest `keep_checkpoints`
plus every multiple of `keep_period`; each step holds the item "state" and
the item "data", the input iterator's position), workdir/made_by.json (the run
record, compared before anything is restored), metrics.jsonl and a
TensorBoard event file. `list_checkpoint_steps` and `restore_params_at`
read the kept series back, e.g. to follow the features through training.
"""
import errno
import numbers
import os
import re
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from recon_jax import provenance
from recon_jax.train import metric_writers

DATA_AXIS = "data"
CHECKPOINTS = "checkpoints"  # the subfolder of a workdir holding them
STATE_ITEM = "state"  # a checkpoint's TrainState
DATA_ITEM = "data"  # a checkpoint's input position (JSON)


def _not_orbax_chatter(record) -> bool:
  """Orbax logs every save at INFO; keep its warnings and errors only.

  Its errors keep their one-line message but lose the traceback of its
  background threads: a failed save reaches the caller as one error (see
  CheckpointWriteError) instead of pages of asyncio frames.
  """
  if "/orbax/" not in record.pathname:
    return True
  if f'Item "{DATA_ITEM}" was found' in record.getMessage():
    return False  # Readers of parameters alone skip the input position.
  if record.levelno >= 40:  # ERROR
    record.exc_info, record.exc_text = None, None
  return record.levelno > 20  # 20: INFO


logging.get_absl_logger().addFilter(_not_orbax_chatter)


class TrainingDivergedError(FloatingPointError):
  """The loss or gradient became NaN/Inf; the last good checkpoint is kept."""


class WorkdirWriteError(OSError):
  """The work directory cannot be written (disk full, read-only, no access)."""


class CheckpointWriteError(WorkdirWriteError):
  """A checkpoint could not be written; the last good one is kept."""


_WRITE_FAILURES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied (read-only directory?)",
    errno.EPERM: "operation not permitted (read-only directory?)",
}


def _os_error_code(e: BaseException) -> int | None:
  """The errno of an OSError, or of TensorStore's ValueError, else None.

  Orbax writes arrays through TensorStore, which reports a full disk as
  ValueError("RESOURCE_EXHAUSTED: ... [os_error_code='28']").
  """
  if isinstance(e, OSError):
    return e.errno
  if isinstance(e, ValueError):
    match = re.search(r"os_error_code='?(\d+)", str(e))
    if match:
      return int(match.group(1))
  return None


def _write_failure(e: BaseException) -> str | None:
  """'disk full (...)' for an OSError-like failure `e`, None for others."""
  code = _os_error_code(e)
  if code is None and not isinstance(e, OSError):
    return None
  if code is None:
    return f"write failed ({(str(e) or type(e).__name__).splitlines()[0]})"
  reason = _WRITE_FAILURES.get(code, "write failed")
  return f"{reason} ([Errno {code}] {os.strerror(code)})"


def _last_good(directory: str) -> str:
  steps = ocp.utils.checkpoint_steps(directory)
  return (f"last good checkpoint: step {max(steps)} kept" if steps else
          "no checkpoint was written before")


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


def process_rows(mesh: jax.sharding.Mesh, batch_size: int) -> tuple[int, int]:
  """(start, stop): the rows of a global batch of `batch_size` that this
  process's devices hold under a batch sharded over 'data' (its devices are
  contiguous along the mesh axis, as in every mesh `make_mesh` builds)."""
  sharding = jax.sharding.NamedSharding(mesh,
                                        jax.sharding.PartitionSpec(DATA_AXIS))
  if batch_size % mesh.devices.size:
    raise ValueError(f"global batch of {batch_size} does not split over "
                     f"{mesh.devices.size} devices; choose a batch size "
                     "divisible by it")
  index = sharding.addressable_devices_indices_map((batch_size,))
  spans = sorted((s[0].start or 0, s[0].stop or batch_size)
                 for s in index.values())
  start, stop = spans[0][0], spans[-1][1]
  if sum(b - a for a, b in set(spans)) != stop - start:
    raise ValueError("this process's devices do not hold one contiguous "
                     "block of the batch; build the mesh with make_mesh()")
  return start, stop


def shard_process_batch(batch: dict, mesh: jax.sharding.Mesh) -> dict:
  """Global arrays from this process's rows of the global batch (the rows
  of `process_rows`), sharded over 'data'."""
  sharding = jax.sharding.NamedSharding(mesh,
                                        jax.sharding.PartitionSpec(DATA_AXIS))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding,
                                                       np.asarray(x)), batch)


def checkpoint_manager(directory: str, keep: int,
                       keep_period: int | None = None, *,
                       clean_up_unfinished: bool = False
                       ) -> ocp.CheckpointManager:
  """Orbax manager: atomic saves (temp dir, then rename).

  Args:
    directory: the checkpoints folder (workdir/checkpoints for `fit`).
    keep: the newest `keep` checkpoints are kept, older ones pruned...
    keep_period: ...except those at multiples of `keep_period` (None: no
      such series), which are never pruned.
    clean_up_unfinished: delete the temporary folders of saves that never
      finished (a kill or a full disk). Only for the process that trains:
      a reader would delete a running save's folder.
  """
  ckpt = ocp.checkpoint_managers
  policy = ckpt.LatestN(keep)
  if keep_period is not None:
    policy = ckpt.AnyPreservationPolicy(
        [policy, ckpt.EveryNSteps(keep_period)])
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(
          preservation_policy=policy, create=True,
          cleanup_tmp_directories=clean_up_unfinished))


def restore_latest(manager: ocp.CheckpointManager, target):
  """Restores the newest checkpoint onto `target`'s structure and shardings.

  Returns None when there is none.
  """
  restored = restore_latest_with_data(manager, target)
  return None if restored is None else restored[0]


def restore_latest_with_data(manager: ocp.CheckpointManager, target):
  """(state, data position or None) of the newest checkpoint, the state on
  `target`'s structure and shardings; None when there is no checkpoint."""
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  has_data = os.path.isdir(os.path.join(manager.directory, str(step),
                                        DATA_ITEM))
  items = {STATE_ITEM: ocp.args.StandardRestore(abstract)}
  if has_data:
    items[DATA_ITEM] = ocp.args.JsonRestore()
  try:
    restored = manager.restore(step, args=ocp.args.Composite(**items))
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"checkpoint {manager.directory}/{step} does not match "
                     f"this model/optimiser: {e}") from e
  return restored[STATE_ITEM], (restored[DATA_ITEM] if has_data else None)


def save_args(state, data_position: dict | None = None):
  """orbax save args of a checkpoint: the TrainState and, when given, the
  input position (JSON)."""
  items = {STATE_ITEM: ocp.args.StandardSave(state)}
  if data_position is not None:
    items[DATA_ITEM] = ocp.args.JsonSave(data_position)
  return ocp.args.Composite(**items)


def list_checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the finished checkpoints in workdir/checkpoints, sorted.

  Raises:
    FileNotFoundError: workdir has no checkpoints folder.
  """
  directory = os.path.join(provenance.check_workdir(workdir, "workdir"),
                           CHECKPOINTS)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoints in {workdir} (missing "
                            f"{directory}); train with fit(workdir=...) first")
  return sorted(ocp.utils.checkpoint_steps(directory))


def _dtype(x) -> np.dtype:
  return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _leaves_by_path(tree) -> dict[str, Any]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def restore_params_at(workdir: str, step: int, target=None):
  """The parameters `fit` saved at `step`, as host NumPy arrays.

  Read on any device count (no shardings are restored), so a series kept
  with `keep_period` on a TPU pod can be analysed on one CPU.

  Args:
    workdir: the `workdir` given to `fit`.
    step: one of `list_checkpoint_steps(workdir)`.
    target: optional pytree of arrays or jax.ShapeDtypeStructs, e.g.
      `model.init(...)["params"]`; the result has its structure, and every
      leaf's path, shape and dtype must match the checkpoint's.

  Raises:
    FileNotFoundError: no checkpoint at `step` (the kept steps are named).
    ValueError: `target` differs from the saved parameters (the differing
      leaves are named).
  """
  steps = list_checkpoint_steps(workdir)
  if step not in steps:
    raise FileNotFoundError(f"no checkpoint at step {step} in {workdir}/"
                            f"{CHECKPOINTS}; kept steps: {steps}")
  directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS)
  with ocp.CheckpointManager(
      directory, item_names=(STATE_ITEM,),
      item_handlers={STATE_ITEM: ocp.PyTreeCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(create=False)) as manager:
    saved = manager.item_metadata(step)
    saved = None if saved is None else saved.get(STATE_ITEM)
    if saved is None or "params" not in saved:
      raise ValueError(f"{directory}/{step} is not a checkpoint written by "
                       "recon_jax.train.fit (no 'params')")
    saved = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype),
                         saved["params"])
    if target is not None:
      want, have = _leaves_by_path(target), _leaves_by_path(saved)
      diffs = [f"{k}: not in the checkpoint" for k in want if k not in have]
      diffs += [f"{k}: in the checkpoint, not in target" for k in have
                if k not in want]
      diffs += [f"{k}: saved {have[k].shape} {have[k].dtype}, target "
                f"{np.shape(v)} {_dtype(v)}" for k, v in want.items()
                if k in have and (tuple(np.shape(v)) != have[k].shape or
                                  _dtype(v) != have[k].dtype)]
      if diffs:
        raise ValueError(f"the parameters in {directory}/{step} differ from "
                         "target: " + "; ".join(diffs[:8]) +
                         (f"; and {len(diffs) - 8} more" if len(diffs) > 8
                          else ""))
    as_numpy = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved)
    params = manager.restore(step, args=ocp.args.Composite(**{
        STATE_ITEM: ocp.args.PyTreeRestore(
            item={"params": saved}, restore_args={"params": as_numpy},
            partial_restore=True)}))[STATE_ITEM]["params"]
  if target is None:
    return params
  by_path = _leaves_by_path(params)
  paths = [jax.tree_util.keystr(p) for p, _ in
           jax.tree_util.tree_flatten_with_path(target)[0]]
  return jax.tree.unflatten(jax.tree.structure(target),
                            [by_path[p] for p in paths])


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


def _check_int(name: str, value, minimum: int, meaning: str) -> int:
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, numbers.Integral):
    raise ValueError(f"{name} must be an integer >= {minimum} ({meaning}), "
                     f"got {value!r}")
  if value < minimum:
    raise ValueError(f"{name}={value} must be >= {minimum} ({meaning})")
  return int(value)


def _check_writable(workdir: str):
  """Creates workdir if needed and writes a scratch file there, or raises."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise WorkdirWriteError(
        f"cannot write to workdir {workdir}: {_write_failure(e)}") from None


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
        keep_period: int | None = None,
        log_every: int = 50,
        eval_fn: Callable[[Any, int], dict] | None = None,
        eval_every: int = 0,
        mesh: jax.sharding.Mesh | None = None,
        record: dict | None = None) -> TrainState:
  """Trains `init_fn`'s parameters on `loss_fn`, checkpointed and resumable.

  Every argument is checked before any work; a resumed run first compares
  `record` with the one its checkpoints were made by.

  Args:
    workdir: a local (or mounted) folder, not a URL. Checkpoints go to
      workdir/checkpoints, metrics to workdir (a TensorBoard event file and
      metrics.jsonl), `record` to workdir/made_by.json.
    init_fn: key -> initial params.
    loss_fn: (params, batch, key) -> (scalar loss, dict of scalar metrics),
      traced under jit with the batch sharded over the 'data' axis.
    optimizer: optax transformation.
    epoch_batches: epoch -> sequence of host-global batches (dicts of
      arrays, first axis the global batch), deterministic in the epoch.
    num_steps: total optimiser steps, >= 1; a finished run returns at once.
    seed: the run's seed (init and per-step loss keys).
    checkpoint_every: steps between checkpoints (and one at the end), >= 1.
    keep_checkpoints: the newest checkpoints kept, >= 1.
    keep_period: if set, a checkpoint is also saved at step 0 (the
      initialisation, when the run starts fresh) and at every multiple of it
      and never pruned: the series `restore_params_at` reads back. Resume
      with the same keep_period: without it, the next save prunes the
      series down to the newest `keep_checkpoints`.
    log_every: steps between metric rows and log lines, >= 1.
    eval_fn: (params, step) -> dict of scalars, run every `eval_every`
      steps (0: only at the end) and at the end, logged with an 'eval/'
      prefix.
    mesh: the 1-D data mesh (default: every device).
    record: what makes this run (data fingerprint, config...), JSON-able.
      Saved to workdir/made_by.json by the first run; a later run with
      another record stops with a ProvenanceError naming the differing
      fields, before anything is restored or written.

  Returns:
    The final TrainState.

  Raises:
    ValueError: an argument out of range, a workdir URL, or a checkpoint
      beyond num_steps.
    provenance.ProvenanceError: workdir was made by another record, or holds
      checkpoints without one while `record` is given.
    TrainingDivergedError: on a NaN/Inf loss or gradient; no checkpoint is
      written after the last finite step.
    CheckpointWriteError / WorkdirWriteError: the disk is full or the
      workdir read-only; the last good checkpoint stays restorable.
  """
  workdir = provenance.check_workdir(workdir, "workdir")
  num_steps = _check_int(
      "num_steps", num_steps, 1, "fewer would train nothing and save the "
      "random network as trained")
  if isinstance(seed, (bool, np.bool_)) or not isinstance(seed,
                                                          numbers.Integral):
    raise ValueError(f"seed must be an integer, got {seed!r}")
  checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1,
                                "steps between checkpoints")
  keep_checkpoints = _check_int(
      "keep_checkpoints", keep_checkpoints, 1,
      "the newest checkpoints kept; a run resumes from the last one")
  if keep_period is not None:
    keep_period = _check_int("keep_period", keep_period, 1,
                             "steps between never-pruned checkpoints, or None")
  log_every = _check_int("log_every", log_every, 1,
                         "steps between log lines")
  eval_every = _check_int("eval_every", eval_every, 0,
                          "steps between evaluations, 0: at the end only")
  if eval_every and eval_fn is None:
    raise ValueError(f"eval_every={eval_every} but no eval_fn was given")
  if record is not None and not isinstance(record, dict):
    raise ValueError(f"record must be a dict, got {type(record).__name__}")

  ckpt_dir = os.path.join(workdir, CHECKPOINTS)
  saved_steps = (sorted(ocp.utils.checkpoint_steps(ckpt_dir))
                 if os.path.isdir(ckpt_dir) else [])
  if record is not None:
    record_path = os.path.join(workdir, "made_by.json")
    what = f"the training state in {workdir}"
    if saved_steps and not os.path.exists(record_path):
      raise provenance.ProvenanceError(
          f"{what} has no record of what made it (no {record_path}); use "
          "a new --workdir or delete it")
    provenance.check_record(record_path, record, what)
  if saved_steps and saved_steps[-1] > num_steps:
    raise ValueError(
        f"{ckpt_dir} holds a checkpoint at step {saved_steps[-1]}, beyond "
        f"num_steps={num_steps}; use a new workdir or num_steps >= "
        f"{saved_steps[-1]}")
  _check_writable(workdir)
  if record is not None:
    provenance.check_or_write_record(record_path, record, what)

  mesh = make_mesh() if mesh is None else mesh
  init_key, loop_key = jax.random.split(jax.random.key(seed))
  state = init_train_state(init_fn, optimizer, init_key, mesh)
  manager = checkpoint_manager(ckpt_dir, keep_checkpoints, keep_period,
                               clean_up_unfinished=True)
  restored = restore_latest_with_data(manager, state)
  saved_position = None
  if restored is not None:
    state, saved_position = restored
    logging.info("Resumed from %s at step %d", manager.directory,
                 int(state.step))

  train_step = make_train_step(loss_fn, optimizer, loop_key, mesh)

  is_chief = jax.process_index() == 0
  writer = metric_writers.MetricWriter(workdir, enabled=is_chief)
  step = int(state.step)
  first_step, t0 = step, time.monotonic()
  # Redrawn every second on a terminal, every minute into a log file.
  bar = tqdm.tqdm(total=num_steps, initial=step, unit="step",
                  desc=os.path.join(*os.path.normpath(workdir).split(
                      os.sep)[-2:]), disable=not is_chief,
                  dynamic_ncols=True,
                  mininterval=1.0 if sys.stderr.isatty() else 60.0)
  epoch, offset = (_epoch_and_offset(epoch_batches, step)
                   if step < num_steps else (0, 0))
  if saved_position is not None and step < num_steps and (
      saved_position.get("step"), saved_position.get("epoch"),
      saved_position.get("next_index")) != (step, epoch, offset):
    raise ValueError(
        f"checkpoint {manager.directory}/{step} stopped its input at epoch "
        f"{saved_position.get('epoch')}, batch "
        f"{saved_position.get('next_index')}, but step {step} of this run's "
        f"batches falls at epoch {epoch}, batch {offset}: the data or the "
        "batch size changed; use a new workdir")
  all_finite = jnp.array(True)
  # XLA:CPU runs a multi-device program's per-device parts on a shared
  # thread pool. With two programs in flight (two steps, or a step and
  # orbax's background save), parts of both can hold its threads, each
  # waiting in a collective for parts that cannot start: a deadlock (or,
  # after XLA's rendezvous timeout, an abort), met with 8 fake CPU devices
  # on a busy 2-core machine. So on CPU one step runs at a time and a save
  # finishes before the next step (the step is the work there: overlap saved
  # nothing measurable); accelerators keep dispatching ahead.
  one_step_in_flight = (jax.default_backend() == "cpu" and
                        jax.local_device_count() > 1)
  last_checked = step
  pending = []  # device metrics since the last log line
  pending_save = None  # the step of a save still writing in the background

  def finish_save():
    """Waits for the background save; a full disk becomes one error."""
    nonlocal pending_save
    save_step, pending_save = pending_save, None
    try:
      manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if save_step is None or (reason := _write_failure(e)) is None:
        raise
      raise CheckpointWriteError(
          f"could not write checkpoint step {save_step} to {ckpt_dir}: "
          f"{reason}; {_last_good(ckpt_dir)}") from None

  def save(save_step, position):
    nonlocal pending_save
    finish_save()
    try:
      manager.save(save_step, args=save_args(state, position))
    except Exception as e:  # pylint: disable=broad-except
      if (reason := _write_failure(e)) is None:
        raise
      raise CheckpointWriteError(
          f"could not write checkpoint step {save_step} to {ckpt_dir}: "
          f"{reason}; {_last_good(ckpt_dir)}") from None
    pending_save = save_step

  def write_metrics(at_step, scalars):
    try:
      writer.write_scalars(at_step, scalars)
    except OSError as e:
      finish_save()  # so that the last good checkpoint is named right
      raise WorkdirWriteError(
          f"could not write metrics at step {at_step} to {workdir}: "
          f"{_write_failure(e)}; {_last_good(ckpt_dir)}") from None

  def check_finite_or_raise(upto_step):
    if not bool(all_finite):
      finish_save()
      raise TrainingDivergedError(
          f"loss or gradient became NaN/Inf between steps {last_checked} and "
          f"{upto_step}; last good checkpoint: step {manager.latest_step()} "
          f"in {manager.directory}")

  try:
    if restored is None and keep_period and step < num_steps:
      # The kept series starts at the initialisation (step 0), so an
      # analysis can go back to before any training (a feature-evolution
      # figure's first row).
      save(0, {"step": 0, "epoch": 0, "next_index": 0,
               "batches_per_epoch": len(epoch_batches(0))})
      if one_step_in_flight:
        finish_save()
    while step < num_steps:
      batches = epoch_batches(epoch)
      shard = (shard_process_batch if getattr(batches, "process_local", False)
               else shard_batch)
      for index in range(offset, len(batches)):
        if step >= num_steps:
          break
        state, metrics, finite = train_step(state, shard(batches[index], mesh))
        if one_step_in_flight:
          jax.block_until_ready(state)
        all_finite = all_finite & finite
        pending.append(metrics)
        step += 1
        bar.update(1)
        is_last = step == num_steps
        if step % log_every == 0 or is_last:
          check_finite_or_raise(step)
          last_checked = step
          mean = jax.tree.map(lambda *v: np.mean(np.asarray(v)), *pending)
          pending = []
          write_metrics(step, {"train/" + k: v for k, v in mean.items()})
          rate = (step - first_step) / max(time.monotonic() - t0, 1e-9)
          logging.info("step %d/%d (%.0f%%), %.2f steps/s, ETA %s", step,
                       num_steps, 100 * step / num_steps, rate,
                       tqdm.tqdm.format_interval((num_steps - step) / rate))
          bar.set_postfix(loss=f"{float(mean['loss']):.4g}", refresh=False)
        if eval_fn is not None and ((eval_every and step % eval_every == 0)
                                    or is_last):
          write_metrics(step, {"eval/" + k: v for k, v in
                               eval_fn(state.params, step).items()})
        if (step % checkpoint_every == 0 or is_last or
            (keep_period and step % keep_period == 0)):
          check_finite_or_raise(step)
          next_epoch, next_index = ((epoch, index + 1)
                                    if index + 1 < len(batches)
                                    else (epoch + 1, 0))
          save(step, {"step": step, "epoch": next_epoch,
                      "next_index": next_index,
                      "batches_per_epoch": len(batches)})
          if one_step_in_flight:
            finish_save()  # Orbax's background work is in flight too.
      epoch, offset = epoch + 1, 0
    finish_save()
  finally:
    bar.close()
    try:  # a no-op after finish_save(); else an error is already raised
      manager.close()
    except Exception as e:  # pylint: disable=broad-except
      logging.error("while stopping on an error, a checkpoint save also "
                    "failed: %s", _write_failure(e) or repr(e)[:300])
    try:
      writer.close()
    except OSError as e:
      logging.error("could not close the metric files in %s: %s", workdir,
                    _write_failure(e))
  return state
