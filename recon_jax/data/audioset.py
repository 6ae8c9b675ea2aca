"""AudioSet as Google publishes it: a reader (a `Listing`) and an offline
generator of the same layout.

The layout (the real one, or `generate_audioset`'s):

  ROOT/balanced_train_segments.csv     Google's segment CSVs (below)
  ROOT/unbalanced_train_segments.csv
  ROOT/eval_segments.csv
  ROOT/class_labels_indices.csv        index,mid,display_name
  ROOT/audio/balanced_train/Y<YTID>.wav   the clips, as downloaded
  ROOT/audio/unbalanced_train/Y<YTID>.wav (folders: `balanced_dir`,
  ROOT/audio/eval/Y<YTID>.wav             `unbalanced_dir`, `eval_dir`)

A segment CSV starts with three comment lines, the third naming the
columns, then one row per 10 s segment, with a space after each comma and
the label mids quoted:

  # Segments csv created Sun Mar  5 10:54:25 2017
  # num_ytids=20371, num_segs=20371, num_unique_labels=527, num_positive_labels=51804
  # YTID, start_seconds, end_seconds, positive_labels
  --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

class_labels_indices.csv has a header and quotes the display names, which
may hold commas (`1,/m/05zppz,"Male speech, man speaking"`).

Clip file names (`naming`): AudioSet ships no audio, so a clip's file name
is whatever the downloader wrote. `naming` is a format string over {ytid},
{start} and {end} (start/end are the CSV's floats, so "{start:.3f}" gives
"30.000"), relative to the split's audio folder. The default, DEFAULT_NAMING
= "Y{ytid}.wav", is what PANNs' download script writes
(qiuqiangkong/audioset_tagging_cnn, utils/dataset.py: 'Y' + YTID + '.wav',
the 'Y' because some YTIDs start with '-'), which much AudioSet tagging code
builds on; AudioSet's three sets hold distinct videos, so the YTID alone
names a clip. Other namings in use:

  "Y{ytid}_{start:.3f}_{end:.3f}.wav"  DCASE 2017-2019 task 4 / DESED
                                       (Y--PJHxphWEs_30.000_40.000.wav)
  "{ytid}_{start:.3f}_{end:.3f}.wav"   several yt-dlp download scripts
  "{ytid}_{start:.3f}.wav"             ditto (start only)
  "{ytid}_{start}-{end}.ogg"           the audioset-download package (which
                                       nests clips in per-label folders: point
                                       the folders at a flat copy)

Splits: balanced_train + unbalanced_train -> "train" (`train_parts` picks
which; the paper's SimCLR pretraining uses both, ~1.9M clips), eval ->
"test", and "validation" = the balanced train clips whose YTID hashes below
`validation_fraction` (default 5%): a clip is held out iff the first 16
hex digits of sha256(YTID in UTF-8), read as an integer and divided by
16**16, fall below validation_fraction (`validation_hash`), so the split
is deterministic, independent of the CSV's order and of which other clips
exist, and stable when more clips are downloaded. Held-out clips are never
in "train" (also when "validation" is not asked for); set
validation_fraction=0 (and leave "validation" out of `splits`) to train on
all of balanced_train.

Missing clips (a CSV row with no file: every AudioSet download lacks some,
as videos are taken down) are counted, returned in Listing.missing by split
and logged, never an error, unless a split ends up with no clip at all.
A malformed row, an unknown mid, a clip named twice: one error naming the
file and line.

The generator writes this layout from the event classes of
recon_jax.data.events (their sources and mixing, `events.make_clip`), with
AudioSet-like mids "/m/recon_<name>" and display names (some with commas),
10 s clips, 16-bit WAV at 8 kHz (`sample_rate`), some clips listed but not
written (`missing_fraction`). Sizes (`get_config`; times with 2 workers
on 2 cores, measured while other jobs shared them; float32 = the written
clips decoded at 8 kHz, 320 kB each):

  tiny     24 balanced + 24 unbalanced + 16 eval clips: about 0.5 s
           in-process (the tests' set); 10 MB on disk, 19 MB as float32.
  default  400 + 800 + 300 clips: 10-20 s; 230 MB on disk, 470 MB as
           float32.
  stream   300 + 2000 + 200 clips: 10-25 s; 384 MB on disk, 784 MB as
           float32, its train split alone (2239 clips) 716 MB: more than a
           small memory budget, for streaming tests and benchmarks.
"""
import csv
import hashlib
import math
import numbers
import os
import re
import string
import time

