"""Where CNN12's clips come from: the `data` block of a CNN12 config.

`load_data(config.data, workdir)` returns the training data of any source:
the offline generators' sets (made first when absent), a Speech Commands,
FSD50K or AudioSet folder, a user's labelled folder, TFDS, or a folder packed
by recon_jax.data.pack. Small sets are read into memory
(recon_jax.data.clips.ClipStore); a set whose samples exceed
`in_memory_limit_gb` is packed into sharded ArrayRecord files (once, under
<workdir>/data/packed/) and streamed per host by recon_jax.data.pipeline.
AudioSet is always read through a pack. The clip stores and epoch batches
are in recon_jax.data.clips (re-exported here).
"""
import os

import ml_collections

from recon_jax import checks
from recon_jax import provenance
from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data import clips
from recon_jax.data import events
from recon_jax.data import keywords
from recon_jax.data.clips import ClipStore  # noqa: F401  (re-exported)
from recon_jax.data.clips import EpochBatches  # noqa: F401
from recon_jax.data.clips import clip_store  # noqa: F401
from recon_jax.data.clips import eval_groups  # noqa: F401
from recon_jax.data.clips import eval_inputs  # noqa: F401
from recon_jax.data.clips import eval_length  # noqa: F401
from recon_jax.data.clips import train_window  # noqa: F401
from recon_jax.train import loop


# --- Where the data comes from (config.data) ---------------------------------

GENERATED = ("generated_keywords", "generated_events", "generated_audioset")
FOLDERS = ("speech_commands", "fsd50k", "labelled_folder", "audioset",
           "packed")
SOURCES = GENERATED + FOLDERS + ("tfds_speech_commands",)
MULTILABEL_SOURCES = ("generated_events", "fsd50k", "labelled_folder",
                      "audioset", "generated_audioset")
