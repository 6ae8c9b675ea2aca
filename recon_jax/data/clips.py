"""Clips for CNN12 training: a split's clips -> fixed-shape epoch batches.

A `ClipStore` holds one split of a KeywordData or EventData set as one flat
float32 array with offsets (clips of any length, no padding kept in memory)
and its labels: int (N,) class ids (keywords, multi-class) or float (N, C)
multi-hot (events, multi-label).

`EpochBatches(store, batch_size, seed, epoch, window)` is the sequence `fit`
wants for one epoch: a permutation drawn from (seed, epoch), the last
partial batch dropped, and batch i = {"waveforms": float32 (B, window),
"lengths": int32 (B,), "labels": ...} built lazily. A clip longer than
`window` contributes `window` samples from a start drawn uniformly from
(seed, epoch, clip); a shorter one is zero-padded and its `lengths` entry
says how much is real, so that the jitted step's random crop tiles it (see
recon_jax.data.augment). Nothing else is random on the host: crops,
augmentation and mixup are drawn inside the step from its key.

`eval_groups(store, multiple)` groups clips by the length they are
evaluated at (whole clips; lengths rounded up to a multiple of `multiple`
and to CNN12's receptive field by tiling, so real data of many lengths
compiles a few shapes; every generated clip has one length).
"""
import dataclasses

import numpy as np

from recon_jax.data import audio_folder
from recon_jax.data import audio_io


@dataclasses.dataclass(frozen=True)
class ClipStore:
  """One split's clips, flat.

  flat: float32 (sum of lengths,), the clips one after another.
  offsets: int64 (N,) start of each clip in `flat`.
  lengths: int64 (N,) samples of each clip.
  labels: int32 (N,) class ids, or float32 (N, C) multi-hot.
  num_classes: C.
  """
  flat: np.ndarray
  offsets: np.ndarray
  lengths: np.ndarray
  labels: np.ndarray
  num_classes: int

  def __len__(self):
    return len(self.lengths)

  @property
  def multilabel(self) -> bool:
    return self.labels.ndim == 2

  @property
  def max_length(self) -> int:
    return int(self.lengths.max()) if len(self) else 0

  def labels_of(self, indices) -> np.ndarray:
    """The labels of clips `indices`: int32 (B,) or float32 (B, C)."""
    return self.labels[np.asarray(indices)]

  def clip(self, i) -> np.ndarray:
    return self.flat[self.offsets[i]:self.offsets[i] + self.lengths[i]]

  def windows(self, indices, window: int, starts=None) -> tuple:
    """(float32 (B, window) zero-padded, int32 (B,) valid lengths) of the
    clips `indices`, each from `starts` (default 0), at most `window` long."""
    indices = np.asarray(indices)
    starts = np.zeros(len(indices), np.int64) if starts is None else starts
    out = np.zeros((len(indices), window), np.float32)
    valid = np.minimum(self.lengths[indices] - starts, window).astype(np.int32)
    for row, (i, s, n) in enumerate(zip(indices, starts, valid)):
      o = self.offsets[i] + s
      out[row, :n] = self.flat[o:o + n]
    return out, valid