from absl import logging
import ml_collections
import numpy as np

from recon_jax import checks
from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import events
from recon_jax.data import listing
from recon_jax.data import workers

KIND = "audioset"
BALANCED_CSV = "balanced_train_segments.csv"
UNBALANCED_CSV = "unbalanced_train_segments.csv"
EVAL_CSV = "eval_segments.csv"
CLASS_CSV = "class_labels_indices.csv"
# The three parts of AudioSet, their CSVs and default audio folders.
PARTS = ("balanced_train", "unbalanced_train", "eval")
PART_CSV = {"balanced_train": BALANCED_CSV,
            "unbalanced_train": UNBALANCED_CSV, "eval": EVAL_CSV}
DEFAULT_DIRS = {"balanced_train": "audio/balanced_train",
                "unbalanced_train": "audio/unbalanced_train",
                "eval": "audio/eval"}
TRAIN_PARTS = ("balanced_train", "unbalanced_train")
DEFAULT_NAMING = "Y{ytid}.wav"
DEFAULT_VALIDATION_FRACTION = 0.05
HEADER = "# YTID, start_seconds, end_seconds, positive_labels"
CLASS_HEADER = ("index", "mid", "display_name")
_NAMING_FIELDS = ("ytid", "start", "end")

# The generator's classes: events' labels, with AudioSet-style display names
# (a few with commas, as AudioSet's "Male speech, man speaking") and mids.
DISPLAY_NAMES = {
    "Pure_tone": "Pure tone", "Up_chirp": "Chirp, rising",
    "Down_chirp": "Chirp, falling", "White_noise_burst": "White noise",
    "Pink_noise_burst": "Pink noise", "Click_train": "Click train",
    "AM_tone": "Tone, amplitude modulated",
    "FM_tone": "Tone, frequency modulated",
    "Harmonic_stack": "Harmonic stack", "Spoken_word": "Speech, a word",
    "Knock": "Knock", "Siren": "Siren", "Dial_tone": "Dial tone",
    "Bell": "Bell",
}
MIDS = {label: "/m/recon_" + label.lower() for label in events.LABELS}


# --- Reading -----------------------------------------------------------------


def check_naming(naming) -> str:
  """`naming` checked: a relative format string using only {ytid} (needed),
  {start} and {end}; ValueError saying what is wrong."""
  if not isinstance(naming, str) or not naming:
    raise ValueError(f"naming={naming!r}: want a format string such as "
                     f"{DEFAULT_NAMING!r}")
  try:
    fields = [f for _, f, _, _ in string.Formatter().parse(naming)
              if f is not None]
  except ValueError as e:
    raise ValueError(f"naming={naming!r}: not a format string ({e})") from None
  bases = [f.split(".")[0].split("[")[0] for f in fields]
  bad = [f for f, b in zip(fields, bases) if b not in _NAMING_FIELDS]
  if bad or "ytid" not in bases:
    raise ValueError(f"naming={naming!r}: may use only the fields "
                     f"{{ytid}}, {{start}}, {{end}} and must use {{ytid}}"
                     + (f" (got {bad})" if bad else ""))
  try:
    example = clip_filename(naming, "--PJHxphWEs", 30.0, 40.0)
  except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
    raise ValueError(f"naming={naming!r}: cannot format a clip's name "
                     f"({type(e).__name__}: {e})") from None
  parts = example.replace("\\", "/").split("/")
  if os.path.isabs(example) or ".." in parts or not parts[-1]:
    raise ValueError(f"naming={naming!r}: must name a file inside the audio "
                     f"folder (gives {example!r})")
  return naming


def clip_filename(naming, ytid, start, end) -> str:
  """The file name `naming` gives a clip (relative to its audio folder)."""
  return naming.format(ytid=ytid, start=float(start), end=float(end))


def clip_name(ytid, start) -> str:
  """A clip's name in a Listing: YTID and start, '--PJHxphWEs_30.000'."""
  return f"{ytid}_{float(start):.3f}"


def validation_hash(ytid) -> float:
  """Where a YTID falls in [0, 1): held out iff below validation_fraction."""
  digest = hashlib.sha256(str(ytid).encode("utf-8")).hexdigest()
  return int(digest[:16], 16) / float(16**16)