PACKED_DIR = "packed"  # <workdir>/data/packed/<source>-<fingerprint>
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
    (TFDS's 12-label version, prepared in `dir`), 'audioset' (the real
    AudioSet layout, recon_jax.data.audioset; always packed first),
    'generated_audioset' (the offline AudioSet-layout generator), or
    'packed' (a folder written by `recon-jax --config=configs/pack.py`).
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
  eval_min_seconds: a clip shorter than this is padded to it for
    evaluation (0: none, the default; the authors' evaluation: 5.0).
  eval_pad: how a clip is lengthened for evaluation: 'tile' (repeated from
    its start, the default) or 'edge' (the authors' PadToSize: centred,
    the first and last samples repeated outwards).
  in_memory_limit_gb: a set whose samples (float32) exceed this is packed
    and streamed from disk instead of read into memory (per host).
  read_threads / prefetch_batches / worker_processes: the streaming input's
    Grain read threads, batches read ahead, and worker processes (0: none;
    each reads whole batches, for hosts whose decoding outpaces threads).
  skip_bad: when a set is packed, leave out bad clips (listed in the pack's
    report.json) instead of stopping at the first.
  audioset_naming: how AudioSet clip files are named (recon_jax.data.
    audioset.DEFAULT_NAMING's fields).
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
  c.eval_min_seconds = 0.0
  c.eval_pad = "tile"
  c.in_memory_limit_gb = 8.0
  c.read_threads = 4
  c.prefetch_batches = 4
  c.worker_processes = 0
  c.skip_bad = False
  c.audioset_naming = ""
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
  checks.real(c.eval_min_seconds, f"{field}.eval_min_seconds (0: none)",
              lo=0)
  if c.eval_pad not in clips.EVAL_PADS:
    _fail(f"{field}.eval_pad", c.eval_pad,
          f"want one of {clips.EVAL_PADS} ('tile': from the start; 'edge': "
          "centred, edges repeated, as the authors' evaluation)")
  checks.real(c.in_memory_limit_gb, f"{field}.in_memory_limit_gb (GiB; 0: "
              "always stream)", lo=0)
  checks.integer(c.read_threads, f"{field}.read_threads", lo=1)
  checks.integer(c.prefetch_batches, f"{field}.prefetch_batches", lo=1)
  checks.integer(c.worker_processes, f"{field}.worker_processes", lo=0)
  checks.boolean(c.skip_bad, f"{field}.skip_bad")
  if not isinstance(c.audioset_naming, str):
    checks.fail(f"{field}.audioset_naming", c.audioset_naming,
                "want a format string ('' for the default)")


def data_dir(c, workdir: str) -> str:
  """The folder of the data block `c` (generated data: see data_config)."""
  if c.dir:
    return os.path.abspath(c.dir)
  return os.path.join(workdir, "data", f"{c.source}_{c.size}")


def generator_config(c):
  """The generator's config for generated data (its size, our seed)."""
  if c.source == "generated_audioset":
    from recon_jax.data import audioset  # pylint: disable=g-import-not-at-top
    g = audioset.get_config(c.size)
  else:
    module = keywords if c.source == "generated_keywords" else events
    g = module.get_config(c.size)
  g.seed = c.seed
  return g


def listing(c, root: str):
  """The Listing (no audio read) of a folder source at `root`."""
  if c.source in ("generated_keywords", "speech_commands"):
    return audio_folder.speech_commands_listing(root)
  if c.source in ("generated_events", "fsd50k"):
    return audio_folder.fsd50k_listing(root)
  if c.source == "labelled_folder":
    return audio_folder.labelled_folder_listing(root, c.csv)
  from recon_jax.data import audioset  # pylint: disable=g-import-not-at-top
  kwargs = {"naming": c.audioset_naming} if c.audioset_naming else {}
  return audioset.list_audioset(root, **kwargs)


def estimated_bytes(source) -> int:
  """A Listing's samples as float32 at 8 kHz, estimated from file sizes
  (16-bit files at the first clip's rate; no audio decoded)."""
  import soundfile  # pylint: disable=g-import-not-at-top
  entries = [e for v in source.splits.values() for e in v]
  if not entries:
    return 0
  info, first_error = None, None
  for entry in entries[:16]:  # The first readable header; bad clips are
    try:                      # named by the reader that decodes them.
      info = soundfile.info(entry.path)
      break
    except (RuntimeError, soundfile.SoundFileError, TypeError, ValueError,
            OSError) as e:
      first_error = first_error or audio_io.AudioError(
          f"{entry.path}: unreadable or corrupt audio ({e})")
  if info is None:
    raise first_error
  per_byte = 2.0 * audio_io.SAMPLE_RATE / info.samplerate / max(
      1, info.channels)
  return int(sum(os.path.getsize(e.path) for e in entries) * per_byte)


def packed_dir(c, workdir: str, fingerprint: str, kind: str) -> str:
  return os.path.join(workdir, "data", PACKED_DIR, f"{kind}-{fingerprint}")


def pack_source(c, workdir: str, source) -> str:
  """Packs a Listing into <workdir>/data/packed/ (resumable; reused when
  done) and returns the folder. One process only: a multi-process run
  refuses to pack (pack first with configs/pack.py)."""
  from recon_jax.data import pack  # pylint: disable=g-import-not-at-top
  import multiprocessing  # pylint: disable=g-import-not-at-top
  out = packed_dir(c, workdir, source.fingerprint(), source.kind)
  done = os.path.exists(os.path.join(out, pack.MANIFEST))
  if not done and provenance.process_count() > 1:
    raise ValueError(
        f"data.source={c.source!r} ({c.dir or 'generated'}) is larger than "
        f"data.in_memory_limit_gb={c.in_memory_limit_gb} and not packed yet; "
        "on several processes pack it first on one host: recon-jax "
        f"--config=configs/pack.py --workdir={out} --config.source.source="
        f"{c.source} --config.source.dir={c.dir or '<the folder>'}, then "
        f"train with --config.data.source=packed --config.data.dir={out}")
  pack.pack(source, out, peak=c.peak, skip_bad=c.skip_bad,
            num_workers=max(1, multiprocessing.cpu_count()))
  return out


def generate(c, root: str) -> None:
  """Makes the generated set of block `c` at `root` when it is absent (a
  complete one is reused); nothing for other sources."""
  if c.source == "generated_keywords":
    keywords.generate_keywords(root, generator_config(c))
  elif c.source == "generated_events":
    events.generate_events(root, generator_config(c))
  elif c.source == "generated_audioset":
    from recon_jax.data import audioset  # pylint: disable=g-import-not-at-top
    audioset.generate_audioset(root, generator_config(c))


def load_data(c, workdir: str):
  """The data of block `c`: KeywordData / EventData read into memory, or,
  for sets over `in_memory_limit_gb`, AudioSet and packed folders, a
  recon_jax.data.pipeline PackedData (streamed) or InMemoryData (read from
  the pack). Generated data is made first when absent (atomically; a
  complete set is reused)."""
  check_data_config(c)
  from recon_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  root = data_dir(c, workdir)
  if c.source == "packed":
    return pipeline.load(root, c.in_memory_limit_gb)
  if provenance.process_index() == 0:  # One writer; the others wait.
    generate(c, root)
  provenance.sync_processes(f"generated data {root}")
  if c.source != "tfds_speech_commands":
    source = listing(c, root)  # Stats every file once; no audio read.
    if c.source in ("audioset", "generated_audioset") or (
        estimated_bytes(source) > c.in_memory_limit_gb * 2**30):
      return pipeline.load(pack_source(c, workdir, source),
                           c.in_memory_limit_gb)
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


def train_batches(store, batch_size: int, seed: int, window: int, mesh,
                  c):
  """epoch -> this process's rows of each global batch of `store`, what
  `fit` takes: streamed through Grain for a packed store (data block `c`'s
  read settings), built from memory otherwise; the same batches either way
  (recon_jax.data.clips.EpochBatches)."""
  from recon_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  rows = loop.process_rows(mesh, batch_size)
  if pipeline.is_streaming(store):
    return pipeline.streaming_epochs(
        store, batch_size, seed, window, rows, read_threads=c.read_threads,
        prefetch_batches=c.prefetch_batches,
        worker_processes=c.worker_processes)
  return lambda epoch: EpochBatches(store, batch_size, seed, epoch, window,
                                    rows)


def is_multilabel(data) -> bool:
  if hasattr(data, "multilabel"):  # A packed set (recon_jax.data.pipeline).
    return bool(data.multilabel)
  return isinstance(data, audio_folder.EventData)