def clip_store(data, split: str) -> ClipStore:
  """The ClipStore of `split` ("train", "validation", "test") of a
  KeywordData (multi-class) or EventData (multi-label) set."""
  part = data.split(split)
  if hasattr(part, "windows") and hasattr(part, "labels_of"):
    return part  # Already a store (a packed set's, recon_jax.data.pipeline).
  num_classes = len(data.class_names)
  if isinstance(part, audio_folder.KeywordSplit):
    waves = np.asarray(part.waveforms, np.float32)
    n, length = waves.shape
    return ClipStore(flat=waves.reshape(-1),
                     offsets=np.arange(n, dtype=np.int64) * length,
                     lengths=np.full(n, length, np.int64),
                     labels=np.asarray(part.labels, np.int32),
                     num_classes=num_classes)
  if isinstance(part, audio_folder.EventSplit):
    lengths = np.asarray(part.lengths, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = (np.concatenate([np.asarray(c, np.float32) for c in part.clips])
            if len(lengths) else np.zeros(0, np.float32))
    return ClipStore(flat=flat, offsets=offsets, lengths=lengths,
                     labels=np.asarray(part.labels, np.float32),
                     num_classes=num_classes)
  raise ValueError(f"split {split!r} is a {type(part).__name__}; want a "
                   "KeywordSplit or EventSplit (recon_jax.data.audio_folder)")


class EpochBatches:
  """One epoch of batches of a ClipStore (module doc), built lazily.

  Deterministic in (seed, epoch): every host of a multi-host run plans the
  same global batches. With `rows=(start, stop)` each batch holds only those
  rows of the global batch (a process's own, see
  recon_jax.train.loop.process_rows), so a host reads only the clips its
  devices get; `process_local` then says so to `fit`.
  """

  def __init__(self, store, batch_size: int, seed: int, epoch: int,
               window: int, rows: tuple | None = None):
    if batch_size < 1 or window < 1:
      raise ValueError(f"batch_size={batch_size} and window={window} must be "
                       ">= 1")
    if len(store) < batch_size:
      raise ValueError(f"{len(store)} training clips are fewer than one batch "
                       f"of {batch_size}: the epoch would have no batch; "
                       "lower the batch size")
    self.store, self.batch_size, self.window = store, batch_size, window
    if rows is not None:
      start, stop = (int(r) for r in rows)
      if not 0 <= start < stop <= batch_size:
        raise ValueError(f"rows={rows}: want 0 <= start < stop <= "
                         f"batch_size={batch_size}")
      rows = (start, stop)
    self.rows = rows
    self.process_local = rows is not None
    rng = np.random.default_rng([seed, epoch])
    self.order = rng.permutation(len(store))
    # One uniform draw per clip places the window inside longer clips.
    u = np.random.default_rng([seed, epoch, 1]).random(len(store))
    slack = np.maximum(store.lengths - window, 0)
    self.starts = np.floor(u * (slack + 1)).astype(np.int64)

  def __len__(self):
    return len(self.store) // self.batch_size

  def __getitem__(self, i):
    if not 0 <= i < len(self):
      raise IndexError(i)
    idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
    if self.rows is not None:
      idx = idx[self.rows[0]:self.rows[1]]
    waves, lengths = self.store.windows(idx, self.window, self.starts[idx])
    return {"waveforms": waves, "lengths": lengths,
            "labels": self.store.labels_of(idx)}


def train_window(store: ClipStore, need: int, max_samples: int) -> int:
  """The batch length: the longest clip, but at least `need` (the crop or
  the span the contrastive views need) and at most max(need, max_samples)."""
  return int(max(need, min(store.max_length, max_samples)))


EVAL_PADS = ("tile", "edge")


def eval_length(length: int, multiple: int, minimum: int = 0) -> int:
  """A clip's evaluation length: at least `minimum` samples, rounded up to
  `multiple`, at least CNN12's receptive field (the extra samples pad the
  clip, see eval_inputs)."""
  rounded = -(-max(int(length), int(minimum)) // multiple) * multiple
  return max(rounded, audio_io.CNN12_RECEPTIVE_FIELD)


def eval_groups(store: ClipStore, multiple: int, minimum: int = 0) -> list:
  """[(length, clip indices)] of clips evaluated at each length, sorted."""
  lengths = np.array([eval_length(n, multiple, minimum)
                      for n in store.lengths])
  return [(int(n), np.flatnonzero(lengths == n)) for n in np.unique(lengths)]


def eval_inputs(store: ClipStore, indices, length: int,
                pad: str = "tile") -> np.ndarray:
  """float32 (len(indices), length): each clip lengthened to `length`.

  pad 'tile': the clip from its start, repeated (as augment.tile_to_length);
  'edge': the clip centred, its first and last samples repeated outwards
  (the authors' evaluation, PadToSize with torch's 'replicate'; the extra
  sample of an odd padding goes after). A no-op for clips of that length.
  """
  if pad not in EVAL_PADS:
    raise ValueError(f"pad={pad!r}: want one of {EVAL_PADS}")
  waves, valid = store.windows(indices, length)
  for row in np.flatnonzero(valid < length):
    n = int(valid[row])
    if pad == "tile":
      waves[row] = waves[row, np.arange(length) % n]
    else:
      before = (length - n) // 2
      waves[row] = waves[row, np.clip(np.arange(length) - before, 0, n - 1)]
  return waves


