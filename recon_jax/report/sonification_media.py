"""Media of the sonification analyses: clips as WAV, spectrograms as PNG.

Everything here only writes (atomically: a temporary file, then a rename),
from waveforms the analyses computed:
  write_clip_wav              one clip as 16-bit mono WAV
  log_spectrogram             the (Hz, s, dB) spectrogram every picture shows
  spectrogram_pairs_figure    input | sonification side by side, one row per
                              pair (the paper's Figs. 1-3)
  write_spectrogram_thumbnail one clip's spectrogram at an exact pixel size
                              (the offline page shows these)
  write_clip_media            a clip's three WAVs and two thumbnails, giving
                              the clip entry of the page's manifest
Spectrograms are magnitudes in dB relative to the clip's own peak (0 dB),
floored at -`dynamic_range_db`, so a quiet sonification and a loud input
read the same way; the frequency axis is in Hz up to the Nyquist frequency.
"""
import io
import os
import re
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import soundfile as sf  # noqa: E402

from recon_jax import provenance  # noqa: E402

SAMPLE_RATE = 8000
DYNAMIC_RANGE_DB = 80.0
_CMAP = "magma"


def _waveform(x, name="waveform") -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 1:
    raise ValueError(f"{name} must be 1-D (samples,), got shape {x.shape}")
  if x.size == 0:
    raise ValueError(f"{name} is empty")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} holds NaN/Inf")
  return x


def write_clip_wav(path: str, waveform: np.ndarray,
                   sample_rate: int = SAMPLE_RATE, peak: float | None = 0.9,
                   reference: np.ndarray | None = None) -> str:
  """Writes one clip as a mono 16-bit WAV, atomically.

  Args:
    path: where; its folder is made.
    waveform: (L,) float samples; L samples are written, exactly.
    sample_rate: Hz.
    peak: the largest |sample| written (silence stays silence); None writes
      the samples as they are (they must lie in [-1, 1]).
    reference: scale `waveform` by the factor that brings
      max(|reference|, |waveform|) to `peak`, instead of its own peak: a
      residual x - s written with reference=x keeps its level relative to
      the input x, so one hears how much of the input is left.

  Returns:
    The path written.
  """
  x = _waveform(waveform)
  if peak is None:
    if reference is not None:
      raise ValueError("reference needs a peak to scale to")
    if np.max(np.abs(x)) > 1.0:
      raise ValueError(f"refusing to write {path}: samples exceed [-1, 1] "
                       "and peak=None (would clip)")
  else:
    if not 0 < peak <= 1:
      raise ValueError(f"peak must be in (0, 1], got {peak}")
    top = np.max(np.abs(x))
    if reference is not None:
      top = max(top, np.max(np.abs(_waveform(reference, "reference"))))
    if top > 0:
      x = x * (peak / top)
  buf = io.BytesIO()
  sf.write(buf, x, int(sample_rate), format="WAV", subtype="PCM_16")
  return provenance.write_bytes_atomic(path, buf.getvalue())


def log_spectrogram(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE,
                    nperseg: int = 256, overlap: float = 0.75,
                    dynamic_range_db: float = DYNAMIC_RANGE_DB):
  """The magnitude spectrogram in dB relative to its peak.

  Hann window of `nperseg` samples (32 ms at 8 kHz), hop
  nperseg * (1 - overlap); shorter clips use one window of their length.

  Returns:
    (freqs_hz (F,), times_s (T,), db (F, T)) with db in
    [-dynamic_range_db, 0]; an all-zero clip is -dynamic_range_db
    everywhere.
  """
  x = _waveform(waveform)
  n = min(int(nperseg), x.size)
  freqs, times, mag = scipy.signal.spectrogram(
      x, fs=sample_rate, window="hann", nperseg=n,
      noverlap=int(round(n * overlap)), mode="magnitude")
  top = float(mag.max())
  if top <= 0:
    return freqs, times, np.full(mag.shape, -float(dynamic_range_db))
  db = 20.0 * np.log10(np.maximum(mag / top, 10 ** (-dynamic_range_db / 20)))
  return freqs, times, db


def _draw_spectrogram(ax, waveform, sample_rate, dynamic_range_db):
  freqs, _, db = log_spectrogram(waveform, sample_rate,
                                 dynamic_range_db=dynamic_range_db)
  duration = len(waveform) / sample_rate
  return ax.imshow(db, origin="lower", aspect="auto", cmap=_CMAP,
                   vmin=-dynamic_range_db, vmax=0.0,
                   extent=(0.0, duration, 0.0, float(freqs[-1])),
                   interpolation="nearest")


def _png_bytes(fig, **kwargs) -> bytes:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", **kwargs)
  plt.close(fig)
  return buf.getvalue()


