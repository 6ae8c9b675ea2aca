"""Phone waveforms -> the thesis's spectrogram arrays (docs/methods.md, A1),
cached.

`load_phone_data(root)` reads a TIMIT-layout corpus, slices one waveform per
phone (SA* dropped, q dropped, labels folded 61 -> 48 and 48 -> 39), drops
phones longer than the 95th percentile of TRAIN phone lengths, zero-pads the
rest to the longest kept length and takes STFT magnitudes (201 x 16 for 2554
samples; MATLAB spectrogram's symmetric Hamming window by default). The
result is cached (best effort) as an .npz keyed by a hash of the corpus
listing and every setting, so a second call is a file read.

`PhoneData.fingerprint` identifies the data: a hash of every setting and of
the arrays themselves (so the same phones give the same fingerprint
wherever the corpus lies, and any change to them a different one).
Experiments record it beside what they save.
"""
import dataclasses
import hashlib
import json
import numbers
import os
import tempfile
import zipfile

from absl import logging
import jax
import numpy as np

from recon_jax import ops
from recon_jax import provenance
from recon_jax.ops.spectral import HOP
from recon_jax.ops.spectral import N_FFT
from recon_jax.ops.spectral import WINDOW
from recon_jax.ops.spectral import WINDOW_LENGTH
from recon_jax.data import phones
from recon_jax.data import timit
from recon_jax.data.errors import CorpusError

# 2: thesis (MATLAB) STFT scaling, no window-sum division. 3: the window is a
# setting (default MATLAB's symmetric Hamming).
_CACHE_VERSION = 3


@dataclasses.dataclass(frozen=True)
class PhoneSplit:
  """One split's phones; N phones, L = the padded length, F frames.

  waveforms: float32 (N, L), zero-padded after each phone.
  spectrograms: float32 (N, n_fft // 2 + 1, F) STFT magnitudes.
  labels48: int32 (N,) index into `PhoneData.phones48`.
  labels39: int32 (N,) index into `PhoneData.phones39`.
  lengths: int32 (N,) phone lengths in samples before padding.
  """
  waveforms: np.ndarray
  spectrograms: np.ndarray
  labels48: np.ndarray
  labels39: np.ndarray
  lengths: np.ndarray

  def __len__(self):
    return len(self.labels48)


@dataclasses.dataclass(frozen=True)
class PhoneData:
  """TRAIN and TEST phones, the training-set mean spectrogram and metadata.

  The network's input is `spectrograms - mean_spectrogram` (see
  `network_inputs`); intensities are not otherwise normalised. The STFT
  settings that made the spectrograms are kept (`stft_settings(data)` gives
  them as keyword arguments for ops.stft/griffin_lim, the metrics and
  make_chirps); `fingerprint` identifies the data (see the module doc).
  """
  train: PhoneSplit
  test: PhoneSplit
  mean_spectrogram: np.ndarray  # float32 (n_fft // 2 + 1, F)
  max_length: int  # L: the longest kept phone (2554 on TIMIT).
  length_cut: float  # Phones longer than this (TRAIN percentile) are dropped.
  phones48: tuple
  phones39: tuple
  sample_rate: int
  window_length: int
  hop: int
  n_fft: int
  window: str | tuple  # A window name, or the window's values.
  fingerprint: str

  def split(self, name):
    """The PhoneSplit called "train"/"TRAIN" or "test"/"TEST"."""
    return {"TRAIN": self.train, "TEST": self.test}[name.upper()]


jax.tree_util.register_dataclass(
    PhoneSplit, data_fields=[f.name for f in dataclasses.fields(PhoneSplit)],
    meta_fields=[])
jax.tree_util.register_dataclass(
    PhoneData, data_fields=["train", "test", "mean_spectrogram"],
    meta_fields=["max_length", "length_cut", "phones48", "phones39",
                 "sample_rate", "window_length", "hop", "n_fft", "window",
                 "fingerprint"])


def network_inputs(data, split):
  """float32 (N, freq, frames): magnitudes minus the training-set mean."""
  return data.split(split).spectrograms - data.mean_spectrogram


def stft_settings(data) -> dict:
  """The STFT that made `data`'s spectrograms, as keyword arguments.

  For ops.stft / istft / griffin_lim, the waveform metrics
  (metrics.waveform_mxcorr(..., **stft_settings(data))) and make_chirps.
  """
  return dict(window_length=data.window_length, hop=data.hop,
              n_fft=data.n_fft, window=data.window)


