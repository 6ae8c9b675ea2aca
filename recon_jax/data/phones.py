"""TIMIT phone labels, the 61 -> 48 -> 39 folding, and .PHN files.

The folding table (Lee & Hon 1989, as in Kaldi's phones.60-48-39.map) is
package data: tables/timit_61_48_39.tsv. 'q' (glottal stop) folds to nothing:
its phones are dropped, as in the standard recipe.
"""
import functools
import os

import numpy as np

from recon_jax.data.errors import CorpusError

_TABLE = os.path.join(os.path.dirname(__file__), "tables", "timit_61_48_39.tsv")


@functools.lru_cache(maxsize=None)
def _read_table():
  rows = []
  with open(_TABLE, encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
  if lines[0].split("\t") != ["timit61", "fold48", "fold39"]:
    raise CorpusError(f"{_TABLE}: unexpected header {lines[0]!r}")
  for i, line in enumerate(lines[1:], start=2):
    cols = line.split("\t")
    if len(cols) != 3:
      raise CorpusError(f"{_TABLE}: row {i} has {len(cols)} columns, want 3")
    rows.append(tuple(cols))
  return tuple(rows)


def timit61():
  """The 61 TIMIT labels, in table order."""
  return tuple(r[0] for r in _read_table())


def phones48():
  """The 48 training classes, sorted; a label's index is its class id."""
  return tuple(sorted({r[1] for r in _read_table() if r[1]}))


def phones39():
  """The 39 scoring classes, sorted; a label's index is its class id."""
  return tuple(sorted({r[2] for r in _read_table() if r[2]}))


def fold_61_to_48():
  """Dict TIMIT label -> 48-class label, or None where the phone is dropped (q)."""
  return {r[0]: (r[1] or None) for r in _read_table()}


def fold_48_to_39():
  """Dict 48-class label -> 39-class label."""
  table = {}
  for _, l48, l39 in _read_table():
    if l48:
      if table.setdefault(l48, l39) != l39:
        raise CorpusError(f"{_TABLE}: {l48} folds to both {table[l48]} and {l39}")
  return table


def class_ids_48_to_39():
  """int32 (48,): the 39-class id of each 48-class id."""
  p39 = {p: i for i, p in enumerate(phones39())}
  table = fold_48_to_39()
  return np.array([p39[table[p]] for p in phones48()], np.int32)


def read_phn(path, num_samples=None):
  """Reads a TIMIT .PHN file: one `start end label` line per phone.

  Args:
    path: the .PHN file.
    num_samples: length of the utterance's waveform; segments must lie in it.

  Returns:
    List of (start, end, label), start < end, in file order.

  Raises:
    CorpusError naming the file and line for a malformed line, a label not in
    the 61 set, a segment outside the waveform, or segments out of order.
  """
  known = set(timit61())
  segments = []
  try:
    with open(path, encoding="ascii") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    raise
  except UnicodeDecodeError as e:
    raise CorpusError(f"{path}: not an ASCII .PHN file ({e})") from None
  prev_end = 0
  for lineno, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    fields = line.split()
    if len(fields) != 3:
      raise CorpusError(f"{path}:{lineno}: want 'start end label', got {line!r}")
    try:
      start, end = int(fields[0]), int(fields[1])
    except ValueError:
      raise CorpusError(f"{path}:{lineno}: sample markers are not integers: "
                        f"{line!r}") from None
    label = fields[2]
    if label not in known:
      raise CorpusError(f"{path}:{lineno}: unknown TIMIT label {label!r}")
    if not 0 <= start < end:
      raise CorpusError(f"{path}:{lineno}: bad segment {start}..{end}")
    if start < prev_end:
      raise CorpusError(f"{path}:{lineno}: segment {start}..{end} starts before "
                        f"the previous one ends ({prev_end}); lines out of order")
    if num_samples is not None and end > num_samples:
      raise CorpusError(f"{path}:{lineno}: segment {start}..{end} is outside the "
                        f"waveform ({num_samples} samples)")
    segments.append((start, end, label))
    prev_end = end
  if not segments:
    raise CorpusError(f"{path}: no phones")
  return segments


def write_phn(path, segments):
  """Writes (start, end, label) segments as a TIMIT .PHN file."""
  with open(path, "w", encoding="ascii", newline="\n") as f:
    for start, end, label in segments:
      f.write(f"{int(start)} {int(end)} {label}\n")
