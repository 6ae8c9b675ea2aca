"""Readers for audio data sets on disk (docs/methods.md, B1b): Speech Commands,
FSD50K, and a user's own folder of clips with a CSV of labels.

Every clip is decoded with soundfile (WAV, FLAC, ...; any sample rate),
mixed down to mono, resampled to `sample_rate` (8 kHz) with
scipy.signal.resample_poly and scaled to unit peak (`peak`: "always", the
paper's text and the default, or "louder_than_one", the authors' code; see
audio_io). Problems are one error naming the file: unreadable or corrupt
audio, NaN samples, a silent (all-zero) clip, a clip shorter than
`min_samples`, an unknown label or a missing file in a CSV, a class with no
examples.

  load_speech_commands(root)  Speech Commands (v2: 35 words; the paper's
      source). <root>/<word>/*.wav; validation_list.txt and testing_list.txt
      name the held-out clips (paths relative to root), every other clip is
      training data; clips are zero-padded to 1 s. _background_noise_/*.wav
      come back separately (whole, for background mixing).
  load_fsd50k(root)  FSD50K: FSD50K.dev_audio/, FSD50K.eval_audio/ and
      FSD50K.ground_truth/{dev,eval,vocabulary}.csv -> splits "train" and
      "validation" (dev.csv's split column) and "test" (eval.csv), with
      (N, C) multi-hot labels in vocabulary.csv's order.
  load_labelled_folder(audio_dir, csv_path)  a user's own clips: a CSV with
      columns fname,labels (labels comma-separated, quoted when more than
      one, as FSD50K's) and optionally split; `fname` is a file in audio_dir,
      with or without its .wav/.flac extension. Classes come from a
      vocabulary.csv (or a list of names), else from the labels seen.

Decoded arrays are cached (best effort) as .npz under `cache_dir` (default
$RECON_JAX_CACHE or ~/.cache/recon_jax), keyed by a hash of the file listing
(paths, sizes, modification times) and every setting; a second call is a
file read. The returned data carries a `fingerprint`: a hash of the
settings and the arrays themselves.
"""
import csv
import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile

from absl import logging
import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import listing
from recon_jax.data.audio_io import AudioError
from recon_jax.data.features import default_cache_dir

_CACHE_VERSION = 1
BACKGROUND_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
KEYWORD_SPLITS = ("train", "validation", "test")
_AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclasses.dataclass(frozen=True)
class KeywordSplit:
  """One split of a keyword (multi-class) data set; N clips of L samples.

  waveforms: float32 (N, L), each clip at unit peak (see `peak`), zero-padded
    to L (1 s).
  labels: int32 (N,), index into KeywordData.class_names.
  files: N paths relative to the data set root (or TFDS ids).
  """
  waveforms: np.ndarray
  labels: np.ndarray
  files: tuple

  def __len__(self):
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class KeywordData:
  """Speech Commands-style data: train/validation/test and background noise.

  background: tuple of float32 (T_i,) whole background clips (unit peak as
    the clips); background_names: their file names.
  """
  train: KeywordSplit
  validation: KeywordSplit
  test: KeywordSplit
  class_names: tuple
  background: tuple
  background_names: tuple
  sample_rate: int
  fingerprint: str

  def split(self, name):
    return {"train": self.train, "validation": self.validation,
            "test": self.test}[name]


@dataclasses.dataclass(frozen=True)
class EventSplit:
  """One split of a multi-label data set; N clips of varying length.

  clips: tuple of N float32 (T_i,), unit peak (see `peak`).
  lengths: int32 (N,), T_i.
  labels: float32 (N, C) multi-hot, columns in EventData.class_names order.
  fnames: N file names as the CSV gives them.
  """
  clips: tuple
  lengths: np.ndarray
  labels: np.ndarray
  fnames: tuple

  def __len__(self):
    return len(self.fnames)