def read_class_labels(path):
  """class_labels_indices.csv -> (mids, display_names), in index order.

  Raises:
    FileNotFoundError; ValueError naming the file and line for a bad header,
    a malformed row, indices not running 0, 1, ..., or a repeated mid.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: AudioSet class list not found (want "
                            f"{CLASS_CSV}: index,mid,display_name)")
  mids, names, seen = [], [], {}
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    for row in reader:
      n = reader.line_num
      row = [v.strip() for v in row]
      if not any(row):
        continue
      if n == 1 and not row[0].isdigit():
        if tuple(row) != CLASS_HEADER:
          raise ValueError(f"{path}, line {n}: header {row}; want "
                           f"{list(CLASS_HEADER)}")
        continue
      if len(row) != 3 or not row[0].isdigit() or not row[1] or not row[2]:
        raise ValueError(f"{path}, line {n}: want 'index,mid,display_name', "
                         f"got {row}")
      if int(row[0]) != len(mids):
        raise ValueError(f"{path}, line {n}: index {row[0]}, expected "
                         f"{len(mids)} (indices must run 0, 1, ...)")
      if row[1] in seen:
        raise ValueError(f"{path}, line {n}: mid {row[1]!r} repeated (first "
                         f"at index {seen[row[1]]})")
      seen[row[1]] = len(mids)
      mids.append(row[1])
      names.append(row[2])
  if not mids:
    raise ValueError(f"{path}: no classes")
  return tuple(mids), tuple(names)


def read_segments(path, mid_index):
  """A segment CSV -> [(line, ytid, start, end, label_indices)] (a list of
  `iter_segments`)."""
  return list(iter_segments(path, mid_index))


def iter_segments(path, mid_index):
  """The rows of a segment CSV, (line, ytid, start, end, label_indices),
  one at a time (AudioSet's unbalanced CSV has 2M).

  Comment lines (starting with '#') and blank lines are skipped; a row is
  `YTID, start_seconds, end_seconds, "mid,mid,..."` (spaces after the
  commas optional, the labels quoted when more than one).

  Raises:
    FileNotFoundError; ValueError naming the file and line for a malformed
    row (not 4 fields, an empty YTID, times that are not numbers with
    0 <= start < end, no label) or a mid not in `mid_index`.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: AudioSet segment CSV not found")
  labels_cache = {}
  with open(path, newline="", encoding="utf-8-sig") as f:
    for n, line in enumerate(f, 1):
      text = line.strip()
      if not text or text.startswith("#"):
        continue
      m = _ROW.match(text)  # Google's rows; anything else parsed as CSV.
      if m:
        ytid, start_text, end_text, quoted, bare = m.groups()
        label_text = bare if quoted is None else quoted
      else:
        ytid, start_text, end_text, label_text = _parse_row(path, n, text)
      try:
        start, end = float(start_text), float(end_text)
      except ValueError:
        raise ValueError(f"{path}, line {n}: malformed row, start/end "
                         f"{start_text!r}, {end_text!r} are not numbers "
                         "(seconds)") from None
      if not (0 <= start < end and math.isfinite(end)):
        raise ValueError(f"{path}, line {n}: malformed row, want 0 <= start "
                         f"< end (seconds), got {start_text}, {end_text}")
      labels = labels_cache.get(label_text)
      if labels is None:
        labels = _labels(path, n, label_text, mid_index)
        labels_cache[label_text] = labels
      yield n, ytid, start, end, labels


# YTID, start, end, then "mids" quoted or one bare mid (spaces optional).
_ROW = re.compile(r'([^,"\s/\\]+),\s*([^,"\s]+),\s*([^,"\s]+),\s*'
                  r'(?:"([^"]*)"|([^,"\s]+))\Z')


def _parse_row(path, n, text):
  """A row _ROW does not match, parsed as CSV: its 4 fields, or one
  ValueError naming the file and line."""
  where = f"{path}, line {n}"
  try:
    fields = next(csv.reader([text], skipinitialspace=True))
  except csv.Error as e:
    raise ValueError(f"{where}: malformed row ({e}): {text!r}") from None
  fields = [v.strip() for v in fields]
  if len(fields) != 4:
    raise ValueError(f"{where}: malformed row, {len(fields)} field(s); want "
                     "'YTID, start_seconds, end_seconds, "
                     f"\"positive_labels\"', got {text!r}")
  if not fields[0] or any(c.isspace() or c in "/\\\"" for c in fields[0]):
    raise ValueError(f"{where}: malformed row, bad YTID {fields[0]!r}")
  return fields


def _labels(path, n, label_text, mid_index):
  mids = [m.strip() for m in label_text.split(",") if m.strip()]
  if not mids:
    raise ValueError(f"{path}, line {n}: malformed row, no positive label")
  unknown = [m for m in mids if m not in mid_index]
  if unknown:
    raise ValueError(f"{path}, line {n}: unknown label mid(s) {unknown} (not "
                     f"in {CLASS_CSV}'s {len(mid_index)} classes)")
  return tuple(sorted({mid_index[m] for m in mids}))


class _Files:
  """Which files exist, by listing each folder once (a stat per clip is
  slow for AudioSet's 2M clips on network file systems)."""

  def __init__(self):
    self._dirs = {}

  def _names(self, folder):
    names = self._dirs.get(folder)
    if names is None:
      try:
        with os.scandir(folder) as it:
          names = frozenset(e.name for e in it if e.is_file())
      except (FileNotFoundError, NotADirectoryError):
        names = frozenset()
      self._dirs[folder] = names
    return names

  def exists(self, folder, filename):
    if os.sep in filename or (os.altsep and os.altsep in filename):
      folder, filename = os.path.split(os.path.join(folder, filename))
    return filename in self._names(folder)

  def sample(self, folder, k=3):
    return sorted(self._names(folder))[:k]


def _check_splits(splits):
  if isinstance(splits, str) or not isinstance(splits, (list, tuple)):
    raise ValueError(f"splits={splits!r}: want a sequence of names among "
                     f"{listing.SPLITS}")
  bad = [s for s in splits if s not in listing.SPLITS]
  if bad or not splits or len(set(splits)) != len(splits):
    raise ValueError(f"splits={list(splits)}: want distinct names among "
                     f"{listing.SPLITS}")
  return tuple(s for s in listing.SPLITS if s in splits)


def _check_train_parts(train_parts):
  if isinstance(train_parts, str) or not isinstance(train_parts,
                                                    (list, tuple)):
    raise ValueError(f"train_parts={train_parts!r}: want a sequence among "
                     f"{TRAIN_PARTS}")
  bad = [p for p in train_parts if p not in TRAIN_PARTS]
  if bad or not train_parts or len(set(train_parts)) != len(train_parts):
    raise ValueError(f"train_parts={list(train_parts)}: want distinct names "
                     f"among {TRAIN_PARTS} (the paper's SimCLR uses both)")
  return tuple(p for p in TRAIN_PARTS if p in train_parts)


def _check_fraction(validation_fraction, splits):
  v = validation_fraction
  if (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or
      not 0.0 <= v < 1.0):
    raise ValueError(f"validation_fraction={v!r}: want a number in [0, 1) "
                     "(the share of balanced_train held out)")
  if v == 0 and "validation" in splits:
    raise ValueError("validation_fraction=0 leaves no validation split; "
                     "leave 'validation' out of splits or hold out a "
                     f"fraction (default {DEFAULT_VALIDATION_FRACTION})")
  return float(v)


def list_audioset(root, *, naming=DEFAULT_NAMING, splits=listing.SPLITS,
                  train_parts=TRAIN_PARTS,
                  validation_fraction=DEFAULT_VALIDATION_FRACTION,
                  balanced_dir=DEFAULT_DIRS["balanced_train"],
                  unbalanced_dir=DEFAULT_DIRS["unbalanced_train"],
                  eval_dir=DEFAULT_DIRS["eval"]) -> listing.Listing:
  """The clips of an AudioSet folder (layout in the module doc), no audio
  read.

  Args:
    root: the folder holding the CSVs (the real set, or generate_audioset's).
    naming: the clips' file names, a format string over {ytid}, {start},
      {end} (module doc; default PANNs' "Y{ytid}.wav").
    splits: which of "train", "validation", "test" to list.
    train_parts: which of "balanced_train", "unbalanced_train" make "train"
      (default both, the paper's SimCLR set).
    validation_fraction: the share of balanced_train held out as
      "validation", chosen by hashing the YTID (module doc).
    balanced_dir, unbalanced_dir, eval_dir: each part's audio folder,
      relative to root (or absolute).

  Returns:
    A Listing (kind "audioset", multilabel, class_names the display names in
    class_labels_indices.csv's order, labels their indices); `missing`
    names, by split, the clips listed without a file; `settings` records
    the naming, folders, parts, fraction and the mids.

  Raises:
    ValueError for a bad argument (before reading); FileNotFoundError for a
    missing root or CSV; ValueError naming the file and line for a
    malformed row, an unknown mid or a clip in two rows; ValueError naming
    the split, folder and naming when a split has no clip on disk.
  """
  naming = check_naming(naming)
  splits = _check_splits(splits)
  train_parts = _check_train_parts(train_parts)
  fraction = _check_fraction(validation_fraction, splits)
  dirs = {"balanced_train": balanced_dir, "unbalanced_train": unbalanced_dir,
          "eval": eval_dir}
  for part, d in dirs.items():
    if not isinstance(d, str) or not d:
      raise ValueError(f"{part} audio folder {d!r}: want a path (relative "
                       "to root, or absolute)")
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: AudioSet directory not found")
  audio_io.check_not_partial(root)
  root = os.path.abspath(root)
  mids, class_names = read_class_labels(os.path.join(root, CLASS_CSV))
  mid_index = {m: i for i, m in enumerate(mids)}

  # (part, which rows) -> split. Validation comes from balanced_train only.
  wanted = []  # (part, split_of(ytid) -> split or None)
  if "train" in splits or "validation" in splits:
    def _balanced(ytid):
      if fraction and validation_hash(ytid) < fraction:
        return "validation" if "validation" in splits else None
      return ("train" if "train" in splits and
              "balanced_train" in train_parts else None)
    if "validation" in splits or "balanced_train" in train_parts:
      wanted.append(("balanced_train", _balanced))
    if "train" in splits and "unbalanced_train" in train_parts:
      wanted.append(("unbalanced_train", lambda ytid: "train"))
  if "test" in splits:
    wanted.append(("eval", lambda ytid: "test"))

  files = _Files()
  entries = {s: [] for s in splits}
  missing = {s: [] for s in splits}
  listed = {s: 0 for s in splits}
  sources = {s: [] for s in splits}  # (csv, folder) for messages.
  seen = {}  # path -> (csv, line), to refuse a clip named twice.
  first_missing = {}  # split -> the first missing clip's path.
  for part, _ in wanted:  # Every CSV there before any is read.
    csv_path = os.path.join(root, PART_CSV[part])
    if not os.path.isfile(csv_path):
      raise FileNotFoundError(f"{csv_path}: AudioSet segment CSV not found")
  for part, split_of in wanted:
    csv_path = os.path.join(root, PART_CSV[part])
    folder = os.path.normpath(os.path.join(root, dirs[part]))
    used = set()
    for n, ytid, start, end, labels in iter_segments(csv_path, mid_index):
      split = split_of(ytid)
      if split is None:
        continue
      used.add(split)
      filename = clip_filename(naming, ytid, start, end)
      path = folder + os.sep + filename
      if path in seen:
        raise ValueError(f"{csv_path}, line {n}: clip {path} is also named "
                         f"at {seen[path][0]}, line {seen[path][1]}; a clip "
                         f"must be listed once (with naming={naming!r})")
      seen[path] = (csv_path, n)
      listed[split] += 1
      name = clip_name(ytid, start)
      if files.exists(folder, filename):
        entries[split].append(listing.ClipEntry(path, name, labels))
      else:
        missing[split].append(name)
        first_missing.setdefault(split, path)
    for split in used:
      sources[split].append((csv_path, folder))
  for split in splits:
    if not listed[split]:
      why = {"validation": f"no balanced_train YTID hashes below "
                           f"validation_fraction={fraction}",
             "train": f"no rows in the train parts {list(train_parts)}",
             "test": f"no rows in {EVAL_CSV}"}[split]
      raise ValueError(f"{root}: the {split} split is empty ({why})")
    if not entries[split]:
      csv_path, folder = sources[split][0]
      present = files.sample(folder)
      raise ValueError(
          f"{root}: none of the {listed[split]} {split} clips listed in "
          f"{', '.join(os.path.basename(c) for c, _ in sources[split])} is "
          f"on disk (looked for e.g. {first_missing[split]}, named by "
          f"naming={naming!r}; {folder} "
          + (f"holds e.g. {present}" if present else "is empty or absent")
          + "); set the audio folders or the naming to match the download")
    if missing[split]:
      logging.warning("AudioSet %s: %d of %d listed clips have no file "
                      "(e.g. %s)", split, len(missing[split]), listed[split],
                      missing[split][0])
  settings = dict(
      naming=naming, balanced_dir=balanced_dir, unbalanced_dir=unbalanced_dir,
      eval_dir=eval_dir, train_parts=list(train_parts),
      validation_fraction=fraction, splits=list(splits), mids=list(mids))
  return listing.Listing(
      kind=KIND, class_names=class_names, multilabel=True,
      splits={s: tuple(entries[s]) for s in splits},
      missing={s: tuple(missing[s]) for s in splits}, settings=settings)


# --- Generating --------------------------------------------------------------

_EVENT_FIELDS = ("events_per_clip", "event_seconds", "occurrences",
                 "event_level_db", "noise_floor_db", "clip_peak")
_NOT_IN_SETTINGS = ("num_workers",)
_MAX_CLIPS = 999999
_YTID_CHARS = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
               "0123456789-_")


