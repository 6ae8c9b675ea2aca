"""NIST SPHERE (TIMIT's .WAV) and RIFF WAV audio files.

SPHERE: what TIMIT uses, one channel of 16-bit linear PCM after a 1024-byte
header, byte order from `sample_byte_format` ("01" little-endian, "10"
big-endian), checked against the data (a wrong byte order would otherwise
train on byte-swapped noise). Compressed SPHERE ('shorten', 'wavpack', ...)
is refused with an error saying how to decompress it.

RIFF WAV: 16-bit PCM is read exactly as int16; 8/24/32-bit PCM, 32/64-bit
float and mu-/A-law are decoded to float32 in the same units (full scale
+-32768, so a float sample 0.5 reads as 16384.0 and `waveform_scale`
1/32768 maps both to 0.5); lossy codecs (ADPCM, GSM, MP3) are refused by
name.
"""
import os

import numpy as np
import soundfile

from recon_jax.data.errors import CorpusError

SPHERE_MAGIC = b"NIST_1A\n"
HEADER_SIZE = 1024


def write_sphere(path, samples, sample_rate=16000, utterance_id=None):
  """Writes int16 samples (T,) as a TIMIT-style NIST SPHERE file."""
  samples = np.asarray(samples)
  if samples.ndim != 1 or samples.dtype != np.int16:
    raise ValueError(f"{path}: want int16 (T,) samples, got {samples.dtype} "
                     f"{samples.shape}")
  fields = [("database_id", "-s5", "TIMIT"), ("database_version", "-s3", "1.0")]
  if utterance_id:
    fields.append(("utterance_id", f"-s{len(utterance_id)}", utterance_id))
  fields += [
      ("channel_count", "-i", 1),
      ("sample_count", "-i", len(samples)),
      ("sample_rate", "-i", int(sample_rate)),
      ("sample_min", "-i", int(samples.min()) if len(samples) else 0),
      ("sample_max", "-i", int(samples.max()) if len(samples) else 0),
      ("sample_n_bytes", "-i", 2),
      ("sample_byte_format", "-s2", "01"),
      ("sample_sig_bits", "-i", 16),
  ]
  text = f"NIST_1A\n{HEADER_SIZE:7d}\n" + "".join(
      f"{name} {kind} {value}\n" for name, kind, value in fields) + "end_head\n"
  header = text.encode("ascii").ljust(HEADER_SIZE, b" ")
  with open(path, "wb") as f:
    f.write(header)
    f.write(samples.astype("<i2").tobytes())


def read_sphere_header(path, data):
  """Parses a SPHERE header from the file's bytes; returns (fields, size)."""
  if not data.startswith(SPHERE_MAGIC):
    raise CorpusError(f"{path}: not a NIST SPHERE file (no NIST_1A magic)")
  try:
    size = int(data[8:16].split(b"\n")[0])
  except ValueError:
    raise CorpusError(f"{path}: corrupt SPHERE header (bad header size "
                      f"{data[8:16]!r})") from None
  if size < 16 or size % 1024 or len(data) < size:
    raise CorpusError(f"{path}: truncated or corrupt SPHERE header (header size "
                      f"{size}, file has {len(data)} bytes)")
  text = data[:size].decode("ascii", "replace")
  if "end_head" not in text:
    raise CorpusError(f"{path}: corrupt SPHERE header (no end_head)")
  fields = {}
  for line in text.split("\n")[2:]:
    line = line.strip()
    if line == "end_head":
      break
    if not line or line.startswith(";"):
      continue
    parts = line.split(" ", 2)
    if len(parts) != 3:
      raise CorpusError(f"{path}: corrupt SPHERE header line {line!r}")
    name, kind, value = parts
    try:
      if kind == "-i":
        fields[name] = int(value)
      elif kind == "-r":
        fields[name] = float(value)
      elif kind.startswith("-s"):
        fields[name] = value[:int(kind[2:])]
      else:
        raise ValueError(kind)
    except ValueError:
      raise CorpusError(f"{path}: corrupt SPHERE header line {line!r}") from None
  return fields, size


def read_sphere(path):
  """Reads a 16-bit PCM NIST SPHERE file.

  Returns:
    samples: int16 (T,).
    sample_rate: int.

  Raises:
    CorpusError naming the file: not SPHERE, corrupt or truncated header or
    data, compressed ('shorten' etc.) data, not 16-bit mono.
  """
  with open(path, "rb") as f:
    data = f.read()
  fields, size = read_sphere_header(path, data)
  coding = str(fields.get("sample_coding", "pcm")).lower()
  if coding != "pcm":
    raise CorpusError(
        f"{path}: compressed SPHERE or not linear PCM (sample_coding="
        f"{coding!r}); convert it to 16-bit PCM first, e.g. `sph2pipe -f "
        "wav` or `w_decode -o pcm`")
  for name in ("sample_count", "sample_rate"):
    if name not in fields:
      raise CorpusError(f"{path}: corrupt SPHERE header (no {name})")
  if fields.get("channel_count", 1) != 1:
    raise CorpusError(f"{path}: {fields['channel_count']} channels, want 1")
  if fields.get("sample_n_bytes", 2) != 2:
    raise CorpusError(f"{path}: sample_n_bytes={fields['sample_n_bytes']}, "
                      "want 2 (16-bit PCM)")
  order = fields.get("sample_byte_format", "01")
  if order not in ("01", "10"):
    raise CorpusError(f"{path}: unknown sample_byte_format {order!r}")
  count = fields["sample_count"]
  body = data[size:]
  if len(body) < 2 * count:
    raise CorpusError(f"{path}: truncated: header says {count} samples, file "
                      f"holds {len(body) // 2}")
  dtype = "<i2" if order == "01" else ">i2"
  samples = np.frombuffer(body[:2 * count], dtype=dtype).astype(np.int16)
  _check_byte_order(path, samples, fields, order)
  return samples, int(fields["sample_rate"])


