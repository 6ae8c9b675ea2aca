"""What every sonification analysis shares: the clips analysed, the runs'
seeds, batching by length, each analysis' folder with its record
(made_by.json) and results (results.json), and sonifying chosen maps.

An analysis folder records what made it (data fingerprint, the config's
fields, the parameters' fingerprints) and its results; a rerun with the
same inputs returns the saved results, one with other inputs stops with a
ProvenanceError.
"""
import dataclasses
import fnmatch
import glob
import os
import re
from typing import Any

import numpy as np
import tqdm

from recon_jax import analysis
from recon_jax import inversion
from recon_jax import provenance
from recon_jax.models import cnn12
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup

SAMPLE_RATE = 8000
RESULTS_JSON = "results.json"
MADE_BY = "made_by.json"
RUN_FIELDS = ("supervised", "contrastive", "probe", "finetune")
# Which config block records each analysis' settings (besides the shared
# split, max_clips and layers).
CONFIG_BLOCKS = {"topk": ("topk",), "residual_test": ("statistics",),
                 "coherence": ("coherence", "statistics"),
                 "active_maps": ("active_maps", "statistics"),
                 "feature_evolution": ("evolution",),
                 "layer_importance": ("layer_importance",),
                 "sonification_page": ("page", "topk")}


# --- Inputs ------------------------------------------------------------------


@dataclasses.dataclass
class Inputs:
  """The clips analysed: store (ClipStore of the split, restricted to the
  first max_clips), ids (clip names), fingerprint (of the data set)."""
  store: cnn12_data.ClipStore
  ids: tuple
  data: Any
  fingerprint: str


def seed_runs(folder: str, field: str) -> list[tuple[int, str]]:
  """[(seed, run folder)] of a train_cnn12 work dir, by seed; clear errors."""
  if not folder:
    raise ValueError(f"config.{field} is empty: give the work dir of a "
                     "run of the cnn12 experiment (configs/cnn12_*.py)")
  folder = provenance.check_workdir(folder, f"config.{field}")
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"config.{field}={folder}: no such folder")
  runs = []
  for path in glob.glob(os.path.join(folder, "seed_*")):
    m = re.fullmatch(r"seed_(\d+)", os.path.basename(path))
    if m and os.path.exists(os.path.join(path, sup.MODEL_CONFIG)):
      runs.append((int(m.group(1)), path))
  if not runs:
    raise FileNotFoundError(f"config.{field}={folder}: no seed_<s> run in it; "
                            "train it with the cnn12 experiment (configs/cnn12_*.py)")
  return sorted(runs)


def load_inputs(config, workdir: str) -> Inputs:
  """The split's clips; the data must be what the runs were trained on."""
  data = cnn12_data.load_data(config.data, workdir)
  for field in RUN_FIELDS:
    if not config[field]:
      continue
    for _, run in seed_runs(config[field], field):
      cnn12_eval.check_trained_on(run, data,
                                  cnn12_data.data_dir(config.data, workdir))
  store = cnn12_data.clip_store(data, config.split)
  part = data.split(config.split)
  names = getattr(part, "fnames", None) or getattr(part, "files")
  n = len(store) if not config.max_clips else min(config.max_clips,
                                                  len(store))
  if n == 0:
    raise ValueError(f"the data's {config.split} split is empty")
  end = int(store.offsets[n - 1] + store.lengths[n - 1])
  store = cnn12_data.ClipStore(store.flat[:end], store.offsets[:n],
                               store.lengths[:n], store.labels[:n],
                               store.num_classes)
  short = np.flatnonzero(store.lengths < cnn12.MIN_INPUT_LENGTH)
  if short.size:
    raise ValueError(f"clip {names[short[0]]} has {store.lengths[short[0]]} "
                     f"samples, fewer than CNN12's receptive field of "
                     f"{cnn12.MIN_INPUT_LENGTH}")
  ids = tuple(os.path.splitext(os.path.basename(str(f)))[0]
              for f in names[:n])
  return Inputs(store, ids, data, data.fingerprint)


def length_groups(store) -> list[tuple[np.ndarray, int]]:
  """[(clip indices, length)]: clips of equal length, for batching."""
  return [(np.flatnonzero(store.lengths == n), int(n))
          for n in np.unique(store.lengths)]