@dataclasses.dataclass(frozen=True)
class EventData:
  """Multi-label clips by split ("train", "validation", "test", or the CSV's
  own split names; "all" when it has none), the classes and their mids."""
  splits: dict
  class_names: tuple
  mids: tuple  # "" where unknown.
  sample_rate: int
  fingerprint: str

  def split(self, name):
    if name not in self.splits:
      raise KeyError(f"no split {name!r}; have {sorted(self.splits)}")
    return self.splits[name]

  @property
  def train(self):
    return self.split("train")

  @property
  def validation(self):
    return self.split("validation")

  @property
  def test(self):
    return self.split("test")


def pad_clips(clips, length=None):
  """Stacks clips into a zero-padded batch.

  Args:
    clips: sequence of float (T_i,).
    length: the batch's length (default the longest clip); longer clips are
      cut to it.

  Returns:
    (float32 (N, length), int32 (N,) lengths min(T_i, length)).
  """
  if length is None:
    length = max((len(c) for c in clips), default=0)
  out = np.zeros((len(clips), length), np.float32)
  lengths = np.zeros((len(clips),), np.int32)
  for i, c in enumerate(clips):
    k = min(len(c), length)
    out[i, :k] = c[:k]
    lengths[i] = k
  return out, lengths


# --- Settings, listing, cache ------------------------------------------------


def _settings(kind, sample_rate, peak, min_samples, **extra):
  settings = dict(kind=kind, sample_rate=audio_io.check_rate(sample_rate),
                  peak=audio_io.check_peak_mode(peak),
                  min_samples=audio_io.check_min_samples(min_samples))
  settings.update(extra)
  return settings


def _listing_key(paths, root, settings):
  h = hashlib.sha256()
  h.update(json.dumps([_CACHE_VERSION, settings], sort_keys=True).encode())
  for path in paths:
    st = os.stat(path)
    h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0"
             f"{st.st_mtime_ns}\n".encode())
  return h.hexdigest()[:20]


def _read_cache(path):
  if not path or not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    logging.warning("Ignoring unreadable audio cache %s (%s)", path, e)
    return None


def _write_cache(path, arrays):
  if not path:
    return
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz")
    try:
      with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  except OSError as e:  # A read-only cache costs speed, not data.
    logging.warning("Could not write audio cache %s (%s)", path, e)


def _cache_path(cache, cache_dir, prefix, key):
  if not cache:
    return None
  return os.path.join(cache_dir or default_cache_dir(), f"{prefix}_{key}.npz")


def _fingerprint(settings, arrays):
  return provenance.fingerprint_json({
      "version": _CACHE_VERSION, "settings": settings,
      "arrays": provenance.fingerprint_arrays(
          {k: np.asarray(arrays[k]) for k in sorted(arrays)})})


def _concat(clips):
  lengths = np.array([len(c) for c in clips], np.int64)
  flat = (np.concatenate(clips).astype(np.float32) if clips
          else np.zeros((0,), np.float32))
  return flat, lengths


def _split_flat(flat, lengths):
  ends = np.cumsum(lengths)
  return tuple(flat[e - n:e] for e, n in zip(ends, lengths))


# --- Speech Commands ---------------------------------------------------------


def _read_list(root, name):
  path = os.path.join(root, name)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: not found (a Speech Commands folder "
                            f"holds {VALIDATION_LIST} and {TESTING_LIST})")
  out = []
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      rel = line.strip().replace("\\", "/")
      if not rel:
        continue
      if not os.path.isfile(os.path.join(root, rel)):
        raise FileNotFoundError(f"{path}, line {n}: {rel!r} does not exist "
                                f"under {root}")
      out.append(rel)
  return out


