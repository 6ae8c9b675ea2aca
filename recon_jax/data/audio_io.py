"""Audio files in and out for the sonification data (docs/methods.md, B1, B1b):
8 kHz mono.

Reading (`load_clip`): any file libsndfile decodes (WAV in any PCM/float
format, FLAC, ...) through soundfile, channels averaged to mono, resampled
to the target rate with `scipy.signal.resample_poly` (a polyphase FIR
low-pass, so content above the new Nyquist frequency is filtered out, not
folded back) and scaled to unit peak. Every problem is one error naming the
file: unreadable or corrupt audio, NaN/inf samples, an all-zero clip, a clip
shorter than `min_samples` (CNN12 sees nothing of a clip shorter than its
receptive field, `CNN12_RECEPTIVE_FIELD` samples). `read_checked_clip`
reads a user's clip the same way but refuses one at another rate unless
asked to resample it.

Peak normalisation (docs/methods.md, C): "always" (the paper's text: every clip
to unit peak, the default) or "louder_than_one" (the authors' code,
torch_audiomentations PeakNormalization(apply_to="only_too_loud_sounds"):
only clips whose peak exceeds 1 are scaled down).

Writing (`write_wav`): 16-bit PCM WAV, converted here (round(x * 32767)) so
that the bytes depend only on the samples. `generate_atomically` makes a
generated data set appear only when complete (used by keywords.py and
events.py).
"""
import io
import math
import numbers
import os
import shutil
from typing import NamedTuple

from absl import logging
import numpy as np
import scipy.signal
import soundfile

from recon_jax import provenance
from recon_jax.data.timit import GENERATOR_CONFIG
from recon_jax.data.timit import PARTIAL_SUFFIX

SAMPLE_RATE = 8000  # CNN12's input rate (docs/methods.md, B1).
# Receptive field of CNN12 (kernels 7,7,5,5,5,3,3,3,3,3,3; pools after 1-8):
# the shortest input that gives one output frame.
CNN12_RECEPTIVE_FIELD = 2370
PEAK_MODES = ("always", "louder_than_one")


class AudioError(ValueError):
  """An audio file is unreadable, corrupt, silent, too short or mislabelled.

  The message names the file.
  """


def check_rate(rate, name="sample_rate"):
  if (isinstance(rate, (bool, np.bool_)) or
      not isinstance(rate, numbers.Integral) or rate <= 0):
    raise ValueError(f"{name}={rate!r}: must be an integer > 0 (Hz)")
  return int(rate)


def check_peak_mode(peak):
  if peak not in PEAK_MODES:
    raise ValueError(f"peak={peak!r}: want one of {PEAK_MODES} ('always': "
                     "every clip to unit peak, the paper's text; "
                     "'louder_than_one': only clips peaking above 1, the "
                     "authors' code)")
  return peak


def check_min_samples(min_samples):
  if (isinstance(min_samples, (bool, np.bool_)) or
      not isinstance(min_samples, numbers.Integral) or min_samples < 0):
    raise ValueError(f"min_samples={min_samples!r}: must be an integer >= 0 "
                     f"(CNN12's receptive field is {CNN12_RECEPTIVE_FIELD} "
                     "samples at 8 kHz)")
  return int(min_samples)