def clip_batches(store, batch_size: int):
  """Yields (indices, float32 (B, T)) of clips of equal length."""
  for indices, _ in length_groups(store):
    for start in range(0, len(indices), batch_size):
      idx = indices[start:start + batch_size]
      yield idx, np.stack([store.clip(i) for i in idx])


def replace_clips(store, new_clips: dict):
  """A copy of `store` whose clip i is new_clips[i] (same lengths)."""
  flat = store.flat.copy()
  for i, wave in new_clips.items():
    flat[store.offsets[i]:store.offsets[i] + store.lengths[i]] = wave
  return dataclasses.replace(store, flat=flat)


# --- Records and resuming ----------------------------------------------------


def analysis_dir(workdir, name):
  """The folder of analysis `name` in `workdir`."""
  return os.path.join(workdir, name)


def _record(config, inputs, name, models: dict) -> dict:
  fields = {"split": config.split, "max_clips": config.max_clips,
            "layers": list(config.layers), "seed": config.seed}
  for block in CONFIG_BLOCKS.get(name, ()):
    fields[block] = provenance.to_jsonable(config[block])
  return {"analysis": name, "data": inputs.fingerprint, "config": fields,
          "models": models}


def resume(config, workdir, inputs, name, models):
  """(folder, saved results or None); refuses another run's folder."""
  folder = analysis_dir(workdir, name)
  record = _record(config, inputs, name, models)
  provenance.check_or_write_record(
      os.path.join(folder, MADE_BY), record,
      what=f"the {name} results in {folder}",
      remedy="use a new --workdir (or delete that folder)")
  path = os.path.join(folder, RESULTS_JSON)
  return folder, (provenance.read_json(path) if os.path.exists(path)
                  else None)


def save_results(folder, results):
  """Writes results.json atomically; returns `results`."""
  provenance.write_json_atomic(os.path.join(folder, RESULTS_JSON), results)
  return results


def done(workdir, name):
  """The saved results of analysis `name` in `workdir`, or None."""
  path = os.path.join(analysis_dir(workdir, name), RESULTS_JSON)
  return provenance.read_json(path) if os.path.exists(path) else None


def encoder_models(config) -> dict:
  """The two encoders looked at: the first seed of each run."""
  out = {}
  for name in ("supervised", "contrastive"):
    seed, run = seed_runs(config[name], name)[0]
    out[name] = cnn12_eval.load_encoder(run)
  return out


def progress(total: int, desc: str) -> tqdm.tqdm:
  """The progress bar (with ETA) of one analysis' (model, layer) units."""
  return tqdm.tqdm(total=total, desc=desc, unit="layer", leave=False)


def fingerprints(models: dict) -> dict:
  """{name: parameter fingerprint} of loaded encoders."""
  return {k: v.record["fingerprint"] for k, v in models.items()}


# --- Top-k -------------------------------------------------------------------


def _normal(name: str) -> str:
  return str(name).replace("_", " ").lower()


def kept_clips(inputs, patterns) -> np.ndarray:
  """bool (N,): clips with no label matching any of `patterns` (fnmatch,
  case-insensitive, '_' read as ' ')."""
  keep = np.ones(len(inputs.store), bool)
  if not patterns:
    return keep
  names = getattr(inputs.data, "class_names", None)
  if names is None:
    raise ValueError("topk.exclude needs class names, and this data set "
                     "has none")
  hit = np.array([any(fnmatch.fnmatchcase(_normal(n), _normal(p))
                      for p in patterns) for n in names])
  labels = np.asarray(inputs.store.labels)
  if inputs.store.multilabel:
    return ~np.any((labels > 0) & hit[None, :], axis=1)
  return ~hit[labels]


