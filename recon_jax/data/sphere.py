"""NIST SPHERE (TIMIT's .WAV) and RIFF WAV audio files.

Only what TIMIT uses: one channel of 16-bit linear PCM in a 1024-byte header,
byte order from `sample_byte_format` ("01" little-endian, "10" big-endian).
Compressed SPHERE ('shorten', 'wavpack', ...) is refused with an error saying
how to decompress it.
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
        f"{path}: compressed SPHERE (sample_coding={coding!r}); decompress it "
        "first, e.g. `sph2pipe -f wav` or `w_decode -o pcm`")
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
  return samples, int(fields["sample_rate"])


def read_audio(path, sample_rate=16000):
  """Reads a TIMIT waveform, NIST SPHERE or RIFF WAV, as int16 (T,).

  Raises:
    FileNotFoundError if it is missing; CorpusError naming the file if it is
    neither format, corrupt, not `sample_rate` Hz, or silent (all zeros).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: waveform file missing")
  with open(path, "rb") as f:
    magic = f.read(8)
  if magic.startswith(b"NIST_1A"):
    samples, rate = read_sphere(path)
  elif magic.startswith(b"RIFF"):
    try:
      samples, rate = soundfile.read(path, dtype="int16", always_2d=True)
    except RuntimeError as e:  # soundfile errors subclass it.
      raise CorpusError(f"{path}: corrupt RIFF WAV ({e})") from None
    if samples.shape[1] != 1:
      raise CorpusError(f"{path}: {samples.shape[1]} channels, want 1")
    samples = samples[:, 0]
  else:
    raise CorpusError(f"{path}: neither NIST SPHERE nor RIFF WAV "
                      f"(starts with {magic!r})")
  if rate != sample_rate:
    raise CorpusError(f"{path}: sample rate {rate} Hz, want {sample_rate}")
  if not samples.size or not np.any(samples):
    raise CorpusError(f"{path}: silent file (all {samples.size} samples zero)")
  return samples