def stft_magnitudes(waveforms, window_length=WINDOW_LENGTH, hop=HOP,
                    n_fft=N_FFT, chunk=1024, window=WINDOW):
  """|STFT| of float32 (N, L) signals -> float32 (N, n_fft // 2 + 1, F).

  Uses `recon_jax.ops.stft` in fixed-size chunks (one compilation).
  """
  window_length, hop, n_fft, window = ops.check_stft_settings(
      window_length, hop, n_fft, window)
  waveforms = np.asarray(waveforms, np.float32)
  if waveforms.ndim != 2:
    raise ValueError(f"stft_magnitudes: want waveforms (N, L), got shape "
                     f"{waveforms.shape}")
  n, length = waveforms.shape
  frames = ops.stft_num_frames(length, window_length, hop)
  out = np.empty((n, n_fft // 2 + 1, frames), np.float32)
  chunk = max(1, min(chunk, n))
  for i in range(0, n, chunk):
    block = waveforms[i:i + chunk]
    k = len(block)
    if k < chunk:
      block = np.pad(block, ((0, chunk - k), (0, 0)))
    spec = ops.stft(block, window_length=window_length, hop=hop, n_fft=n_fft,
                    window=window)
    out[i:i + k] = np.abs(np.asarray(spec))[:k]
  return out


def pad_phones(waveforms, max_length, scale):
  """List of int16 (length_i,) -> float32 (N, max_length) times `scale`."""
  out = np.zeros((len(waveforms), max_length), np.float32)
  for i, w in enumerate(waveforms):
    out[i, :len(w)] = w.astype(np.float32) * scale
  return out


def _listing_key(root, settings, drop_sa):
  h = hashlib.sha256()
  h.update(json.dumps([_CACHE_VERSION, settings], sort_keys=True).encode())
  for split in timit.SPLITS:
    for u in timit.list_utterances(root, split, drop_sa=drop_sa):
      for path in (u["wav"], u["phn"]):
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0"
                 f"{st.st_mtime_ns}\n".encode())
  return h.hexdigest()[:20]


def default_cache_dir():
  return os.environ.get("RECON_JAX_CACHE",
                        os.path.join(os.path.expanduser("~"), ".cache",
                                     "recon_jax"))


def _check_classes(labels, names, where):
  counts = np.bincount(labels, minlength=len(names))
  missing = [names[i] for i in np.flatnonzero(counts == 0)]
  if missing:
    raise CorpusError(f"{where}: no examples of class(es) {missing} (of the "
                      f"{len(names)} training classes)")


def check_settings(percentile=95.0, window_length=WINDOW_LENGTH, hop=HOP,
                   n_fft=N_FFT, window=WINDOW, waveform_scale=1.0 / 32768.0,
                   sample_rate=16000):
  """Checks load_phone_data's settings; returns them as a JSON-able dict.

  Raises:
    ValueError naming the setting and its allowed range.
  """
  if (isinstance(percentile, bool) or not isinstance(percentile, numbers.Real)
      or not 0 < percentile <= 100):
    raise ValueError(f"percentile={percentile!r}: must be in (0, 100] (the "
                     "TRAIN phone-length percentile above which phones are "
                     "dropped; 95 in the thesis)")
  window_length, hop, n_fft, window = ops.check_stft_settings(
      window_length, hop, n_fft, window)
  if (isinstance(waveform_scale, bool) or
      not isinstance(waveform_scale, numbers.Real) or
      not np.isfinite(waveform_scale) or waveform_scale <= 0):
    raise ValueError(f"waveform_scale={waveform_scale!r}: must be a finite "
                     "number > 0")
  if (isinstance(sample_rate, bool) or
      not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0):
    raise ValueError(f"sample_rate={sample_rate!r}: must be an integer > 0")
  return dict(percentile=float(percentile), window_length=window_length,
              hop=hop, n_fft=n_fft,
              window=window if isinstance(window, str) else list(window),
              waveform_scale=float(waveform_scale),
              sample_rate=int(sample_rate))


def load_phone_data(root, *, percentile=95.0, window_length=WINDOW_LENGTH,
                    hop=HOP, n_fft=N_FFT, window=WINDOW,
                    waveform_scale=1.0 / 32768.0, sample_rate=16000,
                    drop_sa=True, require_all_classes=True, cache=True,
                    cache_dir=None):
  """Reads a TIMIT-layout corpus into the thesis's phone arrays
  (docs/methods.md, A1).

  Args:
    root: corpus directory (real TIMIT or `make_timit_corpus` output).
    percentile: TRAIN phone-length percentile in (0, 100] above which phones
      are dropped (in both splits).
    window_length, hop, n_fft: STFT settings (16.7 ms window, 9.1 ms hop,
      i.e. 7.6 ms overlap, 400 points).
    window: the STFT window (ops.stft): a name (default "hamming", MATLAB's
      symmetric Hamming as the thesis's spectrogram) or an array of
      window_length values.
    waveform_scale: int16 samples are multiplied by this (default: [-1, 1);
      other WAV formats are read in the same units, see sphere.read_audio).
    sample_rate: required sample rate of every file.
    drop_sa: leave out the SA* sentences.
    require_all_classes: raise if a split lacks one of the 48 classes.
    cache: read/write the feature cache.
    cache_dir: where the .npz cache lives (default $RECON_JAX_CACHE or
      ~/.cache/recon_jax).

  Returns:
    PhoneData.

  Raises:
    ValueError naming a bad setting (before any file is read);
    CorpusError / FileNotFoundError naming the offending file or directory.
  """
  settings = check_settings(percentile, window_length, hop, n_fft, window,
                            waveform_scale, sample_rate)
  settings["drop_sa"] = bool(drop_sa)
  window = ops.check_stft_settings(window_length, hop, n_fft, window)[3]
  names48, names39 = phones.phones48(), phones.phones39()
  to39 = phones.class_ids_48_to_39()
  cache_path = None
  if cache:
    key = _listing_key(root, settings, drop_sa)
    cache_path = os.path.join(cache_dir or default_cache_dir(),
                              f"timit_phones_{key}.npz")
    if os.path.exists(cache_path):
      try:
        with np.load(cache_path) as z:
          arrays = {k: z[k] for k in z.files}
        if require_all_classes:  # The cache may come from a lax call.
          for split in timit.SPLITS:
            _check_classes(arrays[f"{split.lower()}_labels48"], names48,
                           timit.find_split_dir(root, split))
        return _from_arrays(arrays, names48, names39, settings, window)
      except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        logging.warning("Ignoring unreadable feature cache %s (%s)", cache_path,
                        e)

  raw = {}
  for split in timit.SPLITS:
    waves, labels48, _, _ = timit.read_phones(root, split, sample_rate, drop_sa)
    raw[split] = (waves, labels48,
                  np.array([len(w) for w in waves], np.int32))
  length_cut = float(np.percentile(raw["TRAIN"][2], percentile))
  kept = {s: r[2] <= length_cut for s, r in raw.items()}
  max_length = int(max(r[2][kept[s]].max() for s, r in raw.items()))
  if max_length < window_length:
    raise CorpusError(f"{root}: longest kept phone has {max_length} samples, "
                      f"shorter than the STFT window ({window_length})")
  arrays = dict(max_length=np.int64(max_length),
                length_cut=np.float64(length_cut))
  for split, (waves, labels48, lengths) in raw.items():
    keep = kept[split]
    labels48 = labels48[keep]
    if require_all_classes:
      _check_classes(labels48, names48, timit.find_split_dir(root, split))
    waveforms = pad_phones([w for w, k in zip(waves, keep) if k], max_length,
                           waveform_scale)
    s = split.lower()
    arrays[f"{s}_waveforms"] = waveforms
    arrays[f"{s}_spectrograms"] = stft_magnitudes(waveforms, window_length, hop,
                                                  n_fft, window=window)
    arrays[f"{s}_labels48"] = labels48
    arrays[f"{s}_labels39"] = to39[labels48]
    arrays[f"{s}_lengths"] = lengths[keep]
  arrays["mean_spectrogram"] = arrays["train_spectrograms"].mean(
      axis=0, dtype=np.float64).astype(np.float32)
  if cache_path:
    try:
      _write_cache(cache_path, arrays)
    except OSError as e:  # A read-only cache directory costs speed, not data.
      logging.warning("Could not write feature cache %s (%s)", cache_path, e)
  return _from_arrays(arrays, names48, names39, settings, window)


def _write_cache(path, arrays):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # Write then rename, so a crash never leaves a half-written cache.
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


_ARRAY_KEYS = tuple(f"{s}_{k}" for s in ("train", "test")
                    for k in ("waveforms", "spectrograms", "labels48",
                              "labels39", "lengths")) + (
                                  "mean_spectrogram", "max_length",
                                  "length_cut")


def data_fingerprint(arrays, settings) -> str:
  """A short hash of the phone arrays and the settings that made them."""
  missing = [k for k in _ARRAY_KEYS if k not in arrays]
  if missing:
    raise KeyError(f"feature arrays lack {missing}")
  return provenance.fingerprint_json({
      "version": _CACHE_VERSION, "settings": settings,
      "arrays": provenance.fingerprint_arrays(
          {k: np.asarray(arrays[k]) for k in _ARRAY_KEYS})})


def _from_arrays(a, names48, names39, settings, window):
  splits = {
      s: PhoneSplit(waveforms=a[f"{s}_waveforms"],
                    spectrograms=a[f"{s}_spectrograms"],
                    labels48=a[f"{s}_labels48"], labels39=a[f"{s}_labels39"],
                    lengths=a[f"{s}_lengths"])
      for s in ("train", "test")
  }
  return PhoneData(train=splits["train"], test=splits["test"],
                   mean_spectrogram=a["mean_spectrogram"],
                   max_length=int(a["max_length"]),
                   length_cut=float(a["length_cut"]), phones48=names48,
                   phones39=names39, sample_rate=settings["sample_rate"],
                   window_length=settings["window_length"],
                   hop=settings["hop"], n_fft=settings["n_fft"],
                   window=window, fingerprint=data_fingerprint(a, settings))
