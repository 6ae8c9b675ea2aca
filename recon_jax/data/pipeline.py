"""Streaming input on Grain: packed clips read record by record, per host.

`open_packed(folder)` opens a folder written by recon_jax.data.pack as a
`PackedData` whose splits are `PackedStore`s: the same interface as the
in-memory `recon_jax.data.clips.ClipStore` (lengths, labels, windows of
clips), but only each clip's length and labels are held in memory (~12
bytes a clip); the samples are read from the ArrayRecord shards through
`grain.sources.ArrayRecordDataSource` when a batch needs them.

`streaming_epochs(store, ...)` is what `recon_jax.train.fit` iterates: for
each epoch the same plan of global batches as the in-memory path (a
permutation and window starts drawn from (seed, epoch); see
clips.EpochBatches), of which this process reads only its own rows
(`rows`, from loop.process_rows), built ahead of the step by a Grain
iterator (`grain.MapDataset` -> `to_iter_dataset` with read threads, and
optionally worker processes). Crops, augmentation and mixup stay inside
the jitted step. `fit` checkpoints the input position (epoch and Grain's
`next_index`) and resumes the iterator there.

`load(folder, in_memory_limit_gb)` picks the path: a packed set whose
float32 samples fit the budget is read into ClipStores once (faster per
step; benchmarks/bench_pipeline.py measures both), a larger one streams.
"""
import dataclasses
import os

from absl import flags
import grain
import numpy as np

from recon_jax import provenance
from recon_jax.data import clips
from recon_jax.data import pack as pack_lib


@dataclasses.dataclass(frozen=True)
class PackedStore:
  """One split of a packed folder (module doc); a clip store.

  lengths: int64 (N,) samples of each clip.
  label_ids / label_offsets: clip i's labels are
    label_ids[label_offsets[i]:label_offsets[i + 1]].
  """
  folder: str
  split: str
  shards: tuple
  encoding: str
  lengths: np.ndarray
  label_ids: np.ndarray
  label_offsets: np.ndarray
  num_classes: int
  multilabel: bool

  def __len__(self):
    return len(self.lengths)

  @property
  def max_length(self) -> int:
    return int(self.lengths.max()) if len(self) else 0

  @property
  def nbytes(self) -> int:
    """The split's samples as float32 in memory."""
    return int(self.lengths.sum()) * 4

  def source(self) -> grain.sources.ArrayRecordDataSource:
    """The split's records (opened once per process; picklable, so Grain's
    worker processes reopen it)."""
    cached = _SOURCES.get((self.folder, self.split))
    if cached is None:
      cached = grain.sources.ArrayRecordDataSource(
          [os.path.join(self.folder, s) for s in self.shards])
      if len(cached) != len(self):
        raise provenance.CorruptFileError(
            f"{self.folder}: the {self.split} shards hold {len(cached)} "
            f"records, its index {len(self)}; pack the folder again")
      _SOURCES[(self.folder, self.split)] = cached
    return cached

  def labels_of(self, indices) -> np.ndarray:
    """int32 (B,) class ids, or float32 (B, C) multi-hot."""
    indices = np.asarray(indices, np.int64)
    if not self.multilabel:
      return self.label_ids[self.label_offsets[indices]].astype(np.int32)
    out = np.zeros((len(indices), self.num_classes), np.float32)
    for row, i in enumerate(indices):
      out[row, self.label_ids[self.label_offsets[i]:
                              self.label_offsets[i + 1]]] = 1.0
    return out

  @property
  def labels(self) -> np.ndarray:
    """Every clip's labels (for evaluation splits: N x C floats)."""
    return self.labels_of(np.arange(len(self)))

  def clip(self, i) -> np.ndarray:
    return pack_lib.decode(self.source()[int(i)], self.encoding)

  def windows(self, indices, window: int, starts=None) -> tuple:
    """As ClipStore.windows: (float32 (B, window) zero-padded, int32 (B,)
    valid lengths), read from the shards."""
    indices = np.asarray(indices, np.int64)
    starts = np.zeros(len(indices), np.int64) if starts is None else starts
    out = np.zeros((len(indices), window), np.float32)
    valid = np.minimum(self.lengths[indices] - starts, window).astype(np.int32)
    records = self.source().__getitems__([int(i) for i in indices])
    for row, (record, s, n) in enumerate(zip(records, starts, valid)):
      x = pack_lib.decode(record, self.encoding)
      out[row, :n] = x[s:s + n]
    return out, valid

  def to_memory(self) -> clips.ClipStore:
    """The split read whole into a ClipStore (the in-memory path)."""
    n = len(self)
    offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(
        np.int64) if n else np.zeros(0, np.int64)
    flat = np.zeros(int(self.lengths.sum()), np.float32)
    source = self.source()
    for start in range(0, n, 256):
      idx = list(range(start, min(n, start + 256)))
      for i, record in zip(idx, source.__getitems__(idx)):
        flat[offsets[i]:offsets[i] + self.lengths[i]] = pack_lib.decode(
            record, self.encoding)
    return clips.ClipStore(flat=flat, offsets=offsets, lengths=self.lengths,
                           labels=self.labels, num_classes=self.num_classes)


_SOURCES = {}


@dataclasses.dataclass(frozen=True)
class PackedData:
  """A packed folder: its splits as stores, classes and fingerprint (the
  manifest's: it covers the source's fingerprint and the pack settings)."""
  folder: str
  class_names: tuple
  multilabel: bool
  sample_rate: int
  fingerprint: str
  manifest: dict
  stores: dict

  def split(self, name):
    if name not in self.stores:
      raise KeyError(f"{self.folder} has no {name!r} split; it has "
                     f"{sorted(self.stores)}")
    return self.stores[name]

  @property
  def nbytes(self) -> int:
    return sum(s.nbytes for s in self.stores.values())