def _roughness(x):
  """Mean squared first difference over mean square: ~2 for white noise."""
  x = x.astype(np.float64)
  power = np.mean(x * x)
  return float(np.mean(np.diff(x)**2) / power) if power > 0 else 0.0


def _check_byte_order(path, samples, fields, order):
  """Refuses samples that the header's byte order cannot have produced.

  With the header's sample_min / sample_max (TIMIT has them), every sample
  must lie in that range. Without them, data that is as rough as white noise
  while its byte-swapped reading is smooth like speech is refused (16-bit
  audio read in the wrong byte order is noise dominated by the low bytes).
  """
  if samples.size < 2:
    return
  swapped = samples.byteswap()
  other = "10" if order == "01" else "01"
  lo, hi = int(samples.min()), int(samples.max())
  smin, smax = fields.get("sample_min"), fields.get("sample_max")
  if isinstance(smin, int) and isinstance(smax, int):
    if smin > smax:
      raise CorpusError(f"{path}: corrupt SPHERE header (sample_min={smin} > "
                        f"sample_max={smax})")
    if lo < smin or hi > smax:
      fits = smin <= int(swapped.min()) and int(swapped.max()) <= smax
      raise CorpusError(
          f"{path}: samples read with sample_byte_format={order!r} span "
          f"[{lo}, {hi}], outside the header's sample_min={smin}, "
          f"sample_max={smax}: "
          + (f"the data is in the other byte order ({other!r}); fix the "
             "header's sample_byte_format" if fits else
             "the header does not describe this data"))
    return
  rough, rough_swapped = _roughness(samples), _roughness(swapped)
  if rough > 1.0 and rough_swapped < 0.5:
    raise CorpusError(
        f"{path}: samples read with sample_byte_format={order!r} look like "
        f"white noise (roughness {rough:.2f}) while the other byte order "
        f"({other!r}) looks like audio ({rough_swapped:.2f}); the header's "
        "byte order is probably wrong")


# RIFF WAV subtypes (soundfile's names) read through libsndfile's float
# decoding; PCM_16 is read as int16 directly.
_DECODED_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE",
                     "ULAW", "ALAW")


def _read_riff(path):
  """RIFF WAV -> (int16 samples or float32 in int16 units, sample rate)."""
  try:
    info = soundfile.info(path)
  except RuntimeError as e:  # soundfile errors subclass it.
    raise CorpusError(f"{path}: corrupt RIFF WAV ({e})") from None
  if info.channels != 1:
    raise CorpusError(f"{path}: {info.channels} channels, want 1")
  subtype = info.subtype
  if subtype != "PCM_16" and subtype not in _DECODED_SUBTYPES:
    raise CorpusError(
        f"{path}: RIFF WAV with {subtype} ({info.subtype_info}) samples is not "
        f"supported; want linear PCM (8/16/24/32-bit), float, or mu/A-law: "
        "convert it, e.g. `sox in.wav -e signed -b 16 out.wav`")
  try:
    if subtype == "PCM_16":
      samples, rate = soundfile.read(path, dtype="int16", always_2d=True)
    else:
      samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
      samples = (samples * 32768.0).astype(np.float32)
  except RuntimeError as e:
    raise CorpusError(f"{path}: corrupt RIFF WAV ({e})") from None
  if not np.all(np.isfinite(samples)):
    raise CorpusError(f"{path}: {subtype} WAV holds NaN or Inf samples")
  return samples[:, 0], rate


def read_audio(path, sample_rate=16000):
  """Reads a TIMIT waveform, NIST SPHERE or RIFF WAV.

  Returns:
    (T,) samples: int16 for 16-bit PCM (SPHERE or RIFF); float32 in the
    same units (full scale +-32768) for the other RIFF sample formats.

  Raises:
    FileNotFoundError if it is missing; CorpusError naming the file if it is
    neither format, corrupt, in an unsupported sample format (named), in a
    byte order its header contradicts, not `sample_rate` Hz, or silent (all
    zeros).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: waveform file missing")
  with open(path, "rb") as f:
    magic = f.read(8)
  if magic.startswith(b"NIST_1A"):
    samples, rate = read_sphere(path)
  elif magic.startswith(b"RIFF"):
    samples, rate = _read_riff(path)
  else:
    raise CorpusError(f"{path}: neither NIST SPHERE nor RIFF WAV "
                      f"(starts with {magic!r})")
  if rate != sample_rate:
    raise CorpusError(f"{path}: sample rate {rate} Hz, want {sample_rate}")
  if not samples.size or not np.any(samples):
    raise CorpusError(f"{path}: silent file (all {samples.size} samples zero)")
  return samples
