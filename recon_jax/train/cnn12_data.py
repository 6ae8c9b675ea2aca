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
import os

import ml_collections
import numpy as np

from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data import events
from recon_jax.data import keywords
from recon_jax.models import cnn12


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

  Deterministic in (seed, epoch): every host of a multi-host run builds the
  same global batches.
  """

  def __init__(self, store: ClipStore, batch_size: int, seed: int, epoch: int,
               window: int):
    if batch_size < 1 or window < 1:
      raise ValueError(f"batch_size={batch_size} and window={window} must be "
                       ">= 1")
    if len(store) < batch_size:
      raise ValueError(f"{len(store)} training clips are fewer than one batch "
                       f"of {batch_size}: the epoch would have no batch; "
                       "lower the batch size")
    self.store, self.batch_size, self.window = store, batch_size, window
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
    waves, lengths = self.store.windows(idx, self.window, self.starts[idx])
    return {"waveforms": waves, "lengths": lengths,
            "labels": self.store.labels[idx]}


def train_window(store: ClipStore, need: int, max_samples: int) -> int:
  """The batch length: the longest clip, but at least `need` (the crop or
  the span the contrastive views need) and at most max(need, max_samples)."""
  return int(max(need, min(store.max_length, max_samples)))


def eval_length(length: int, multiple: int) -> int:
  """A clip's evaluation length: rounded up to `multiple`, at least CNN12's
  receptive field (the extra samples tile the clip)."""
  rounded = -(-int(length) // multiple) * multiple
  return max(rounded, cnn12.MIN_INPUT_LENGTH)


def eval_groups(store: ClipStore, multiple: int) -> list:
  """[(length, clip indices)] of clips evaluated at each length, sorted."""
  lengths = np.array([eval_length(n, multiple) for n in store.lengths])
  return [(int(n), np.flatnonzero(lengths == n)) for n in np.unique(lengths)]


def eval_inputs(store: ClipStore, indices, length: int) -> np.ndarray:
  """float32 (len(indices), length): each clip from its start, tiled to
  `length` (as augment.tile_to_length; a no-op for clips of that length)."""
  waves, valid = store.windows(indices, length)
  for row in np.flatnonzero(valid < length):
    waves[row] = waves[row, np.arange(length) % valid[row]]
  return waves


# --- Where the data comes from (config.data) ---------------------------------

GENERATED = ("generated_keywords", "generated_events")
FOLDERS = ("speech_commands", "fsd50k", "labelled_folder")
SOURCES = GENERATED + FOLDERS + ("tfds_speech_commands",)
MULTILABEL_SOURCES = ("generated_events", "fsd50k", "labelled_folder")
SPLITS = ("train", "validation", "test")
GENERATOR_SIZES = ("default", "tiny")


def data_config(source: str = "generated_keywords",
                size: str = "default") -> ml_collections.ConfigDict:
  """The `data` block of a CNN12 config.

  source: 'generated_keywords' / 'generated_events' (made with the offline
    generators under `dir` if absent), 'speech_commands' (a Speech Commands
    folder, all 35 words), 'fsd50k' (an FSD50K-layout folder),
    'labelled_folder' (your own clips: `dir` holds them, `csv` labels them
    with columns fname,labels,split as audio_folder.load_labelled_folder
    reads; multi-label, every split present), or 'tfds_speech_commands'
    (TFDS's 12-label version, prepared in `dir`).
  dir: the folder; for generated data '' means <workdir>/data/<source>_<size>
    (set it to share one generated set between runs).
  csv: the label CSV of a 'labelled_folder' (unused otherwise).
  size: the generator's size ('default' or 'tiny'), generated data only.
  seed: the generator's seed, generated data only.
  peak: 'always' (unit peak, the paper's text) or 'louder_than_one' (the
    authors' code), as the readers apply it to every clip.
  max_window_seconds: a training clip longer than this contributes a window
    of this length (placed uniformly per epoch) from which the step crops.
  eval_length_multiple: clips are evaluated whole, tiled up to a multiple of
    this many samples (1: exact lengths, one compile per distinct length).
  """
  c = ml_collections.ConfigDict()
  c.source = source
  c.dir = ""
  c.csv = ""
  c.size = size
  c.seed = 0
  c.peak = "always"
  c.max_window_seconds = 10.0
  c.eval_length_multiple = 4000
  return c


def _fail(field, value, want):
  raise ValueError(f"{field}={value!r}: {want}")


def check_data_config(c, field: str = "data") -> None:
  """Refuses a data block that cannot work (before anything is read)."""
  if c.source not in SOURCES:
    _fail(f"{field}.source", c.source, f"want one of {SOURCES}")
  if c.source in GENERATED:
    if c.size not in GENERATOR_SIZES:
      _fail(f"{field}.size", c.size, f"want one of {GENERATOR_SIZES}")
    if not isinstance(c.seed, int) or isinstance(c.seed, bool) or c.seed < 0:
      _fail(f"{field}.seed", c.seed, "want an integer >= 0")
  elif not c.dir:
    raise ValueError(f"{field}.dir is empty: {c.source!r} reads an existing "
                     f"folder; pass --config.{field}.dir=/path/to/it")
  elif not os.path.isdir(c.dir):
    raise FileNotFoundError(f"{field}.dir={c.dir!r}: no such directory "
                            f"(the {c.source} data)")
  if c.source == "labelled_folder" and not c.csv:
    raise ValueError(f"{field}.csv is empty: a labelled_folder needs its "
                     f"label CSV (fname,labels,split); pass "
                     f"--config.{field}.csv=/path/to/labels.csv")
  if c.source == "labelled_folder" and not os.path.isfile(c.csv):
    raise FileNotFoundError(f"{field}.csv={c.csv!r}: no such file")
  audio_io.check_peak_mode(c.peak)
  if not (isinstance(c.max_window_seconds, (int, float)) and
          c.max_window_seconds > 0):
    _fail(f"{field}.max_window_seconds", c.max_window_seconds, "want > 0")
  if (not isinstance(c.eval_length_multiple, int) or
      isinstance(c.eval_length_multiple, bool) or c.eval_length_multiple < 1):
    _fail(f"{field}.eval_length_multiple", c.eval_length_multiple,
          "want an integer >= 1 (1: exact clip lengths)")


def data_dir(c, workdir: str) -> str:
  """The folder of the data block `c` (generated data: see data_config)."""
  if c.dir:
    return os.path.abspath(c.dir)
  return os.path.join(workdir, "data", f"{c.source}_{c.size}")


def generator_config(c):
  """The generator's config for generated data (its size, our seed)."""
  module = keywords if c.source == "generated_keywords" else events
  g = module.get_config(c.size)
  g.seed = c.seed
  return g


def load_data(c, workdir: str):
  """KeywordData or EventData of the data block `c`; generated data is made
  first when absent (atomically; a complete set is reused)."""
  check_data_config(c)
  root = data_dir(c, workdir)
  if c.source == "generated_keywords":
    keywords.generate_keywords(root, generator_config(c))
  elif c.source == "generated_events":
    events.generate_events(root, generator_config(c))
  if c.source in ("generated_keywords", "speech_commands"):
    return audio_folder.load_speech_commands(root, peak=c.peak)
  if c.source in ("generated_events", "fsd50k"):
    return audio_folder.load_fsd50k(root, peak=c.peak)
  if c.source == "labelled_folder":
    data = audio_folder.load_labelled_folder(root, c.csv, peak=c.peak)
    missing = [s for s in SPLITS if s not in data.splits]
    if missing:
      raise ValueError(f"{c.csv}: no {missing[0]!r} clips; give every row a "
                       f"split (train, validation or test)")
    return data
  from recon_jax.data import tfds_source  # pylint: disable=g-import-not-at-top
  return tfds_source.load_tfds_speech_commands(root, peak=c.peak)


def is_multilabel(data) -> bool:
  return isinstance(data, audio_folder.EventData)
