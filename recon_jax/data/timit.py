"""Reading a TIMIT-layout corpus (the real one or a generated one): SPEC A1.

Layout: <root>/{TRAIN,TEST}/DR*/<SPEAKER>/<UTT>.WAV with <UTT>.PHN beside it.
Directory and file names match case-insensitively (some copies are lower
case, some have .wav/.phn; a converted "X.WAV.wav" is used where "X.WAV" is
missing); <root> may also be a directory holding TIMIT/ or
TIMIT/TIMIT/ or data/ (as common distributions nest it). WAV files may be
NIST SPHERE or RIFF.
"""
import os

import numpy as np

from recon_jax.data import phones
from recon_jax.data import sphere
from recon_jax.data.errors import CorpusError

SPLITS = ("TRAIN", "TEST")


def _child(path, name):
  """The entry of directory `path` named `name` (any case), or None."""
  try:
    entries = sorted(os.listdir(path))
  except (FileNotFoundError, NotADirectoryError):
    return None
  for entry in entries:
    if entry.upper() == name.upper():
      return os.path.join(path, entry)
  return None


def find_split_dir(root, split):
  """The directory of `split` ("TRAIN"/"TEST") under `root`.

  Raises:
    FileNotFoundError if `root` is missing; CorpusError if it holds no split.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: corpus directory not found")
  candidates = [root]
  for sub in ("TIMIT", "data"):
    c = _child(root, sub)
    if c:
      candidates.append(c)
      cc = _child(c, "TIMIT") or _child(c, "data")
      if cc:
        candidates.append(cc)
  for c in candidates:
    d = _child(c, split)
    if d and os.path.isdir(d):
      return d
  raise CorpusError(f"{root}: empty corpus directory or not TIMIT layout (no "
                    f"{split}/DR*/SPEAKER/*.WAV; looked in {candidates})")


def list_utterances(root, split, drop_sa=True):
  """Lists a split's utterances, sorted.

  Args:
    root: the corpus directory.
    split: "TRAIN" or "TEST".
    drop_sa: leave out the SA* (dialect) sentences, as Lee & Hon recommend.

  Returns:
    List of dicts with keys wav, phn (paths), dialect, speaker, utterance.

  Raises:
    CorpusError for an empty split; FileNotFoundError naming a .WAV whose .PHN
    (or a .PHN whose .WAV) is missing.
  """
  split_dir = find_split_dir(root, split)
  out = []
  for dialect in sorted(os.listdir(split_dir)):
    d_dir = os.path.join(split_dir, dialect)
    if not (os.path.isdir(d_dir) and dialect.upper().startswith("DR")):
      continue
    for speaker in sorted(os.listdir(d_dir)):
      s_dir = os.path.join(d_dir, speaker)
      if not os.path.isdir(s_dir):
        continue
      files = {}
      converted = {}
      for name in sorted(os.listdir(s_dir)):
        stem, ext = os.path.splitext(name)
        if stem.upper().endswith(".WAV") and ext.upper() == ".WAV":
          # Some copies add a RIFF "X.WAV.wav" beside each SPHERE "X.WAV".
          converted[stem[:-4].upper()] = os.path.join(s_dir, name)
          continue
        files.setdefault(stem.upper(), {})[ext.upper()] = os.path.join(s_dir, name)
      for stem, path in converted.items():
        files.setdefault(stem, {}).setdefault(".WAV", path)
      for stem in sorted(files):
        exts = files[stem]
        if ".WAV" not in exts and ".PHN" not in exts:
          continue
        if drop_sa and stem.startswith("SA"):
          continue
        if ".PHN" not in exts:
          raise FileNotFoundError(f"{exts['.WAV']}: no .PHN file beside it")
        if ".WAV" not in exts:
          raise FileNotFoundError(f"{exts['.PHN']}: no .WAV file beside it")
        out.append(dict(wav=exts[".WAV"], phn=exts[".PHN"],
                        dialect=dialect.upper(), speaker=speaker.upper(),
                        utterance=stem))
  if not out:
    raise CorpusError(f"{split_dir}: no utterances (empty corpus directory?)")
  return out


def read_utterance(wav_path, phn_path, sample_rate=16000):
  """Reads one utterance: int16 samples (T,) and its .PHN segments."""
  samples = sphere.read_audio(wav_path, sample_rate)
  segments = phones.read_phn(phn_path, num_samples=len(samples))
  return samples, segments


def read_phones(root, split, sample_rate=16000, drop_sa=True):
  """Slices a split into one waveform per phone, labels folded to 48.

  Phones whose label folds to nothing (q) are dropped.

  Returns:
    waveforms: list of int16 (length_i,) arrays.
    labels48: int32 (N,) indices into `phones.phones48()`.
    utterance_ids: int32 (N,) index into `utterances` of each phone.
    utterances: the `list_utterances` entries.
  """
  fold = phones.fold_61_to_48()
  ids48 = {p: i for i, p in enumerate(phones.phones48())}
  utterances = list_utterances(root, split, drop_sa=drop_sa)
  waveforms, labels, utt_ids = [], [], []
  for u, utt in enumerate(utterances):
    samples, segments = read_utterance(utt["wav"], utt["phn"], sample_rate)
    for start, end, label in segments:
      if fold[label] is None:
        continue
      waveforms.append(samples[start:end])
      labels.append(ids48[fold[label]])
      utt_ids.append(u)
  return (waveforms, np.array(labels, np.int32), np.array(utt_ids, np.int32),
          utterances)
