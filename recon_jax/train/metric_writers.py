"""Metric writers: plain log lines, a JSON-lines file and TensorBoard events.

TensorBoard event files are written by `tensorboardX.SummaryWriter` (in the
base install; no TensorFlow needed); the same scalars go to `metrics.jsonl`
(one JSON object per call) and to an absl log line, which is what TPU users
read. Viewing the events (`tensorboard --logdir DIR`) needs TensorBoard
itself, which comes with the `tensorboard` extra:
pip install -e ".[tensorboard]".
"""
import json
import math
import numbers
import os
import uuid

from absl import logging
import numpy as np


def _check_step(step) -> int:
  if isinstance(step, (bool, np.bool_)) or not isinstance(
      step, numbers.Integral):
    raise ValueError(f"metric step must be an integer, got {step!r}")
  if step < 0:
    raise ValueError(f"metric step must be >= 0, got {step}")
  return int(step)


def _check_scalars(step: int, scalars: dict) -> dict[str, float]:
  """Plain floats from `scalars`; a missing, non-scalar or NaN/Inf value is named."""
  out = {}
  for tag, value in scalars.items():
    if not isinstance(tag, str) or not tag:
      raise ValueError(f"metric name must be a non-empty string, got {tag!r}")
    if value is None:
      raise ValueError(f"metric {tag!r} at step {step} has no value (None)")
    try:
      array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
      raise ValueError(f"metric {tag!r} at step {step} is not a number: "
                       f"{value!r}") from None
    if array.size != 1:
      raise ValueError(f"metric {tag!r} at step {step} must be one scalar, "
                       f"got shape {array.shape}")
    number = float(array.reshape(()))
    if not math.isfinite(number):
      raise ValueError(f"metric {tag!r} at step {step} is {number} (not "
                       "finite); metrics.jsonl and TensorBoard take finite "
                       "numbers only")
    out[tag] = number
  return out


class MetricWriter:
  """Writes scalars as log lines, to metrics.jsonl and to TensorBoard.

  Files are appended to, so a run resumed from a checkpoint re-logs the
  steps between that checkpoint and the kill: readers keep the last row of
  each step (as TensorBoard does, and as `read_jsonl_metrics` does). Each
  writer opens its own event file (a random suffix), so a run restarted
  within the same second never truncates the previous one's events.

  Only process 0 of a multi-host job should write; pass `enabled=False`
  elsewhere.
  """

  def __init__(self, logdir: str, enabled: bool = True):
    self.enabled = enabled
    self._summary = None
    self._jsonl = None
    if not enabled:
      return
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, "metrics.jsonl")
    self._jsonl = open(path, "a")
    if _ends_mid_line(path):  # a row torn by a kill: start a fresh line
      self._jsonl.write("\n")
    # Imported here: tensorboardX imports torch when it is installed, a cost
    # only the writing process should pay.
    import tensorboardX  # pylint: disable=g-import-not-at-top
    # Its thread writes the events and flushes them every `flush_secs`: a
    # kill loses at most the last few seconds of TensorBoard events
    # (metrics.jsonl is flushed at every call).
    self._summary = tensorboardX.SummaryWriter(
        logdir, flush_secs=5, filename_suffix=f".{uuid.uuid4().hex[:12]}")

  def write_scalars(self, step: int, scalars: dict):
    """Writes `scalars` ({name: number}) at `step` (an integer >= 0).

    Raises:
      ValueError: a negative or non-integer step, or a value that is None,
        not one number, NaN or Inf (named with its step).
    """
    step = _check_step(step)
    scalars = _check_scalars(step, scalars)
    if not self.enabled or not scalars:
      return
    for tag, value in scalars.items():
      self._summary.add_scalar(tag, value, global_step=step)
    self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
    self._jsonl.flush()
    logging.info("[%d] %s", step,
                 ", ".join(f"{k}={v:.6g}" for k, v in scalars.items()))

  def close(self):
    if self._summary is not None:
      self._summary.close()
    if self._jsonl is not None:
      self._jsonl.close()


def _ends_mid_line(path: str) -> bool:
  size = os.path.getsize(path)
  if not size:
    return False
  with open(path, "rb") as f:
    f.seek(size - 1)
    return f.read(1) != b"\n"


def read_jsonl_metrics(logdir: str) -> list[dict]:
  """The rows of logdir/metrics.jsonl, by step, the newest row of each step.

  A row torn by a kill mid-write is skipped with a warning: the resumed
  run re-logged that step from its checkpoint.
  """
  path = os.path.join(logdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  rows = {}
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if line.strip():
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          logging.warning("%s:%d is a torn row (a kill mid-write); skipped",
                          path, number)
          continue
        # A resumed run re-logs steps; the newest row of a step wins, and
        # rows of one step with different keys (train vs eval) are kept.
        rows[(row["step"], tuple(sorted(row)))] = row
  return sorted(rows.values(), key=lambda r: r["step"])