def spectrogram_pairs_figure(
    path: str, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    sample_rate: int = SAMPLE_RATE, row_labels: Sequence[str] = (),
    column_titles: Sequence[str] = ("input", "sonification"),
    title: str = "", dynamic_range_db: float = DYNAMIC_RANGE_DB) -> str:
  """Input and sonification spectrograms side by side (paper Figs. 1-3).

  Args:
    path: the PNG to write.
    pairs: one (input, sonification) pair of (L,) waveforms per row.
    row_labels: one per row (e.g. "L3 map 17 - clip 4f2a"), shown as the
      row's y label; may be empty.
    column_titles: the two panel titles of every row.
    title: the figure's title.

  Returns:
    The path written.
  """
  if not pairs:
    raise ValueError("spectrogram_pairs_figure needs at least one pair")
  if row_labels and len(row_labels) != len(pairs):
    raise ValueError(f"{len(row_labels)} row labels for {len(pairs)} pairs")
  n = len(pairs)
  fig, axes = plt.subplots(n, 2, figsize=(9.0, 2.3 * n + 0.6), squeeze=False,
                           sharey=True, layout="constrained")
  im = None
  for i, pair in enumerate(pairs):
    if len(pair) != 2:
      raise ValueError(f"pair {i} must be (input, sonification)")
    for j, wave in enumerate(pair):
      ax = axes[i, j]
      im = _draw_spectrogram(ax, _waveform(wave, f"pairs[{i}][{j}]"),
                             sample_rate, dynamic_range_db)
      ax.set_title(column_titles[j] + ("  (silent)" if not np.any(wave)
                                       else ""), fontsize=9)
      ax.tick_params(labelsize=7)
      if i == n - 1:
        ax.set_xlabel("time (s)", fontsize=8)
    label = "frequency (Hz)"
    if row_labels:
      label = f"{row_labels[i]}\n{label}"
    axes[i, 0].set_ylabel(label, fontsize=8)
  bar = fig.colorbar(im, ax=axes, fraction=0.03, pad=0.01)
  bar.set_label("dB re. clip peak", fontsize=8)
  bar.ax.tick_params(labelsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  return provenance.write_bytes_atomic(path, _png_bytes(fig, dpi=110))


def write_spectrogram_thumbnail(
    path: str, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE,
    width: int = 440, height: int = 160, axes: bool = True,
    dynamic_range_db: float = DYNAMIC_RANGE_DB) -> str:
  """One clip's spectrogram as a PNG of exactly width x height pixels.

  Args:
    axes: small kHz and seconds tick labels (no title: the page labels it);
      False fills the whole picture with the spectrogram.

  Returns:
    The path written.
  """
  x = _waveform(waveform)
  dpi = 100
  fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
  if axes:
    left, bottom = 34 / width, 20 / height
    ax = fig.add_axes((left, bottom, 1 - left - 16 / width,
                       1 - bottom - 6 / height))
  else:
    ax = fig.add_axes((0, 0, 1, 1))
  _draw_spectrogram(ax, x, sample_rate, dynamic_range_db)
  if axes:
    nyquist = sample_rate / 2
    ticks = np.arange(0, nyquist + 1, 1000)
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t / 1000:g}k" if t else "0" for t in ticks])
    ax.tick_params(labelsize=7, length=2, pad=1)
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}s"))
  else:
    ax.axis("off")
  return provenance.write_bytes_atomic(path, _png_bytes(fig, dpi=dpi))


def _safe_name(clip_id: str) -> str:
  name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(clip_id)).strip("._")
  if not name:
    raise ValueError(f"clip id {clip_id!r} gives an empty file name")
  return name


def write_clip_media(out_dir: str, rel_dir: str, clip_id: str,
                     inputs: np.ndarray, sonification: np.ndarray,
                     residual: np.ndarray,
                     sample_rate: int = SAMPLE_RATE) -> dict:
  """Writes one clip's WAVs and thumbnails; returns its manifest entry.

  Files, under out_dir/rel_dir, named from the clip id:
  <id>_input.wav, <id>_sonification.wav, <id>_residual.wav (on the input's
  scale, see write_clip_wav), <id>_input.png, <id>_sonification.png.
  The input and the sonification are each scaled to peak 0.9.

  Args:
    out_dir: the page's folder (manifest paths are relative to it).
    rel_dir: the clip's folder relative to out_dir, "/"-separated, e.g.
      "supervised/L03/m017".
    inputs, sonification, residual: (L,) waveforms of the same length.

  Returns:
    {"clip", "input_wav", "sonification_wav", "residual_wav", "input_png",
     "sonification_png", "duration_s"}, as sonification_page expects.
  """
  x = _waveform(inputs, "inputs")
  s = _waveform(sonification, "sonification")
  r = _waveform(residual, "residual")
  if not x.shape == s.shape == r.shape:
    raise ValueError(f"clip {clip_id!r}: input {x.shape}, sonification "
                     f"{s.shape} and residual {r.shape} differ in length")
  stem = f"{rel_dir.strip('/')}/{_safe_name(clip_id)}" if rel_dir.strip(
      "/") else _safe_name(clip_id)
  entry = {"clip": str(clip_id)}

  def at(kind, ext):
    rel = f"{stem}_{kind}.{ext}"
    return rel, os.path.join(out_dir, *rel.split("/"))

  for kind, wave, ref in (("input", x, None), ("sonification", s, None),
                          ("residual", r, x)):
    rel, full = at(kind, "wav")
    write_clip_wav(full, wave, sample_rate, reference=ref)
    entry[f"{kind}_wav"] = rel
  for kind, wave in (("input", x), ("sonification", s)):
    rel, full = at(kind, "png")
    write_spectrogram_thumbnail(full, wave, sample_rate)
    entry[f"{kind}_png"] = rel
  entry["duration_s"] = x.size / sample_rate
  return entry