def get_config(size="default") -> ml_collections.ConfigDict:
  """Generator settings; `size` "default", "tiny" (tests) or "stream" (a set
  larger than a small memory budget). Sizes and times: module doc."""
  base = events.get_config()
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.classes = events.LABELS  # Any subset of events.LABELS (index order).
  c.balanced_clips = 400
  c.unbalanced_clips = 800
  c.eval_clips = 300
  c.clip_seconds = 10.0  # AudioSet's segments are 10 s.
  c.sample_rate = audio_io.SAMPLE_RATE  # Written at; made at 8 kHz.
  c.naming = DEFAULT_NAMING  # Read it with list_audioset(naming=...).
  c.missing_fraction = 0.02  # Per part, rounded up: listed, not written.
  for name in _EVENT_FIELDS:  # How a clip is mixed (events.make_clip).
    c[name] = base[name]
  c.num_workers = 2
  if size == "tiny":
    c.balanced_clips = 24
    c.unbalanced_clips = 24
    c.eval_clips = 16
    c.num_workers = 1
  elif size == "stream":
    c.balanced_clips = 300
    c.unbalanced_clips = 2000
    c.eval_clips = 200
  elif size != "default":
    raise ValueError(f"unknown AudioSet-layout data set size {size!r}; want "
                     "'default', 'tiny' or 'stream'")
  return c