def list_speech_commands(root, words=None):
  """The clips of a Speech Commands folder, by split (no audio read).

  Returns:
    (class_names, {split: [(relative_path, label_index)]}, background_paths).

  Raises:
    FileNotFoundError for a missing root, list file or listed clip;
    ValueError for a requested word with no directory, a clip in both lists,
    or a class with no clips in a split.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: Speech Commands directory not found")
  audio_io.check_not_partial(root)
  found = sorted(d for d in os.listdir(root)
                 if os.path.isdir(os.path.join(root, d)) and
                 not d.startswith(("_", ".")))
  if words is None:
    names = found
  else:
    names = list(words)
    missing = [w for w in names if w not in found]
    if missing:
      raise ValueError(f"{root}: no directory for word(s) {missing} (found "
                       f"{found})")
    if len(set(names)) != len(names):
      raise ValueError(f"words={names}: repeated words")
  if not names:
    raise ValueError(f"{root}: no word directories (want <root>/<word>/*.wav)")
  index = {w: i for i, w in enumerate(names)}
  validation = _read_list(root, VALIDATION_LIST)
  testing = _read_list(root, TESTING_LIST)
  both = sorted(set(validation) & set(testing))
  if both:
    raise ValueError(f"{root}: {len(both)} clip(s) in both {VALIDATION_LIST} "
                     f"and {TESTING_LIST}, e.g. {both[0]!r}")
  held_out = {p: "validation" for p in validation}
  held_out.update({p: "test" for p in testing})
  splits = {s: [] for s in KEYWORD_SPLITS}
  for w in names:
    for f in sorted(os.listdir(os.path.join(root, w))):
      if f.lower().endswith(".wav"):
        rel = f"{w}/{f}"
        splits[held_out.get(rel, "train")].append((rel, index[w]))
  for s, items in splits.items():
    counts = np.bincount([i for _, i in items], minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
      raise ValueError(f"{root}: no {s} clips of class(es) {empty}")
  bg_dir = os.path.join(root, BACKGROUND_DIR)
  background = (sorted(os.path.join(bg_dir, f) for f in os.listdir(bg_dir)
                       if f.lower().endswith(".wav"))
                if os.path.isdir(bg_dir) else [])
  return tuple(names), splits, background


def load_speech_commands(root, *, words=None, sample_rate=8000,
                         clip_seconds=1.0, peak="always", min_samples=1,
                         cache=True, cache_dir=None) -> KeywordData:
  """Reads a Speech Commands folder (all 35 words, as the paper;
  docs/methods.md, B2).

  Args:
    root: the folder (the real data set, or keywords.generate_keywords).
    words: the classes (default: every word directory, sorted; 35 for v2).
      Clips of other words are left out, also from the lists.
    sample_rate: resample every clip to this rate.
    clip_seconds: clips are zero-padded (after the end) to this length; a
      longer clip is an error.
    peak: "always" or "louder_than_one" (module doc).
    min_samples: refuse clips shorter than this (after resampling). Clips
      are padded to 1 s, so CNN12 always sees 8000 samples; set
      audio_io.CNN12_RECEPTIVE_FIELD to refuse clips with less speech.
    cache, cache_dir: the decoded-array cache (module doc).

  Returns:
    KeywordData (waveforms (N, sample_rate * clip_seconds) float32, labels
    (N,) int32 per split; background clips whole).

  Raises:
    ValueError for a bad setting (before reading); FileNotFoundError /
    AudioError / ValueError naming the offending file or class.
  """
  settings = _settings("speech_commands", sample_rate, peak, min_samples,
                       clip_seconds=float(clip_seconds),
                       words=None if words is None else list(words))
  clip_samples = int(round(clip_seconds * sample_rate))
  if not clip_seconds > 0 or clip_samples < 1:
    raise ValueError(f"clip_seconds={clip_seconds!r}: must be > 0")
  names, splits, background = list_speech_commands(root, words)
  settings["class_names"] = list(names)
  paths = sorted(os.path.join(root, rel) for items in splits.values()
                 for rel, _ in items) + background + [
                     os.path.join(root, VALIDATION_LIST),
                     os.path.join(root, TESTING_LIST)]
  cache_path = _cache_path(cache, cache_dir, "speech_commands",
                           _listing_key(paths, root, settings))
  arrays = _read_cache(cache_path)
  if arrays is None:
    arrays = {}
    for s, items in splits.items():
      waves = np.zeros((len(items), clip_samples), np.float32)
      for i, (rel, _) in enumerate(items):
        path = os.path.join(root, rel)
        x = audio_io.load_clip(path, sample_rate, peak, min_samples)
        if len(x) > clip_samples:
          raise AudioError(f"{path}: {len(x)} samples at {sample_rate} Hz, "
                           f"longer than the {clip_seconds} s clip length "
                           f"({clip_samples})")
        waves[i, :len(x)] = x
      arrays[f"{s}_waveforms"] = waves
      arrays[f"{s}_labels"] = np.array([k for _, k in items], np.int32)
    flat, lengths = _concat([audio_io.load_clip(p, sample_rate, peak, 1)
                             for p in background])
    arrays["background"], arrays["background_lengths"] = flat, lengths
    _write_cache(cache_path, arrays)
  files = {s: tuple(rel for rel, _ in items) for s, items in splits.items()}
  return KeywordData(
      **{s: KeywordSplit(arrays[f"{s}_waveforms"], arrays[f"{s}_labels"],
                         files[s]) for s in KEYWORD_SPLITS},
      class_names=names,
      background=_split_flat(arrays["background"],
                             arrays["background_lengths"]),
      background_names=tuple(os.path.basename(p) for p in background),
      sample_rate=int(sample_rate),
      fingerprint=_fingerprint(settings, dict(arrays, names=np.array(
          [f for s in KEYWORD_SPLITS for f in files[s]] +
          [os.path.basename(p) for p in background]))))


# --- FSD50K and labelled folders ---------------------------------------------


def read_vocabulary(path):
  """vocabulary.csv (index,label,mid; FSD50K's has no header) ->
  (labels, mids).

  Raises:
    FileNotFoundError; ValueError naming the file and row for a malformed
    row, indices that are not 0..C-1 in order, or a repeated label.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: vocabulary file not found")
  labels, mids = [], []
  with open(path, newline="", encoding="utf-8") as f:
    for n, row in enumerate(csv.reader(f), 1):
      if not row or not any(v.strip() for v in row):
        continue
      if n == 1 and row[0].strip().lower() == "index":
        continue  # A header line.
      if len(row) < 2 or not row[0].strip().isdigit():
        raise ValueError(f"{path}, row {n}: want 'index,label[,mid]', got "
                         f"{row}")
      if int(row[0]) != len(labels):
        raise ValueError(f"{path}, row {n}: index {row[0]}, expected "
                         f"{len(labels)} (indices must run 0, 1, ...)")
      label = row[1].strip()
      if label in labels:
        raise ValueError(f"{path}, row {n}: label {label!r} repeated")
      labels.append(label)
      mids.append(row[2].strip() if len(row) > 2 else "")
  if not labels:
    raise ValueError(f"{path}: no classes")
  return tuple(labels), tuple(mids)


def read_label_csv(path, required=("fname", "labels")):
  """A label CSV (header row) -> list of (row_number, {column: value})."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: label CSV not found")
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in required if c not in columns]
    if missing:
      raise ValueError(f"{path}: no column(s) {missing} in its header "
                       f"{columns} (want fname,labels[,split])")
    rows = []
    for n, row in enumerate(reader, 2):
      row = {(k or "").strip(): (v or "").strip() for k, v in row.items()
             if k is not None}
      if not row.get("fname"):
        raise ValueError(f"{path}, row {n}: empty fname")
      rows.append((n, row))
  return rows


def _resolve(audio_dir, fname, where):
  candidates = [fname] if os.path.splitext(fname)[1].lower() in (
      _AUDIO_EXTENSIONS) else []
  candidates += [fname + e for e in _AUDIO_EXTENSIONS]
  for c in candidates:
    path = os.path.join(audio_dir, c)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f"{where}: no audio file for fname {fname!r} in "
                          f"{audio_dir} (tried {candidates})")


def _multi_hot(labels_text, index, where):
  y = np.zeros((len(index),), np.float32)
  names = [l.strip() for l in labels_text.split(",") if l.strip()]
  if not names:
    raise ValueError(f"{where}: no labels")
  for name in names:
    if name not in index:
      raise ValueError(f"{where}: unknown label {name!r} (not one of the "
                       f"{len(index)} classes of the vocabulary)")
    y[index[name]] = 1.0
  return y


def _load_event_splits(entries, class_names, mids, settings, root, kind,
                       require_all_classes, cache, cache_dir):
  """entries: {split: [(path, fname, multi_hot, where)]} -> EventData."""
  sample_rate, peak = settings["sample_rate"], settings["peak"]
  min_samples = settings["min_samples"]
  if require_all_classes:
    for s, items in entries.items():
      counts = (np.sum([y for _, _, y, _ in items], axis=0) if items
                else np.zeros(len(class_names)))
      empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
      if empty:
        raise ValueError(f"{root}: no {s} examples of class(es) {empty} "
                         "(pass require_all_classes=False to allow it)")
  paths = sorted({p for items in entries.values() for p, _, _, _ in items})
  cache_path = _cache_path(cache, cache_dir, kind,
                           _listing_key(paths + settings["_label_files"],
                                        root, settings))
  arrays = _read_cache(cache_path)
  if arrays is None:
    arrays = {}
    for s, items in entries.items():
      clips = [audio_io.load_clip(p, sample_rate, peak, min_samples)
               for p, _, _, _ in items]
      arrays[f"{s}_clips"], arrays[f"{s}_lengths"] = _concat(clips)
    _write_cache(cache_path, arrays)
  splits = {}
  for s, items in entries.items():
    labels = (np.stack([y for _, _, y, _ in items]) if items
              else np.zeros((0, len(class_names)), np.float32))
    arrays[f"{s}_labels"] = labels
    splits[s] = EventSplit(
        clips=_split_flat(arrays[f"{s}_clips"], arrays[f"{s}_lengths"]),
        lengths=arrays[f"{s}_lengths"].astype(np.int32), labels=labels,
        fnames=tuple(f for _, f, _, _ in items))
  fp_settings = {k: v for k, v in settings.items() if k != "_label_files"}
  return EventData(splits=splits, class_names=tuple(class_names),
                   mids=tuple(mids), sample_rate=int(sample_rate),
                   fingerprint=_fingerprint(fp_settings, dict(
                       arrays, classes=np.array(class_names), fnames=np.array(
                           [f for s in entries for _, f, _, _ in entries[s]]
                       ))))


_SPLIT_NAMES = {"train": "train", "val": "validation",
                "validation": "validation", "test": "test", "eval": "test"}


def _fsd50k_entries(root):
  """(class_names, mids, {split: [(path, fname, multi_hot, where)]}, label
  files) of an FSD50K-layout folder (load_fsd50k's layout)."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: FSD50K directory not found")
  audio_io.check_not_partial(root)
  gt = os.path.join(root, "FSD50K.ground_truth")
  vocab, dev_csv, eval_csv = (os.path.join(gt, n) for n in (
      "vocabulary.csv", "dev.csv", "eval.csv"))
  class_names, mids = read_vocabulary(vocab)
  index = {k: i for i, k in enumerate(class_names)}
  entries = {"train": [], "validation": [], "test": []}
  for csv_path, audio_dir, fixed in (
      (dev_csv, os.path.join(root, "FSD50K.dev_audio"), None),
      (eval_csv, os.path.join(root, "FSD50K.eval_audio"), "test")):
    required = ("fname", "labels") + (("split",) if fixed is None else ())
    for n, row in read_label_csv(csv_path, required):
      where = f"{csv_path}, row {n}"
      if fixed is None:
        split = row["split"]
        if split not in ("train", "val"):
          raise ValueError(f"{where}: split {split!r}; want 'train' or 'val'")
        split = _SPLIT_NAMES[split]
      else:
        split = fixed
      entries[split].append((_resolve(audio_dir, row["fname"], where),
                             row["fname"],
                             _multi_hot(row["labels"], index, where), where))
  return class_names, mids, entries, [vocab, dev_csv, eval_csv]


def load_fsd50k(root, *, sample_rate=8000, peak="always",
                min_samples=audio_io.CNN12_RECEPTIVE_FIELD,
                require_all_classes=True, cache=True,
                cache_dir=None) -> EventData:
  """Reads an FSD50K-layout folder (the real one or events.generate_events).

  Layout: root/FSD50K.dev_audio/<fname>.wav, root/FSD50K.eval_audio/
  <fname>.wav (or .flac), root/FSD50K.ground_truth/dev.csv (fname, labels,
  mids, split in train/val), eval.csv (fname, labels, mids), vocabulary.csv
  (index, label, mid).

  Args:
    root: the folder.
    sample_rate: resample to this rate (polyphase, resample_poly).
    peak: "always" or "louder_than_one" (module doc).
    min_samples: refuse clips shorter than this after resampling (default
      CNN12's receptive field, 2370 samples at 8 kHz).
    require_all_classes: refuse a split lacking a class.
    cache, cache_dir: the decoded-array cache (module doc).

  Returns:
    EventData with splits "train", "validation" (dev.csv) and "test"
    (eval.csv); labels (N, C) in vocabulary.csv's order.

  Raises:
    ValueError for a bad setting; FileNotFoundError / AudioError /
    ValueError naming the offending file, CSV row or class.
  """
  settings = _settings("fsd50k", sample_rate, peak, min_samples,
                       require_all_classes=bool(require_all_classes))
  class_names, mids, entries, label_files = _fsd50k_entries(root)
  settings["class_names"] = list(class_names)
  settings["_label_files"] = label_files
  return _load_event_splits(entries, class_names, mids, settings, root,
                            "fsd50k", require_all_classes, cache, cache_dir)


def _labelled_folder_entries(audio_dir, csv_path, vocabulary):
  """(class_names, mids, {split: [(path, fname, multi_hot, where)]}, label
  files) of a labelled folder (load_labelled_folder's arguments)."""
  if not os.path.isdir(audio_dir):
    raise FileNotFoundError(f"{audio_dir}: audio folder not found")
  rows = read_label_csv(csv_path)
  label_files = [csv_path]
  if vocabulary is None:
    class_names = tuple(sorted({l.strip() for _, r in rows
                                for l in r["labels"].split(",")
                                if l.strip()}))
    mids = ("",) * len(class_names)
  elif isinstance(vocabulary, (str, os.PathLike)):
    class_names, mids = read_vocabulary(vocabulary)
    label_files.append(os.fspath(vocabulary))
  else:
    class_names = tuple(vocabulary)
    if not class_names or len(set(class_names)) != len(class_names) or not all(
        isinstance(k, str) and k for k in class_names):
      raise ValueError(f"vocabulary={vocabulary!r}: want distinct non-empty "
                       "names")
    mids = ("",) * len(class_names)
  if not class_names:
    raise ValueError(f"{csv_path}: no labels")
  index = {k: i for i, k in enumerate(class_names)}
  entries = {}
  for n, row in rows:
    where = f"{csv_path}, row {n}"
    if "split" in row:
      if row["split"] not in _SPLIT_NAMES:
        raise ValueError(f"{where}: split {row['split']!r}; want one of "
                         f"{sorted(_SPLIT_NAMES)}")
      split = _SPLIT_NAMES[row["split"]]
    else:
      split = "all"
    entries.setdefault(split, []).append(
        (_resolve(audio_dir, row["fname"], where), row["fname"],
         _multi_hot(row["labels"], index, where), where))
  if not entries:
    raise ValueError(f"{csv_path}: no rows")
  return class_names, mids, entries, label_files


def load_labelled_folder(audio_dir, csv_path, *, vocabulary=None,
                         sample_rate=8000, peak="always",
                         min_samples=audio_io.CNN12_RECEPTIVE_FIELD,
                         require_all_classes=True, cache=True,
                         cache_dir=None) -> EventData:
  """Reads a user's folder of clips labelled by a CSV (FSD50K's format).

  The CSV has a header with columns fname and labels (comma-separated label
  names, quoted when more than one: `clip7,"Dog,Bark"`), and optionally
  split (train/val/validation/test/eval; val -> "validation", eval ->
  "test"). A row's audio is audio_dir/fname, or fname + .wav / .flac.

  Args:
    audio_dir: the folder of clips (WAV, FLAC; any rate, mono or not).
    csv_path: the label CSV.
    vocabulary: the classes: a vocabulary.csv path (index,label[,mid]), a
      sequence of names, or None for the sorted labels found in the CSV.
    sample_rate, peak, min_samples, require_all_classes, cache, cache_dir:
      as load_fsd50k.

  Returns:
    EventData with the CSV's splits, or one split "all" when it has no split
    column.

  Raises:
    As load_fsd50k.
  """
  settings = _settings("labelled_folder", sample_rate, peak, min_samples,
                       require_all_classes=bool(require_all_classes))
  class_names, mids, entries, label_files = _labelled_folder_entries(
      audio_dir, csv_path, vocabulary)
  settings["class_names"] = list(class_names)
  settings["_label_files"] = label_files
  return _load_event_splits(entries, class_names, mids, settings, audio_dir,
                            "labelled_folder", require_all_classes, cache,
                            cache_dir)


# --- Listings (no audio read), what recon_jax.data.pack packs ----------------


def _event_listing(kind, class_names, entries, settings) -> listing.Listing:
  return listing.Listing(
      kind=kind, class_names=tuple(class_names), multilabel=True,
      splits={s: tuple(listing.ClipEntry(
          path=p, name=f, labels=tuple(int(i) for i in np.flatnonzero(y)))
                       for p, f, y, _ in items)
              for s, items in entries.items()},
      settings=settings)


def speech_commands_listing(root, words=None) -> listing.Listing:
  """The clips of a Speech Commands folder (list_speech_commands) as a
  Listing; clip names are paths relative to root."""
  names, splits, _ = list_speech_commands(root, words)
  return listing.Listing(
      kind="speech_commands", class_names=tuple(names), multilabel=False,
      splits={s: tuple(listing.ClipEntry(os.path.join(root, rel), rel, (k,))
                       for rel, k in items) for s, items in splits.items()},
      settings={"words": None if words is None else list(words),
                # Clips are zero-padded to 1 s, as load_speech_commands pads.
                "clip_seconds": 1.0})


def fsd50k_listing(root) -> listing.Listing:
  """The clips of an FSD50K-layout folder (load_fsd50k's) as a Listing."""
  class_names, _, entries, _ = _fsd50k_entries(root)
  return _event_listing("fsd50k", class_names, entries, {})


def labelled_folder_listing(audio_dir, csv_path,
                            vocabulary=None) -> listing.Listing:
  """A user's labelled folder (load_labelled_folder's arguments) as a
  Listing; its CSV must give every row a split."""
  class_names, _, entries, _ = _labelled_folder_entries(audio_dir, csv_path,
                                                        vocabulary)
  if "all" in entries:
    raise ValueError(f"{csv_path}: no split column; give every row a split "
                     "(train, validation or test)")
  result = _event_listing("labelled_folder", class_names, entries,
                          {"csv": os.path.abspath(csv_path)})
  listing.check_disjoint(result)
  return result
