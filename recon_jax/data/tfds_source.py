"""TFDS `speech_commands` as a second keyword source (docs/methods.md, B1b, B2).

TFDS's speech_commands has 12 labels (10 words, "_silence_", "_unknown_"),
not the 35 words the paper uses: `audio_folder.load_speech_commands` on the
Speech Commands folder reproduces the paper; this reads what TFDS has, with
its labels as TFDS numbers them. Clips (16 kHz int16) are resampled to
8 kHz with scipy.signal.resample_poly, scaled to unit peak (`peak` as in
audio_io) and zero-padded to 1 s.

Nothing is downloaded: the data must already be prepared in `data_dir`
(`tfds build speech_commands --data_dir=DIR` on a machine with network).
Neither tensorflow_datasets nor the TensorFlow its readers need is in the
base install: both come with the `tfds` extra (pip install -e ".[tfds]"),
and are imported inside the function, so every other path (and importing
this module) works without them.
"""
import importlib

import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data.audio_folder import KeywordData
from recon_jax.data.audio_folder import KeywordSplit
from recon_jax.data.audio_io import AudioError

NAME = "speech_commands"
TFDS_RATE = 16000
# Our split names -> TFDS's.
SPLITS = {"train": "train", "validation": "validation", "test": "test"}
# What the error says when tensorflow_datasets or TensorFlow is missing.
INSTALL_HINT = ("Install the 'tfds' extra (tensorflow-datasets and "
                "tensorflow-cpu): pip install -e \".[tfds]\"")


def _import_tfds():
  """tensorflow_datasets, or one ImportError naming the `tfds` extra."""
  missing = []
  for module in ("tensorflow_datasets", "tensorflow"):
    try:
      importlib.import_module(module)
    except ImportError as e:
      missing.append(f"{module} ({e})")
  if missing:
    raise ImportError(
        "reading TFDS speech_commands needs tensorflow_datasets and "
        f"TensorFlow; not installed: {'; '.join(missing)}. "
        f"{INSTALL_HINT}") from None
  return importlib.import_module("tensorflow_datasets")


def load_tfds_speech_commands(data_dir, *, sample_rate=8000, peak="always",
                              min_samples=1, clip_seconds=1.0,
                              max_examples=None) -> KeywordData:
  """Reads TFDS speech_commands (prepared in `data_dir`) into KeywordData.

  Args:
    data_dir: the TFDS data directory holding speech_commands (not
      downloaded here).
    sample_rate: resample from 16 kHz to this rate.
    peak: "always" or "louder_than_one" (audio_io).
    min_samples: refuse clips shorter than this after resampling.
    clip_seconds: clips are zero-padded to this length; longer ones are an
      error.
    max_examples: read at most this many examples per split (None: all).

  Returns:
    KeywordData: train/validation/test with waveforms float32 (N, L),
    labels int32 (N,) as TFDS numbers them, class_names from TFDS's
    ClassLabel (12 names), files "speech_commands/<split>[<i>]", no
    background clips.

  Raises:
    ImportError naming the `tfds` extra when tensorflow_datasets or
    TensorFlow is missing;
    FileNotFoundError when data_dir holds no prepared speech_commands;
    AudioError naming the example for a silent, NaN or too long clip;
    ValueError for a bad setting.
  """
  settings = dict(kind="tfds_speech_commands",
                  sample_rate=audio_io.check_rate(sample_rate),
                  peak=audio_io.check_peak_mode(peak),
                  min_samples=audio_io.check_min_samples(min_samples),
                  clip_seconds=float(clip_seconds), max_examples=max_examples)
  if max_examples is not None and (
      isinstance(max_examples, bool) or not isinstance(max_examples, int) or
      max_examples < 1):
    raise ValueError(f"max_examples={max_examples!r}: want None or an "
                     "integer >= 1")
  clip_samples = int(round(clip_seconds * sample_rate))
  if not clip_seconds > 0 or clip_samples < 1:
    raise ValueError(f"clip_seconds={clip_seconds!r}: must be > 0")
  if not data_dir:
    raise ValueError("data_dir is empty: give the TFDS data directory that "
                     "holds the prepared speech_commands")
  tfds = _import_tfds()
  splits, class_names = {}, None
  for ours, theirs in SPLITS.items():
    try:
      ds, info = tfds.load(NAME, split=theirs, data_dir=data_dir,
                           download=False, with_info=True)
    except (AssertionError, FileNotFoundError,
            tfds.core.DatasetNotFoundError) as e:
      raise FileNotFoundError(
          f"{data_dir}: no prepared TFDS {NAME} ({str(e).splitlines()[0]}); "
          f"prepare it on a machine with network: tfds build {NAME} "
          f"--data_dir={data_dir}") from None
    class_names = tuple(info.features["label"].names)
    if max_examples is not None:
      ds = ds.take(max_examples)
    waves, labels, files = [], [], []
    for i, ex in enumerate(tfds.as_numpy(ds)):
      where = f"tfds {NAME}/{theirs}[{i}]"
      x = np.asarray(ex["audio"]).astype(np.float32) / 32768.0
      if x.ndim != 1:
        raise AudioError(f"{where}: audio of shape {x.shape}, want (T,)")
      audio_io.check_samples(x, where)
      x = audio_io.resample(x, TFDS_RATE, sample_rate)
      audio_io.check_samples(x, where, settings["min_samples"])
      if len(x) > clip_samples:
        raise AudioError(f"{where}: {len(x)} samples at {sample_rate} Hz, "
                         f"longer than {clip_seconds} s")
      w = np.zeros((clip_samples,), np.float32)
      w[:len(x)] = audio_io.peak_normalise(x, peak, where)
      waves.append(w)
      labels.append(int(ex["label"]))
      files.append(f"{NAME}/{theirs}[{i}]")
    splits[ours] = KeywordSplit(
        waveforms=(np.stack(waves) if waves
                   else np.zeros((0, clip_samples), np.float32)),
        labels=np.array(labels, np.int32), files=tuple(files))
  fingerprint = provenance.fingerprint_json({
      "settings": settings, "classes": list(class_names),
      "arrays": provenance.fingerprint_arrays(
          {s: (v.waveforms, v.labels) for s, v in splits.items()})})
  return KeywordData(**splits, class_names=class_names, background=(),
                     background_names=(), sample_rate=int(sample_rate),
                     fingerprint=fingerprint)
