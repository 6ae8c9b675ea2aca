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
import os

import ml_collections
import numpy as np

from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data.clips import ClipStore  # noqa: F401  (re-exported)
from recon_jax.data.clips import EpochBatches  # noqa: F401
from recon_jax.data.clips import clip_store  # noqa: F401
from recon_jax.data.clips import eval_groups  # noqa: F401
from recon_jax.data.clips import eval_inputs  # noqa: F401
from recon_jax.data.clips import eval_length  # noqa: F401
from recon_jax.data.clips import train_window  # noqa: F401
from recon_jax.data import events
from recon_jax.data import keywords
from recon_jax.models import cnn12


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