def _int(c, name, lo, hi):
  checks.integer(c[name], f"audioset.{name}", lo, hi)


def _real(c, name, lo, hi):
  checks.real(c[name], f"audioset.{name}", lo, hi)


def check_config(config=None) -> ml_collections.ConfigDict:
  """`get_config()` updated with `config` (ConfigDict or dict), checked.

  Raises:
    ValueError naming an unknown field or a value outside its range.
  """
  c = ml_collections.ConfigDict(get_config().to_dict(), type_safe=False)
  if config is not None:
    overrides = dict(config)
    unknown = sorted(set(overrides) - set(c.keys()))
    if unknown:
      raise ValueError(f"audioset: unknown field(s) {unknown}; known: "
                       f"{sorted(c.keys())}")
    c.update(overrides)
  _int(c, "seed", 0, 2**63 - 1)
  _int(c, "balanced_clips", 4, _MAX_CLIPS)
  _int(c, "unbalanced_clips", 0, _MAX_CLIPS)
  _int(c, "eval_clips", 2, _MAX_CLIPS)
  _int(c, "sample_rate", audio_io.SAMPLE_RATE, 192000)
  _int(c, "num_workers", 1, 1024)
  _real(c, "missing_fraction", 0.0, 0.5)
  try:
    check_naming(c.naming)
  except ValueError as e:
    raise ValueError(f"audioset.{e}") from None
  # The clip fields are events' (make_clip mixes the clips): checked there.
  try:
    events.check_config({"classes": c.classes, "clip_seconds":
                         c.clip_seconds, **{k: c[k] for k in _EVENT_FIELDS}})
  except ValueError as e:
    raise ValueError(str(e).replace("events.", "audioset.", 1)) from None
  c.classes = tuple(c.classes)
  return c