def read_audio(path):
  """Decodes an audio file to mono float32.

  Returns:
    samples: float32 (T,), the mean over channels, in the file's full-scale
      units ([-1, 1] for PCM).
    sample_rate: int.

  Raises:
    FileNotFoundError if `path` does not exist; AudioError naming the file if
    libsndfile cannot decode it or it has no channels.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: audio file not found")
  try:
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
  except (RuntimeError, soundfile.SoundFileError, TypeError, ValueError,
          OSError) as e:
    raise AudioError(f"{path}: unreadable or corrupt audio ({e})") from None
  if data.shape[1] < 1:
    raise AudioError(f"{path}: audio file has no channels")
  samples = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
  return np.ascontiguousarray(samples, np.float32), int(rate)


def resample(x, rate, target_rate=SAMPLE_RATE):
  """Resamples float (T,) from `rate` to `target_rate` Hz (polyphase FIR).

  Uses scipy.signal.resample_poly with up/down reduced by their gcd (its
  default Kaiser-windowed low-pass), computed in float64.

  Returns:
    float32 (ceil(T * target_rate / rate),).
  """
  rate, target_rate = check_rate(rate, "rate"), check_rate(target_rate,
                                                           "target_rate")
  x = np.asarray(x)
  if rate == target_rate:
    return np.asarray(x, np.float32)
  g = math.gcd(rate, target_rate)
  return scipy.signal.resample_poly(x.astype(np.float64), target_rate // g,
                                    rate // g).astype(np.float32)


def peak_normalise(x, peak="always", where="clip"):
  """Scales float (T,) to unit peak (see the module doc for `peak`).

  Raises:
    AudioError naming `where` for an all-zero clip under peak="always".
  """
  check_peak_mode(peak)
  x = np.asarray(x, np.float32)
  m = float(np.max(np.abs(x))) if x.size else 0.0
  if peak == "always":
    if m == 0.0:
      raise AudioError(f"{where}: silent clip (all samples zero); cannot "
                       "scale it to unit peak")
    return (x / m).astype(np.float32)
  return (x / m).astype(np.float32) if m > 1.0 else x


def check_samples(x, where, min_samples=0):
  """Raises AudioError naming `where` for NaN/inf, all-zero or short audio."""
  if x.size and not np.all(np.isfinite(x)):
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    raise AudioError(f"{where}: {bad} NaN or infinite sample(s)")
  if x.size == 0 or not np.any(x):
    raise AudioError(f"{where}: silent clip (all {x.size} samples are zero)")
  if x.shape[0] < min_samples:
    raise AudioError(f"{where}: {x.shape[0]} samples, shorter than the minimum "
                     f"of {min_samples} (CNN12's receptive field is "
                     f"{CNN12_RECEPTIVE_FIELD} samples at 8 kHz)")


def load_clip(path, sample_rate=SAMPLE_RATE, peak="always", min_samples=0):
  """One clip ready for CNN12: mono, `sample_rate` Hz, peak normalised.

  Args:
    path: an audio file soundfile can read (WAV, FLAC, ...).
    sample_rate: the rate to resample to.
    peak: "always" or "louder_than_one" (see the module doc).
    min_samples: refuse clips shorter than this after resampling.

  Returns:
    float32 (T,).

  Raises:
    FileNotFoundError or AudioError naming the file (unreadable, NaN,
    silent, too short).
  """
  x, rate = read_audio(path)
  check_samples(x, path)  # NaN and silence before resampling smears them.
  x = resample(x, rate, sample_rate)
  check_samples(x, path, min_samples)
  return peak_normalise(x, peak, where=path)


class CheckedClip(NamedTuple):
  """A clip read by `read_checked_clip`: samples (float32 (T,), mono, at the
  rate asked for, unit peak), and what the file held: its rate, length and
  channel count."""
  samples: np.ndarray
  file_rate: int
  file_samples: int
  channels: int


def read_checked_clip(path, sample_rate=SAMPLE_RATE, *, resample_clip=False,
                      min_samples=CNN12_RECEPTIVE_FIELD, peak="always",
                      resample_flag="resample_clip=True"):
  """A user's clip for CNN12, refused rather than silently changed.

  Like `load_clip`, but a file at another rate than `sample_rate` is an
  AudioError naming both rates and `resample_flag` (what to set to accept
  it) unless `resample_clip` is true; then it is resampled with
  scipy.signal.resample_poly (`resample`).

  Args:
    path: an audio file soundfile can read (WAV, FLAC, ...).
    sample_rate: the rate CNN12 takes (8 kHz).
    resample_clip: resample a clip at another rate instead of refusing it.
    min_samples: refuse clips shorter than this (at `sample_rate`);
      CNN12's receptive field by default.
    peak: "always" or "louder_than_one" (see the module doc).
    resample_flag: how the caller's user asks for resampling, for the
      message (e.g. "--config.resample=True").

  Returns:
    A CheckedClip.

  Raises:
    FileNotFoundError, or AudioError naming the file: unreadable or
    corrupt, NaN/inf samples, silent, at another rate, too short.
  """
  sample_rate = check_rate(sample_rate)
  min_samples = check_min_samples(min_samples)
  check_peak_mode(peak)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: audio file not found" + (
        " (it is a directory)" if os.path.isdir(path) else ""))
  try:
    channels = soundfile.info(path).channels
  except (RuntimeError, soundfile.SoundFileError, TypeError, ValueError,
          OSError) as e:
    raise AudioError(f"{path}: unreadable or corrupt audio ({e})") from None
  x, rate = read_audio(path)
  if channels > 1:
    _check_channels_do_not_cancel(path, x)
  check_samples(x, path)
  if rate != sample_rate and not resample_clip:
    raise AudioError(f"{path}: sampled at {rate} Hz, but CNN12 takes "
                     f"{sample_rate} Hz; set {resample_flag} to resample it "
                     "(scipy.signal.resample_poly), or pass a file at "
                     f"{sample_rate} Hz")
  y = resample(x, rate, sample_rate)
  check_samples(y, path, min_samples)
  return CheckedClip(peak_normalise(y, peak, where=path), int(rate),
                     int(x.shape[0]), int(channels))

def _check_channels_do_not_cancel(path, mono) -> None:
  """AudioError when averaging a multi-channel file to mono leaves (almost)
  nothing of channels that hold sound (e.g. one channel phase-inverted): the
  mix would be peak-normalised rounding noise, not the recording."""
  data, _ = soundfile.read(path, dtype="float64", always_2d=True)
  channel_rms = float(np.sqrt(np.mean(data ** 2))) if data.size else 0.0
  mono_rms = float(np.sqrt(np.mean(np.asarray(mono, np.float64) ** 2)))
  if channel_rms > 0 and mono_rms < 1e-4 * channel_rms:
    raise AudioError(
        f"{path}: its {data.shape[1]} channels cancel when averaged to mono "
        f"(mix RMS {mono_rms:.3g} vs {channel_rms:.3g} per channel; one is "
        "phase-inverted?); save one channel, or the channels in phase")


def to_int16(x, where="audio"):
  """float [-1, 1] (T,) -> int16 (T,) as round(x * 32767).

  Raises:
    ValueError naming `where` if a sample is NaN or outside [-1, 1].
  """
  x = np.asarray(x, np.float64)
  if not np.all(np.isfinite(x)) or (x.size and np.max(np.abs(x)) > 1.0):
    raise ValueError(f"{where}: samples must be finite and within [-1, 1] "
                     f"(peak {np.max(np.abs(x)) if x.size else 0.0})")
  return np.round(x * 32767.0).astype(np.int16)


def write_wav(path, x, sample_rate=SAMPLE_RATE):
  """Writes float (T,) in [-1, 1] as a mono 16-bit PCM WAV file."""
  samples = to_int16(x, where=path)
  # Encoded in memory, then written by Python: a full disk or read-only dir
  # is an OSError naming it (libsndfile reports only "System error"). The
  # generators write into <root>.partial, so no per-file rename is needed.
  buf = io.BytesIO()
  soundfile.write(buf, samples, check_rate(sample_rate), subtype="PCM_16",
                  format="WAV")
  with open(path, "wb") as f:
    f.write(buf.getvalue())
  return path


def generate_atomically(root, settings, make, what):
  """Makes a generated data set at `root` that appears only when complete.

  `make(partial_dir)` writes everything into `<root>.partial` (removed
  first: a killed run restarts cleanly); then `settings` is written there as
  generator_config.json and the directory is renamed to `root`.

  Args:
    root: the data set directory (absent, empty, or made before).
    settings: JSON-able dict of everything the bytes depend on.
    make: callable(partial_dir) -> summary.
    what: a name for messages ("keyword data set").

  Returns:
    make's summary, or None when `root` already holds a complete data set
    made with the same settings (nothing is done).

  Raises:
    ValueError if `root` holds something else: a data set made with other
    settings (the differing fields are named) or files that are not one.
  """
  root = provenance.check_workdir(root, flag=f"{what} directory")
  settings = provenance.to_jsonable(settings)
  settings_path = os.path.join(root, GENERATOR_CONFIG)
  if os.path.isdir(root) and os.listdir(root):
    if not os.path.exists(settings_path):
      raise ValueError(f"{root}: not empty and holds no {GENERATOR_CONFIG}, so "
                       f"it is not a generated {what}; use a new directory")
    diffs = provenance.differences(provenance.read_json(settings_path),
                                   settings)
    if diffs:
      raise ValueError(f"{root} holds a {what} made with another config ("
                       f"{'; '.join(diffs[:6])}); delete it or use a new "
                       "directory")
    return None
  if os.path.exists(root) and not os.path.isdir(root):
    raise ValueError(f"{root} is a file, not a directory")
  partial = root + PARTIAL_SUFFIX
  if os.path.exists(partial):
    logging.warning("Removing the half-written %s %s of a killed run", what,
                    partial)
    shutil.rmtree(partial)
  os.makedirs(partial)
  summary = make(partial)
  provenance.write_json_atomic(os.path.join(partial, GENERATOR_CONFIG),
                               settings)
  if os.path.isdir(root):
    os.rmdir(root)  # Empty (checked above).
  os.replace(partial, root)
  return summary


def check_not_partial(root):
  """Refuses a `*.partial` directory (a generation killed or running)."""
  name = os.path.basename(os.path.normpath(root))
  if name.endswith(PARTIAL_SUFFIX):
    raise ValueError(f"{root}: a half-written generated data set (a "
                     f"'{PARTIAL_SUFFIX}' directory); rerun its make_* "
                     f"command and read the directory without "
                     f"'{PARTIAL_SUFFIX}'")