def top_k_of_store(enc, store, layers, k: int, batch_size: int, *,
                   activation: str = "output", keep=None) -> dict:
  """analysis.top_k_clips over a ClipStore batched by length: {layer:
  (indices (C, k) into the store, scores (C, k))}.

  activation: 'output' (the deconvnet's start point) or 'pre_pool' (the
  authors' notebook). keep: bool (N,) clips that may be chosen (all when
  None).
  """
  keep = np.ones(len(store), bool) if keep is None else np.asarray(keep)
  if keep.sum() < k:
    raise ValueError(f"top-{k} needs {k} clips, and {int(keep.sum())} are "
                     "left after topk.exclude")
  batches = [(idx[keep[idx]], x[keep[idx]])
             for idx, x in clip_batches(store, batch_size)]
  batches = [(idx, x) for idx, x in batches if len(idx)]
  order = np.concatenate([idx for idx, _ in batches])
  found = analysis.top_k_clips(enc.model, enc.params,
                               (x for _, x in batches), list(layers), k=k,
                               activation=activation)
  return {layer: (order[np.asarray(t.indices)], np.asarray(t.scores))
          for layer, t in found.items()}


def topk_settings(config) -> dict:
  """top_k_of_store's ranking keywords from config.topk: the paper's
  (deconvnet start point) or the authors' notebook's (before pooling)."""
  return {"activation": "pre_pool" if config.topk.ranking == "authors"
          else "output"}


# --- Sonifying ---------------------------------------------------------------


def most_active(model, params, x, layer):
  """((B,) map numbers from 1, (B,) silent) of each clip's most active map
  (mean |activation|; ties to the lower map)."""
  activity = np.asarray(inversion.map_activity(model, params, x, layer))
  return activity.argmax(-1) + 1, activity.max(-1) <= 0


def random_active_map(activity: np.ndarray, rng: np.random.Generator):
  """((B,) map numbers from 1, (B,) silent): for each clip a map drawn
  uniformly from its active maps other than the most active one (the
  residual test's control); a clip with no such map gets any other map (its
  sonification is then silent), and a layer of one map gets map 0: none,
  a silent sonification."""
  activity = np.asarray(activity)
  top = activity.argmax(-1)
  maps, silent = [], []
  for row, best in zip(activity, top):
    others = np.flatnonzero(row > 0)
    others = others[others != best]
    if others.size == 0:
      others = np.setdiff1d(np.arange(row.size), [best])
    if others.size == 0:
      maps.append(0)
      silent.append(True)
      continue
    m = int(rng.choice(others))
    maps.append(m + 1)
    silent.append(bool(row[m] <= 0))
  return np.array(maps), np.array(silent)


def sonify_chosen(model, params, store, layer, choose, batch_size,
                  chunk_size):
  """Sonifies one chosen map per clip of `store` at block `layer`.

  choose: (activity (B, C) mean |activation| of each map, clip indices
    (B,)) -> ((B,) map numbers from 1, 0 for none: silence; (B,) silent).
  Returns ({clip: sonification}, {clip: map}, {clip: silent}).
  """
  sonified, maps, silent = {}, {}, {}
  for idx, x in clip_batches(store, batch_size):
    activity = np.asarray(inversion.map_activity(model, params, x, layer))
    m, quiet = choose(activity, idx)
    s = np.asarray(inversion.sonify_pairs(model, params, x, layer,
                                          np.maximum(m, 1),
                                          chunk_size=chunk_size or None))
    s = np.where((np.asarray(m) == 0)[:, None], 0.0, s).astype(s.dtype)
    for row, i in enumerate(idx):
      sonified[i], maps[i], silent[i] = s[row], int(m[row]), bool(quiet[row])
  return sonified, maps, silent


def sonify_most_active(model, params, store, layer, batch_size, chunk_size):
  """{clip: sonification of its most active map}, maps, silent flags."""
  return sonify_chosen(
      model, params, store, layer,
      lambda activity, _: (activity.argmax(-1) + 1, activity.max(-1) <= 0),
      batch_size, chunk_size)


def sonify_pairs_of_store(enc, store, layer, pairs, batch_size,
                          chunk_size) -> dict:
  """{(clip, map): sonification} for (clip, map number from 1) pairs of
  `store`, batched by clip length."""
  out = {}
  by_length = {}
  for clip, m in pairs:
    by_length.setdefault(int(store.lengths[clip]), []).append((clip, m))
  for items in by_length.values():
    for start in range(0, len(items), batch_size):
      part = items[start:start + batch_size]
      x = np.stack([store.clip(c) for c, _ in part])
      s = np.asarray(inversion.sonify_pairs(
          enc.model, enc.params, x, layer, np.array([m for _, m in part]),
          chunk_size=chunk_size or None))
      for row, key in enumerate(part):
        out[key] = s[row]
  return out