def generator_settings(config=None) -> dict:
  """What the data set's bytes depend on (the checked config less
  num_workers), as JSON."""
  settings = provenance.to_jsonable(check_config(config))
  for name in _NOT_IN_SETTINGS:
    settings.pop(name)
  return settings


def _ytid(rng, lead_dash):
  chars = rng.integers(len(_YTID_CHARS), size=11)
  ytid = "".join(_YTID_CHARS[i] for i in chars)
  return "-" + ytid[1:] if lead_dash else ytid


def _part_plan(config, seed, p, part, n, used):
  """The clips of one part: [(part, ytid, start, end, i, first_class,
  written)] in generation order (i)."""
  rng = np.random.default_rng([seed, 7, p])
  classes = len(config.classes)
  # Balanced and eval lead with every class in turn (AudioSet's balanced
  # sets have >= 59 clips per class); unbalanced ones by a Zipf-like law.
  perm = rng.permutation(classes)
  zipf = 1.0 / np.arange(1, classes + 1)
  zipf /= zipf.sum()
  # Balanced: exactly n_val YTIDs hash into the default validation fraction
  # (at least 4), so the default split is never empty however small the set.
  n_val = (min(n // 2, max(4, int(round(DEFAULT_VALIDATION_FRACTION * n))))
           if part == "balanced_train" else 0)
  out = []
  for i in range(n):
    while True:
      ytid = _ytid(rng, lead_dash=i % 8 == 3)  # Some start with '-'.
      if ytid in used:
        continue
      if part == "balanced_train" and (
          validation_hash(ytid) < DEFAULT_VALIDATION_FRACTION) != (i < n_val):
        continue
      break
    used.add(ytid)
    start = float(rng.integers(0, 60) * 10 if rng.integers(4) else
                  rng.integers(0, 600))
    end = start + float(config.clip_seconds)
    first = (int(perm[i % classes]) if part != "unbalanced_train" else
             int(rng.choice(perm, p=zipf)))
    out.append([part, ytid, start, end, i, first, True])
  # Missing clips: ceil(missing_fraction * n) per part, at least one clip of
  # each group written; in balanced, floor(fraction * n_val) of them among
  # the validation clips (none in a small set), the rest among its others.
  k = math.ceil(config.missing_fraction * n)
  if part == "balanced_train":
    k_val = int(math.floor(config.missing_fraction * n_val))
    groups = [(range(n_val), k_val), (range(n_val, n), k - k_val)]
  else:
    groups = [(range(n), k)]
  for group, k in groups:
    k = min(k, len(group) - 1)
    if k > 0:
      for j in rng.choice(list(group), k, replace=False):
        out[int(j)][6] = False
  return [tuple(x) for x in out]


def _plan(config, seed):
  used, plan = set(), []
  counts = (config.balanced_clips, config.unbalanced_clips, config.eval_clips)
  for p, (part, n) in enumerate(zip(PARTS, counts)):
    plan += _part_plan(config, seed, p, part, n, used)
  return plan


def _write_clips(out_dir, items, config, seed):
  """Makes a chunk of clips, writes those not missing; returns labels."""
  out = []
  for part, ytid, start, end, i, first, written in items:
    rng = np.random.default_rng([seed, 8, PARTS.index(part), i])
    x, labels = events.make_clip(config, rng, first)
    if written:
      if config.sample_rate != audio_io.SAMPLE_RATE:
        x = np.clip(audio_io.resample(x, audio_io.SAMPLE_RATE,
                                      config.sample_rate), -1.0, 1.0)
      path = os.path.join(out_dir, DEFAULT_DIRS[part],
                          clip_filename(config.naming, ytid, start, end))
      os.makedirs(os.path.dirname(path), exist_ok=True)
      audio_io.write_wav(path, x, config.sample_rate)
    out.append(labels)
  return out


def _job(args):
  return _write_clips(*args)


def _segments_text(rows, seed):
  """Google's segment CSV: three comment lines, then `YTID, start, end,
  "mids"` rows sorted by YTID (as Google's)."""
  rows = sorted(rows)
  label_count = sum(len(r[3]) for r in rows)
  unique = len({m for r in rows for m in r[3]})
  lines = [f"# Segments csv created by recon_jax.data.audioset (seed {seed})",
           f"# num_ytids={len(rows)}, num_segs={len(rows)}, "
           f"num_unique_labels={unique}, num_positive_labels={label_count}",
           HEADER]
  lines += [f'{y}, {s:.3f}, {e:.3f}, "{",".join(m)}"' for y, s, e, m in rows]
  return "\n".join(lines) + "\n"


def _classes_text(classes):
  lines = [",".join(CLASS_HEADER)]
  for i, label in enumerate(classes):
    name = DISPLAY_NAMES[label].replace('"', '""')
    lines.append(f'{i},{MIDS[label]},"{name}"')
  return "\n".join(lines) + "\n"


def make_audioset(out_dir, config=None):
  """Writes the AudioSet-layout data set into `out_dir` (in place;
  `generate_audioset` wraps it to appear only when complete).

  Returns:
    {part: {"clips", "written", "missing", "events", "class_counts":
    {display name: int}}, "classes": int, "sample_rate": int}.
  """
  config = check_config(config)
  seed = int(config.seed)
  names = [CLASS_CSV] + list(PART_CSV.values()) + ["audio"]
  for name in names:
    if os.path.exists(os.path.join(out_dir, name)):
      raise ValueError(f"{os.path.join(out_dir, name)}: already exists; "
                       "refusing to mix two data sets")
  for part in PARTS:
    os.makedirs(os.path.join(out_dir, DEFAULT_DIRS[part]))
  plan = _plan(config, seed)
  chunk = 25
  jobs = [(out_dir, plan[i:i + chunk], config, seed)
          for i in range(0, len(plan), chunk)]
  labels = [l for r in workers.map_jobs(_job, jobs, config.num_workers,
                                        "AudioSet clips (x25)") for l in r]
  classes = list(config.classes)
  rows = {part: [] for part in PARTS}
  summary = {"classes": len(classes), "sample_rate": int(config.sample_rate)}
  for (part, ytid, start, end, _, _, written), ls in zip(plan, labels):
    rows[part].append((ytid, start, end, [MIDS[classes[c]] for c in ls]))
    s = summary.setdefault(part, dict(
        clips=0, written=0, missing=0, events=0,
        class_counts={DISPLAY_NAMES[k]: 0 for k in classes}))
    s["clips"] += 1
    s["written" if written else "missing"] += 1
    s["events"] += len(ls)
    for c in ls:
      s["class_counts"][DISPLAY_NAMES[classes[c]]] += 1
  for part in PARTS:
    provenance.write_text_atomic(os.path.join(out_dir, PART_CSV[part]),
                                 _segments_text(rows[part], seed))
  provenance.write_text_atomic(os.path.join(out_dir, CLASS_CSV),
                               _classes_text(classes))
  return summary


def generate_audioset(root, config=None):
  """`make_audioset` into `<root>.partial`, renamed to `root` when complete
  (audio_io.generate_atomically: a complete set of the same settings is
  reused, one of other settings or a foreign folder refused).

  Returns:
    The summary, or None when `root` already holds this data set.
  """
  settings = generator_settings(config)
  return audio_io.generate_atomically(
      root, settings, lambda partial: make_audioset(partial, config),
      "AudioSet-layout data set")


def generate_from_config(config, workdir) -> dict:
  """The `audioset` experiment's driver (configs/make_audioset.py):
  generates into `workdir`; returns {"workdir", "made", "summary", "lines"}
  ("lines" to print)."""
  workdir = provenance.check_workdir(workdir)
  overrides = {k: v for k, v in dict(config).items() if k != "experiment"}
  check_config(overrides)  # Before any work.
  start = time.time()
  summary = generate_audioset(workdir, overrides)
  if summary is None:
    return {"workdir": workdir, "made": False,
            "lines": [f"{workdir} already holds the complete AudioSet-layout "
                      "data set of this config; nothing to do"]}
  lines = []
  for part in PARTS:
    s = summary[part]
    counts = s["class_counts"]
    rare = min(counts, key=counts.get)
    lines.append(f"{part}: {s['clips']} clips listed, {s['written']} written, "
                 f"{s['missing']} missing on purpose, {s['events']} events "
                 f"({summary['classes']} classes; fewest: {counts[rare]} of "
                 f"{rare})")
  lines.append(f"wrote {workdir} in {time.time() - start:.1f} s (read it "
               "with recon_jax.data.audioset.list_audioset)")
  return {"workdir": workdir, "made": True, "summary": summary,
          "lines": lines}
