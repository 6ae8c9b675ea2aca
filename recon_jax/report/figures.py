"""Figures: spectrogram grids, confusion matrices, histograms, curves.

Every function writes one PNG and returns its path; matplotlib runs on the
non-interactive Agg backend.
"""
import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return path


def _grid(path, rows, row_labels, col_labels, title, cell_size, draw):
  """A rows x columns figure; draw(ax, i, j) fills cell (i, j) of rows[i][j].

  Cells beyond a row's end or holding None are left blank.
  """
  n_rows = len(rows)
  n_cols = max(len(r) for r in rows)
  fig, axes = plt.subplots(n_rows, n_cols,
                           figsize=(cell_size[0] * n_cols + 1,
                                    cell_size[1] * n_rows + 0.5),
                           squeeze=False)
  for i, row in enumerate(rows):
    for j in range(n_cols):
      ax = axes[i, j]
      if j < len(row) and row[j] is not None:
        draw(ax, i, j)
      else:
        ax.axis("off")
      if i == 0 and j < len(col_labels):
        ax.set_title(col_labels[j], fontsize=8)
      if j == 0 and i < len(row_labels):
        ax.set_ylabel(row_labels[i], fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def spectrogram_grid(path: str, rows: Sequence[Sequence[np.ndarray]],
                     row_labels: Sequence[str], col_labels: Sequence[str],
                     title: str = "", log_scale: bool = False,
                     shared_scale: bool = False) -> str:
  """A grid of (freq, time) spectrograms, low frequencies at the bottom.

  Args:
    rows: rows[i][j] a (F, T) array or None (blank cell).
    log_scale: show log(1 + max(x, 0)).
    shared_scale: one colour range per row (compare intensities across a
      row, as the thesis's Fig. B.1) instead of one per image.
  """
  images = [[None if a is None else
             (np.log1p(np.maximum(a, 0)) if log_scale else np.asarray(a))
             for a in row] for row in rows]
  ranges = []
  for row in images:
    present = [a for a in row if a is not None]
    ranges.append((min(float(a.min()) for a in present),
                   max(float(a.max()) for a in present)) if present else (0, 1))

  def draw(ax, i, j):
    ax.set_xticks([])
    ax.set_yticks([])
    kw = dict(vmin=ranges[i][0], vmax=ranges[i][1]) if shared_scale else {}
    ax.imshow(images[i][j], origin="lower", aspect="auto", cmap="magma", **kw)

  return _grid(path, images, row_labels, col_labels, title, (1.6, 1.8), draw)


def confusion_matrix_figure(path: str, confusion: np.ndarray,
                            class_names: Sequence[str], title: str = "") -> str:
  """Row-normalised confusion matrix (rows: true class)."""
  cm = np.asarray(confusion, np.float64)
  cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
  n = len(class_names)
  fig, ax = plt.subplots(figsize=(0.22 * n + 2, 0.22 * n + 1.5))
  im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
  ax.set_xticks(range(n))
  ax.set_yticks(range(n))
  ax.set_xticklabels(class_names, rotation=90, fontsize=6)
  ax.set_yticklabels(class_names, fontsize=6)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  fig.colorbar(im, ax=ax, fraction=0.04)
  ax.set_title(title, fontsize=9)
  return _save(fig, path)


def histogram_grid(path: str, rows: Sequence[Sequence[np.ndarray]],
                   row_labels: Sequence[str], col_labels: Sequence[str],
                   title: str = "", bins: int = 40) -> str:
  """Intensity histograms (thesis Fig. 10): rows[i][j] any array, or None."""

  def draw(ax, i, j):
    ax.hist(np.ravel(rows[i][j]), bins=bins, color="C0")
    ax.tick_params(labelsize=6)

  return _grid(path, rows, row_labels, col_labels, title, (1.8, 1.5), draw)


def measure_curves(path: str, layers: Sequence[int],
                   panels: Sequence[tuple[str, dict]],
                   thresholds: dict | None = None, title: str = "") -> str:
  """One panel per measure: a line per series over layers (thesis Fig. 9).

  Args:
    panels: (measure name, {series label: values per layer}) per panel.
    thresholds: {measure name: y value} drawn as a dashed line.
  """
  fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.4 * len(panels)),
                           squeeze=False)
  for ax, (name, series) in zip(axes[:, 0], panels):
    for k, (label, values) in enumerate(series.items()):
      style = "--" if "chirp" in label else "-"
      ax.plot(layers, values, style, marker="o", label=label,
              color=f"C{k // 2 if len(series) > 1 else 0}")
    if thresholds and name in thresholds:
      ax.axhline(thresholds[name], color="k", ls=":", lw=1, label="threshold")
    ax.set_xticks(list(layers))
    ax.set_xticklabels([f"L{l}" for l in layers])
    ax.set_ylabel(name)
    ax.legend(fontsize=6, ncol=2)
  if title:
    fig.suptitle(title, fontsize=10)
  return _save(fig, path)