def open_packed(folder: str) -> PackedData:
  """Opens a folder written by recon_jax.data.pack (module doc).

  Raises:
    FileNotFoundError: no such folder, or it has no pack.json (not packed,
      or a pack still running or killed: rerun the pack command).
    CorruptFileError: its index or shards are damaged or disagree.
  """
  folder = os.path.abspath(folder)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"{folder}: no such packed data folder")
  path = os.path.join(folder, pack_lib.MANIFEST)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{folder} has no {pack_lib.MANIFEST}: not a packed data folder, or "
        "its pack was killed before the end (rerun the same pack command to "
        "finish it)")
  manifest = provenance.read_json(path)
  if manifest.get("format_version") != pack_lib.FORMAT_VERSION:
    raise provenance.CorruptFileError(
        f"{path}: format version {manifest.get('format_version')!r}, this "
        f"recon_jax reads {pack_lib.FORMAT_VERSION}; pack the data again")
  settings = manifest["settings"]
  stores = {}
  for split, info in manifest["splits"].items():
    index = provenance.read_npz(os.path.join(folder,
                                             pack_lib.index_name(split)))
    missing = [s for s in info["shards"]
               if not os.path.isfile(os.path.join(folder, s))]
    if missing:
      raise FileNotFoundError(f"{folder}: shard {missing[0]} is missing "
                              f"({len(missing)} of the {split} shards)")
    if len(index["lengths"]) != info["clips"]:
      raise provenance.CorruptFileError(
          f"{folder}/{pack_lib.index_name(split)} lists "
          f"{len(index['lengths'])} clips, {pack_lib.MANIFEST} {info['clips']}")
    stores[split] = PackedStore(
        folder=folder, split=split, shards=tuple(info["shards"]),
        encoding=settings["encoding"], lengths=index["lengths"],
        label_ids=index["label_ids"], label_offsets=index["label_offsets"],
        num_classes=len(manifest["class_names"]),
        multilabel=bool(manifest["multilabel"]))
  return PackedData(folder=folder, class_names=tuple(manifest["class_names"]),
                    multilabel=bool(manifest["multilabel"]),
                    sample_rate=int(settings["sample_rate"]),
                    fingerprint=manifest["fingerprint"], manifest=manifest,
                    stores=stores)


@dataclasses.dataclass(frozen=True)
class InMemoryData:
  """A packed folder read whole: ClipStores by split, same fingerprint."""
  class_names: tuple
  multilabel: bool
  sample_rate: int
  fingerprint: str
  stores: dict

  def split(self, name):
    return self.stores[name]


def load(folder: str, in_memory_limit_gb: float):
  """A packed folder as InMemoryData when its samples fit
  `in_memory_limit_gb` (as float32), else as streaming PackedData."""
  data = open_packed(folder)
  if data.nbytes > in_memory_limit_gb * 2**30:
    return data
  return InMemoryData(class_names=data.class_names,
                      multilabel=data.multilabel,
                      sample_rate=data.sample_rate,
                      fingerprint=data.fingerprint,
                      stores={s: st.to_memory()
                              for s, st in data.stores.items()})


def is_streaming(store) -> bool:
  return isinstance(store, PackedStore)


class StreamingEpoch:
  """One epoch of process-local batches of a PackedStore, read ahead by a
  Grain iterator (module doc). A sequence: batches[i] in order is served
  from the iterator; any other index moves the iterator there (a resume).

  set_state({"next_index": i}): moves to batch i (the state of Grain's
  MapDataset iterators; `fit` checkpoints the same position).
  """

  process_local = True

  def __init__(self, plan: clips.EpochBatches, read_threads: int,
               prefetch_batches: int, worker_processes: int):
    self.plan = plan
    self._options = (grain.ReadOptions(num_threads=read_threads,
                                       prefetch_buffer_size=prefetch_batches),
                     worker_processes)
    self._iterator = None
    self._next = 0

  def _iterate_from(self, index: int):
    """A Grain iterator over batches index, index + 1, ... of the epoch."""
    read_options, worker_processes = self._options
    dataset = grain.MapDataset.source(self.plan)[index:].to_iter_dataset(
        read_options)
    if worker_processes:
      if not flags.FLAGS.is_parsed():
        # Grain's workers read absl flags; in library use nobody parsed them.
        flags.FLAGS.mark_as_parsed()
      dataset = dataset.mp_prefetch(
          grain.MultiprocessingOptions(num_workers=worker_processes))
    return iter(dataset)

  def __len__(self):
    return len(self.plan)

  def set_state(self, state: dict) -> None:
    index = int(state["next_index"])
    if not 0 <= index <= len(self):
      raise ValueError(f"input position {index} is outside this epoch's "
                       f"{len(self)} batches")
    self._iterator = self._iterate_from(index)
    self._next = index

  def __getitem__(self, i):
    if not 0 <= i < len(self):
      raise IndexError(i)
    if self._iterator is None or i != self._next:
      self.set_state({"next_index": i})
    self._next = i + 1
    return next(self._iterator)


def streaming_epochs(store: PackedStore, batch_size: int, seed: int,
                     window: int, rows: tuple, *, read_threads: int = 4,
                     prefetch_batches: int = 4, worker_processes: int = 0):
  """epoch -> StreamingEpoch: what `fit` takes as `epoch_batches`."""
  def epoch_batches(epoch):
    return StreamingEpoch(
        clips.EpochBatches(store, batch_size, seed, epoch, window, rows),
        read_threads, prefetch_batches, worker_processes)
  return epoch_batches
