"""Writing audio for people to listen to."""
import io
import os

import numpy as np
import soundfile as sf

from recon_jax import provenance


def write_wav(path: str, waveform: np.ndarray, sample_rate: int,
              peak: float = 0.9) -> str:
  """Writes a mono 16-bit WAV, scaled so its peak is `peak` (silence stays 0).

  Args:
    waveform: (L,) float samples.

  Returns:
    The path written.
  """
  x = np.asarray(waveform, np.float64)
  if x.ndim != 1:
    raise ValueError(f"write_wav expects a 1-D waveform, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"refusing to write {path}: waveform holds NaN/Inf")
  top = np.max(np.abs(x)) if x.size else 0.0
  if top > 0:
    x = x * (peak / top)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  buf = io.BytesIO()  # Python writes the file: a full disk is an OSError.
  sf.write(buf, x, int(sample_rate), format="WAV", subtype="PCM_16")
  return provenance.write_bytes_atomic(path, buf.getvalue())
