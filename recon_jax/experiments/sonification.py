"""The sonification paper's analyses on trained CNN12s (SPEC B3, B4).

Each analysis is a function (config, workdir) -> results dict, run by its
own experiment (configs/sonification.py:<name>) or all at once by `run_all`
(configs/sonification.py):
  topk                top-k (k=3) most activating clips per map and layer
  residual_test       Fig. 6: the metric on r = x - s (s: the sonification of
                      each clip's most active map) vs on x, per layer
  coherence           Fig. 7: mean top-5 magnitude-squared coherence of x and
                      s per layer, supervised vs contrastive
  feature_evolution   Fig. 5: one clip and map per layer sonified at every
                      kept checkpoint of the contrastive run
  layer_importance    Fig. 4: classifiers on the encoder cut after block l,
                      fc-only and full fine-tuning
  sonification_page   WAVs, spectrogram pictures and the offline page
The models come from the cnn12 experiment (configs/cnn12_*.py) runs (config.supervised,
.contrastive, .probe, .finetune: run folders holding seed_<s>). Every
analysis folder records what made it (data fingerprint, the config's
fields, the parameters' fingerprints) and its results; a rerun with the
same inputs returns the saved results, one with other inputs stops with a
ProvenanceError.

Which model a sonification comes from: the model being looked at. The
residual test sonifies with the evaluated classifier's own encoder (frozen
contrastive encoder for fc-only runs, the fine-tuned one for full runs),
since "the most active map" is a property of that network.
"""
import dataclasses
import glob
import os
import re
import shutil
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from recon_jax import analysis
from recon_jax import inversion
from recon_jax import metrics
from recon_jax import provenance
from recon_jax.models import cnn12
from recon_jax.report import sonification_figures as figures
from recon_jax.report import sonification_media as media
from recon_jax.report import sonification_page as page
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

SAMPLE_RATE = 8000
ANALYSES = ("topk", "residual_test", "coherence", "feature_evolution",
            "layer_importance", "sonification_page")
RESULTS_JSON = "results.json"
MADE_BY = "made_by.json"
RUN_FIELDS = ("supervised", "contrastive", "probe", "finetune")
GROUPS = {"supervised": "supervised", "fc_only": "probe", "full": "finetune"}


# --- Inputs ------------------------------------------------------------------


@dataclasses.dataclass
class Inputs:
  """The clips analysed: store (ClipStore of the split, restricted to the
  first max_clips), ids (clip names), fingerprint (of the data set)."""
  store: cnn12_data.ClipStore
  ids: tuple
  data: Any
  fingerprint: str


def _fail(field, value, want):
  raise ValueError(f"config.{field}={value!r}: want {want}")


def check_config(config) -> None:
  """Refuses what cannot run, before any work (fields, run folders)."""
  cnn12_data.check_data_config(config.data)
  if config.split not in ("train", "validation", "test"):
    _fail("split", config.split, "'train', 'validation' or 'test'")
  for field in ("max_clips", "chunk_size"):
    if not (sup._is_int(config[field]) and config[field] >= 0):
      _fail(field, config[field], "an integer >= 0 (0: no limit / default)")
  if not (sup._is_int(config.batch_size) and config.batch_size >= 1):
    _fail("batch_size", config.batch_size, "an integer >= 1")
  for field, layers in (("layers", config.layers),
                        ("evolution.layers", config.evolution.layers),
                        ("layer_importance.layers",
                         config.layer_importance.layers),
                        ("page.figure_layers", config.page.figure_layers)):
    if (not isinstance(layers, (tuple, list)) or not layers or any(
        not sup._is_int(l) or not 1 <= l <= cnn12.NUM_BLOCKS for l in layers)
        or len(set(layers)) != len(layers)):
      _fail(field, layers, f"distinct block numbers in 1..{cnn12.NUM_BLOCKS}")
  if not (sup._is_int(config.topk.k) and config.topk.k >= 1):
    _fail("topk.k", config.topk.k, "an integer >= 1")
  if not (sup._is_int(config.coherence.k) and config.coherence.k >= 1):
    _fail("coherence.k", config.coherence.k, "an integer >= 1")
  if config.coherence.method not in ("paper", "authors"):
    _fail("coherence.method", config.coherence.method, "'paper' or 'authors'")
  if not (sup._is_int(config.page.maps_per_layer)
          and config.page.maps_per_layer >= 1):
    _fail("page.maps_per_layer", config.page.maps_per_layer,
          "an integer >= 1")
  modes = config.layer_importance.modes
  if (not isinstance(modes, (tuple, list)) or not modes
      or any(m not in analysis.MODES for m in modes)):
    _fail("layer_importance.modes", modes,
          f"names from {tuple(analysis.MODES)}")
  sup.check_config(_probe_config(config))


def seed_runs(folder: str, field: str) -> list[tuple[int, str]]:
  """[(seed, run folder)] of a train_cnn12 work dir, by seed; clear errors."""
  if not folder:
    raise ValueError(f"config.{field} is empty: give the work dir of a "
                     f"the cnn12 experiment (configs/cnn12_*.py) run")
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
      made = provenance.read_json(os.path.join(run, sup.MADE_BY))
      if made.get("data") != data.fingerprint:
        raise provenance.ProvenanceError(
            f"{run} was trained on data {made.get('data')}, but config.data "
            f"gives {data.fingerprint} ({cnn12_data.data_dir(config.data, workdir)}"
            "); point config.data at the set the runs were trained on")
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


def _analysis_dir(workdir, name):
  return os.path.join(workdir, name)


def _record(config, inputs, name, models: dict) -> dict:
  fields = {"split": config.split, "max_clips": config.max_clips,
            "layers": list(config.layers)}
  block = {"topk": "topk", "coherence": "coherence",
           "feature_evolution": "evolution",
           "layer_importance": "layer_importance",
           "sonification_page": "page"}.get(name)
  if block:
    fields[block] = provenance.to_jsonable(config[block])
  if name == "sonification_page":
    fields["topk"] = provenance.to_jsonable(config.topk)
  return {"analysis": name, "data": inputs.fingerprint, "config": fields,
          "models": models}


def _resume(config, workdir, inputs, name, models):
  """(folder, saved results or None); refuses another run's folder."""
  folder = _analysis_dir(workdir, name)
  record = _record(config, inputs, name, models)
  provenance.check_or_write_record(
      os.path.join(folder, MADE_BY), record,
      what=f"the {name} results in {folder}",
      remedy="use a new --workdir (or delete that folder)")
  path = os.path.join(folder, RESULTS_JSON)
  return folder, (provenance.read_json(path) if os.path.exists(path)
                  else None)


def _save(folder, results):
  provenance.write_json_atomic(os.path.join(folder, RESULTS_JSON), results)
  return results


def _encoder_models(config) -> dict:
  """The two encoders looked at: the first seed of each run."""
  out = {}
  for name in ("supervised", "contrastive"):
    seed, run = seed_runs(config[name], name)[0]
    out[name] = cnn12_eval.load_encoder(run)
  return out


def _bar(total: int, desc: str) -> tqdm.tqdm:
  """The progress bar (with ETA) of one analysis' (model, layer) units."""
  return tqdm.tqdm(total=total, desc=desc, unit="layer", leave=False)


def _fingerprints(models: dict) -> dict:
  return {k: v.record["fingerprint"] for k, v in models.items()}


# --- Sonifying ---------------------------------------------------------------


def most_active(model, params, x, layer):
  """((B,) map numbers from 1, (B,) silent) of each clip's most active map
  (mean |activation|; ties to the lower map)."""
  activity = np.asarray(inversion.map_activity(model, params, x, layer))
  return activity.argmax(-1) + 1, activity.max(-1) <= 0


def sonify_most_active(model, params, store, layer, batch_size, chunk_size):
  """{clip: sonification of its most active map}, maps, silent flags."""
  sonified, maps, silent = {}, {}, {}
  for idx, x in clip_batches(store, batch_size):
    m, quiet = most_active(model, params, x, layer)
    s = np.asarray(inversion.sonify_pairs(model, params, x, layer, m,
                                          chunk_size=chunk_size or None))
    for row, i in enumerate(idx):
      sonified[i], maps[i], silent[i] = s[row], int(m[row]), bool(quiet[row])
  return sonified, maps, silent


# --- Top-k -------------------------------------------------------------------


def top_k_of_store(enc, store, layers, k: int, batch_size: int) -> dict:
  """analysis.top_k_clips over a ClipStore batched by length: {layer:
  (indices (C, k) into the store, scores (C, k))}."""
  order = np.concatenate([idx for idx, _ in clip_batches(store, batch_size)])
  found = analysis.top_k_clips(
      enc.model, enc.params,
      (x for _, x in clip_batches(store, batch_size)), list(layers), k=k)
  return {layer: (order[np.asarray(t.indices)], np.asarray(t.scores))
          for layer, t in found.items()}


def topk(config, workdir: str, inputs: Inputs | None = None,
         models: dict | None = None) -> dict:
  """{model: {layer: {"indices": (C, k) clip numbers, "scores"}}}.

  models: the encoders (_encoder_models(config) when None).
  """
  inputs = inputs or load_inputs(config, workdir)
  models = models or _encoder_models(config)
  folder, saved = _resume(config, workdir, inputs, "topk",
                          _fingerprints(models))
  if saved is not None:
    return saved
  results = {}
  for name, enc in models.items():
    found = top_k_of_store(enc, inputs.store, config.layers, config.topk.k,
                           config.batch_size)
    results[name] = {
        str(layer): {"indices": indices.tolist(), "scores": scores.tolist()}
        for layer, (indices, scores) in found.items()}
    logging.info("top-%d clips of %s: layers %s", config.topk.k, name,
                 list(config.layers))
  return _save(folder, results)


# --- Residual test (Fig. 6) --------------------------------------------------


def residual_test(config, workdir: str, inputs: Inputs | None = None) -> dict:
  """Metric of each classifier on the residuals r = x - s per layer.

  Groups: supervised (config.supervised's runs), fc_only (config.probe),
  full (config.finetune). Returns {"metric", "layers", "groups": {group:
  {"clean": {mean, ci95, values}, "residual": [{mean, ci95, values}] per
  layer}}}.
  """
  inputs = inputs or load_inputs(config, workdir)
  classifiers = {}
  for group, field in GROUPS.items():
    if config[field]:
      classifiers[group] = [(seed, cnn12_eval.load_classifier(run))
                            for seed, run in seed_runs(config[field], field)]
  if not classifiers:
    raise ValueError("the residual test needs classifier runs: set "
                     "config.supervised, config.probe or config.finetune")
  models = {f"{g}/seed_{s}": c.record["fingerprint"]
            for g, runs in classifiers.items() for s, c in runs}
  folder, saved = _resume(config, workdir, inputs, "residual_test", models)
  if saved is not None:
    return saved
  metric = "mAP" if inputs.store.multilabel else "accuracy"
  cache = {}  # {'encoder': fingerprint, layer: {clip: sonification}}
  groups = {}
  bar = _bar(sum(map(len, classifiers.values())) * len(config.layers),
             "residual test")
  for group, runs in classifiers.items():
    clean, per_layer = [], {layer: [] for layer in config.layers}
    for seed, clf in runs:
      clean.append(sup.evaluate(clf.encoder, clf.head, clf.params,
                                inputs.store)[metric])
      # fc-only runs share the frozen encoder: sonify it once.
      key = provenance.fingerprint_arrays(clf.params["encoder"])
      if cache.get("encoder") != key:
        cache = {"encoder": key}
      for layer in config.layers:
        if layer not in cache:
          cache[layer] = sonify_most_active(
              clf.encoder, clf.params["encoder"], inputs.store, layer,
              config.batch_size, config.chunk_size)[0]
        sonified = cache[layer]
        residual = replace_clips(inputs.store, {
            i: inputs.store.clip(i) - s for i, s in sonified.items()})
        per_layer[layer].append(sup.evaluate(
            clf.encoder, clf.head, clf.params, residual)[metric])
        bar.update()
      logging.info("residual test %s seed %d: clean %s %.4f, residual %s",
                   group, seed, metric, clean[-1],
                   [round(per_layer[l][-1], 4) for l in config.layers])
    groups[group] = {"clean": _interval(clean),
                     "residual": [_interval(per_layer[l])
                                  for l in config.layers]}
  bar.close()
  results = {"metric": metric, "layers": list(config.layers),
             "groups": groups}
  figures.residual_figure(os.path.join(folder, "fig6_residual_test.png"),
                          results)
  return _save(folder, results)


def _interval(values) -> dict:
  values = [float(v) for v in values]
  if len(values) == 1:
    return {"mean": values[0], "ci95": float("nan"), "values": values}
  mean, half = metrics.confidence_interval_95(values)
  return {"mean": mean, "ci95": half, "values": values}


# --- Coherence (Fig. 7) ------------------------------------------------------


def _coherence_values(config, x, s):
  k = config.coherence.k
  if config.coherence.method == "paper":
    return metrics.mean_topk_coherence_batch(x, s, SAMPLE_RATE, k=k,
                                             on_undefined="nan")
  return np.array([metrics.mean_top_peaks_coherence(
      a, b, SAMPLE_RATE, k=k, on_undefined="nan") for a, b in zip(x, s)])


def coherence(config, workdir: str, inputs: Inputs | None = None) -> dict:
  """Mean top-k coherence of x and its most active map's sonification.

  Per encoder group (supervised: every seed of config.supervised;
  contrastive: every seed of config.contrastive) and layer, the mean over
  clips (clips whose sonification is silent are left out and counted),
  then mean and 95% interval over seeds.
  """
  inputs = inputs or load_inputs(config, workdir)
  encoders = {name: [(seed, cnn12_eval.load_encoder(run))
                     for seed, run in seed_runs(config[name], name)]
              for name in ("supervised", "contrastive")}
  models = {f"{g}/seed_{s}": e.record["fingerprint"]
            for g, runs in encoders.items() for s, e in runs}
  folder, saved = _resume(config, workdir, inputs, "coherence", models)
  if saved is not None:
    return saved
  groups = {}
  bar = _bar(sum(map(len, encoders.values())) * len(config.layers),
             "coherence")
  for name, runs in encoders.items():
    per_layer = {layer: [] for layer in config.layers}
    silent = {layer: 0 for layer in config.layers}
    for seed, enc in runs:
      for layer in config.layers:
        sonified, _, quiet = sonify_most_active(
            enc.model, enc.params, inputs.store, layer, config.batch_size,
            config.chunk_size)
        values = []
        for idx, x in clip_batches(inputs.store, config.batch_size):
          s = np.stack([sonified[i] for i in idx])
          values.extend(_coherence_values(config, x, s).tolist())
        values = np.asarray(values)
        silent[layer] += int(np.isnan(values).sum())
        per_layer[layer].append(float(np.nanmean(values)) if np.isfinite(
            values).any() else float("nan"))
        bar.update()
      logging.info("coherence %s seed %d: %s", name, seed,
                   [round(per_layer[l][-1], 4) for l in config.layers])
    groups[name] = {
        "coherence": [_interval(per_layer[l]) for l in config.layers],
        "silent_clips": [silent[l] for l in config.layers]}
  bar.close()
  results = {"layers": list(config.layers), "k": config.coherence.k,
             "method": config.coherence.method, "clips": len(inputs.store),
             "groups": groups}
  figures.coherence_figure(os.path.join(folder, "fig7_coherence.png"),
                           results)
  return _save(folder, results)


# --- Feature evolution (Fig. 5) ----------------------------------------------


def feature_evolution(config, workdir: str,
                      inputs: Inputs | None = None) -> dict:
  """For each of config.evolution.layers: the clip and map with the largest
  activity at the contrastive run's last checkpoint, sonified at every kept
  checkpoint. Writes WAVs, thumbnails and one figure per layer."""
  inputs = inputs or load_inputs(config, workdir)
  _, run = seed_runs(config.contrastive, "contrastive")[0]
  steps = loop.list_checkpoint_steps(run)
  if len(steps) < 2:
    raise ValueError(f"{run} keeps {len(steps)} checkpoint(s); the feature "
                     "evolution needs a kept series (train.keep_period)")
  final = cnn12_eval.load_encoder(run, steps[-1])
  folder, saved = _resume(config, workdir, inputs, "feature_evolution",
                          {"contrastive": final.record["fingerprint"],
                           "steps": steps})
  if saved is not None:
    return saved
  layers = list(config.evolution.layers)
  found = top_k_of_store(final, inputs.store, layers, 1, config.batch_size)
  chosen = {}
  for layer in layers:
    indices, scores = found[layer]
    m = int(scores[:, 0].argmax())
    chosen[layer] = (m + 1, int(indices[m, 0]), float(scores[m, 0]))
  encoders = [cnn12_eval.load_encoder(run, step) for step in steps]
  entries = []
  bar = _bar(len(layers), "feature evolution")
  for layer in layers:
    bar.update()
    m, clip, score = chosen[layer]
    x = inputs.store.clip(clip)
    rel = f"L{layer:02d}_m{m:04d}"
    os.makedirs(os.path.join(folder, rel), exist_ok=True)
    media.write_clip_wav(os.path.join(folder, rel, "input.wav"), x)
    media.write_spectrogram_thumbnail(os.path.join(folder, rel, "input.png"),
                                      x)
    waves, step_entries = [], []
    for step, enc in zip(steps, encoders):
      s = np.asarray(inversion.sonify(enc.model, enc.params, x, layer, m))
      waves.append(s)
      wav = f"{rel}/step_{step:07d}.wav"
      png = f"{rel}/step_{step:07d}.png"
      media.write_clip_wav(os.path.join(folder, wav), s)
      media.write_spectrogram_thumbnail(os.path.join(folder, png), s)
      step_entries.append({"step": step, "sonification_wav": wav,
                           "sonification_png": png,
                           "silent": not np.any(s)})
    media.spectrogram_pairs_figure(
        os.path.join(folder, f"fig5_evolution_L{layer:02d}.png"),
        [(x, s) for s in waves],
        row_labels=[f"step {st}" for st in steps],
        column_titles=("input", f"block {layer} map {m}"),
        title=f"Contrastive feature evolution: block {layer}, map {m}, clip "
        f"{inputs.ids[clip]}")
    entries.append({"layer": layer, "map": m, "clip": inputs.ids[clip],
                    "clip_index": clip, "activity": score,
                    "input_wav": f"{rel}/input.wav",
                    "input_png": f"{rel}/input.png", "steps": step_entries})
  bar.close()
  return _save(folder, {"run": run, "steps": steps, "entries": entries})


# --- Layer importance (Fig. 4) -----------------------------------------------


def _probe_config(config):
  """config.layer_importance.probe with the analysed data."""
  c = config.layer_importance.probe.copy_and_resolve_references()
  c.unlock()
  c.data = ml_collections.ConfigDict(config.data.to_dict())
  c.lock()
  return c


def layer_importance(config, workdir: str,
                     inputs: Inputs | None = None) -> dict:
  """Fig. 4 for the supervised and the contrastive encoder: per mode
  (fc_only, full) and layer, the validation metric (mean, 95% interval over
  config.layer_importance.probe.seeds); dashed lines from the whole-encoder
  runs (config.supervised, .probe, .finetune summaries) where present."""
  inputs = inputs or load_inputs(config, workdir)
  models = _encoder_models(config)
  folder, saved = _resume(config, workdir, inputs, "layer_importance",
                          _fingerprints(models))
  if saved is not None:
    return saved
  results = {"layers": list(config.layer_importance.layers), "encoders": {}}
  for name, enc in models.items():
    c = _probe_config(config)
    out = analysis.layer_importance(
        c, os.path.join(folder, name), inputs.data,
        list(config.layer_importance.layers), encoder=enc,
        modes=tuple(config.layer_importance.modes))
    results["metric"] = out["metric"]
    results["encoders"][name] = {"mean": out["mean"], "ci95": out["ci95"]}
  results["baselines"] = _whole_encoder_baselines(config, results["metric"])
  figures.layer_importance_figure(
      os.path.join(folder, "fig4_layer_importance.png"), results)
  return _save(folder, results)


def _whole_encoder_baselines(config, metric) -> dict:
  """The metric of the whole-encoder runs (their summary.json), if any."""
  out = {}
  for label, field in (("supervised/full", "supervised"),
                       ("contrastive/fc_only", "probe"),
                       ("contrastive/full", "finetune")):
    path = os.path.join(config[field], cnn12_eval.SUMMARY_JSON) if config[
        field] else ""
    if path and os.path.exists(path):
      m = provenance.read_json(path)["metrics"].get(metric)
      if m:
        out[label] = {"mean": m["mean"], "ci95": m["ci95"]}
  return out


# --- The page ----------------------------------------------------------------


def sonification_page(config, workdir: str,
                      inputs: Inputs | None = None) -> dict:
  """WAVs, spectrogram pictures and the offline page (index.html).

  For each model and layer: the config.page.maps_per_layer maps with the
  highest top-1 activity (maps silent for every clip marked), each with its
  top-k clips: input, sonification and residual. The feature evolution and
  the figures of the analyses already run are included.
  """
  inputs = inputs or load_inputs(config, workdir)
  models = _encoder_models(config)
  found = topk(config, workdir, inputs, models)
  folder, saved = _resume(config, workdir, inputs, "sonification_page",
                          _fingerprints(models))
  if saved is not None and os.path.exists(saved["page"]):
    return saved
  manifest = {"title": "CNN12 sonifications", "sample_rate": SAMPLE_RATE,
              "note": (f"{len(inputs.store)} clips of the {config.split} "
                       f"split (data {inputs.fingerprint}); top "
                       f"{config.topk.k} clips of the "
                       f"{config.page.maps_per_layer} most active maps per "
                       "layer."),
              "models": {}, "figures": []}
  pairs_figures = []
  bar = _bar(len(models) * len(config.layers), "page media")
  for name, enc in models.items():
    layers = []
    figure_rows = []
    for layer in config.layers:
      bar.update()
      top = found[name][str(layer)]
      scores = np.asarray(top["scores"])
      indices = np.asarray(top["indices"])
      order = np.argsort(-scores[:, 0], kind="stable")
      chosen = order[:config.page.maps_per_layer]
      pairs = [(int(indices[c, j]), int(c) + 1) for c in chosen
               for j in range(indices.shape[1])]
      sonified = _sonify_pairs(enc, inputs.store, layer, pairs, config)
      maps = []
      for c in chosen:
        clips = []
        for j in range(indices.shape[1]):
          clip = int(indices[c, j])
          x = inputs.store.clip(clip)
          s = sonified[clip, int(c) + 1]
          clips.append(media.write_clip_media(
              folder, f"{name}/L{layer:02d}/m{int(c) + 1:04d}",
              inputs.ids[clip], x, s, x - s))
        maps.append({"map": int(c) + 1, "activity": float(scores[c, 0]),
                     "silent": bool(scores[c, 0] <= 0), "clips": clips})
      layers.append({"layer": layer, "maps": maps})
      if layer in config.page.figure_layers:
        c = int(chosen[0])
        clip = int(indices[c, 0])
        figure_rows.append((f"block {layer} map {c + 1}",
                            inputs.store.clip(clip), sonified[clip, c + 1]))
    entry = {"description": f"{enc.record['kind']} (step "
                            f"{enc.record['step']}, params "
                            f"{enc.record['fingerprint']})",
             "layers": layers}
    png = f"fig_{name}_pairs.png"
    media.spectrogram_pairs_figure(
        os.path.join(folder, png), [(x, s) for _, x, s in figure_rows],
        row_labels=[label for label, _, _ in figure_rows],
        title=f"{name}: inputs and sonifications of the most active maps")
    pairs_figures.append({"title": f"{name}: input / sonification pairs",
                          "png": png})
    manifest["models"][name] = entry
  bar.close()
  evolution = _done(workdir, "feature_evolution")
  if evolution:
    ev_dir = _analysis_dir(workdir, "feature_evolution")
    manifest["models"]["contrastive"]["evolution"] = [
        _copied_evolution(e, ev_dir, folder) for e in evolution["entries"]]
  manifest["figures"] = pairs_figures + _analysis_figures(workdir, folder)
  path = page.write_page(folder, manifest)
  return _save(folder, {"page": path, "maps": {
      name: {str(l["layer"]): [m["map"] for m in l["maps"]]
             for l in entry["layers"]}
      for name, entry in manifest["models"].items()}})


def _sonify_pairs(enc, store, layer, pairs, config) -> dict:
  """{(clip, map): sonification} for (clip, map number) pairs."""
  out = {}
  by_length = {}
  for clip, m in pairs:
    by_length.setdefault(int(store.lengths[clip]), []).append((clip, m))
  for items in by_length.values():
    for start in range(0, len(items), config.batch_size):
      part = items[start:start + config.batch_size]
      x = np.stack([store.clip(c) for c, _ in part])
      s = np.asarray(inversion.sonify_pairs(
          enc.model, enc.params, x, layer, np.array([m for _, m in part]),
          chunk_size=config.chunk_size or None))
      for row, key in enumerate(part):
        out[key] = s[row]
  return out


def _done(workdir, name):
  path = os.path.join(_analysis_dir(workdir, name), RESULTS_JSON)
  return provenance.read_json(path) if os.path.exists(path) else None


def _copy(src_dir, rel, dst_dir, prefix):
  dst = f"{prefix}/{rel}"
  os.makedirs(os.path.dirname(os.path.join(dst_dir, dst)), exist_ok=True)
  shutil.copyfile(os.path.join(src_dir, rel), os.path.join(dst_dir, dst))
  return dst


def _copied_evolution(entry, src, dst) -> dict:
  """An evolution entry with its files copied into the page folder."""
  p = "evolution"
  return {"layer": entry["layer"], "map": entry["map"],
          "clip": entry["clip"],
          "input_wav": _copy(src, entry["input_wav"], dst, p),
          "input_png": _copy(src, entry["input_png"], dst, p),
          "steps": [{"step": s["step"],
                     "sonification_wav": _copy(src, s["sonification_wav"],
                                               dst, p),
                     "sonification_png": _copy(src, s["sonification_png"],
                                               dst, p)}
                    for s in entry["steps"]]}


def _analysis_figures(workdir, folder) -> list:
  out = []
  for name, png, title in (
      ("layer_importance", "fig4_layer_importance.png",
       "Layer importance (Fig. 4)"),
      ("residual_test", "fig6_residual_test.png", "Residual test (Fig. 6)"),
      ("coherence", "fig7_coherence.png", "Mean top-5 coherence (Fig. 7)")):
    src = _analysis_dir(workdir, name)
    if os.path.exists(os.path.join(src, png)):
      out.append({"title": title, "png": _copy(src, png, folder, "figures")})
  return out


# --- Everything --------------------------------------------------------------


def run_all(config, workdir: str, analyses=ANALYSES) -> dict:
  """Runs the analyses named (all by default) and writes summary.json and
  summary.md with which of the paper's findings hold."""
  workdir = provenance.check_workdir(workdir)
  check_config(config)
  for name in analyses:
    if name not in ANALYSES:
      raise ValueError(f"unknown analysis {name!r}; have {ANALYSES}")
  inputs = load_inputs(config, workdir)
  results = {}
  for name in ANALYSES:
    if name in analyses:
      logging.info("analysis %s", name)
      results[name] = globals()[name](config, workdir, inputs)
  summary = findings(results)
  provenance.write_json_atomic(os.path.join(workdir, "summary.json"),
                               {"findings": summary,
                                "data": inputs.fingerprint})
  provenance.write_text_atomic(os.path.join(workdir, "summary.md"),
                               format_findings(summary))
  return {**results, "findings": summary}


def findings(results: dict) -> list[dict]:
  """The paper's findings checked on these results: [{finding, holds,
  evidence}] (holds None when the analysis was not run)."""
  out = []
  res = results.get("residual_test")
  if res:
    lower = {g: [r["mean"] < v["clean"]["mean"] for r in v["residual"]]
             for g, v in res["groups"].items()}
    out.append({
        "finding": "removing the sonification lowers the metric (Fig. 6)",
        "holds": all(all(v) for v in lower.values()),
        "evidence": "; ".join(
            f"{g}: clean {v['clean']['mean']:.3f}, residual "
            + ", ".join(f"L{l} {r['mean']:.3f}" for l, r in zip(
                res["layers"], v["residual"]))
            for g, v in res["groups"].items())})
  coh = results.get("coherence")
  if coh and len(coh["layers"]) >= 2:
    first, last = {}, {}
    for g, v in coh["groups"].items():
      first[g] = v["coherence"][0]["mean"]
      last[g] = v["coherence"][-1]["mean"]
    falls = all(last[g] < first[g] for g in first)
    out.append({
        "finding": "coherence falls with depth (Fig. 7)", "holds": falls,
        "evidence": "; ".join(
            f"{g}: L{coh['layers'][0]} {first[g]:.3f} -> L{coh['layers'][-1]}"
            f" {last[g]:.3f}" for g in first)})
    if {"supervised", "contrastive"} <= set(first):
      drop = {g: first[g] - last[g] for g in first}
      out.append({
          "finding": "coherence falls faster for the supervised model "
                     "(Fig. 7)",
          "holds": drop["supervised"] > drop["contrastive"],
          "evidence": f"drop supervised {drop['supervised']:.3f}, "
                      f"contrastive {drop['contrastive']:.3f}"})
  top = results.get("topk")
  if top and {"supervised", "contrastive"} <= set(top):
    deep = [l for l in map(int, top["supervised"]) if l >= 8]
    if deep:
      alive = {g: float(np.mean([np.mean(np.asarray(
          top[g][str(l)]["scores"])[:, 0] > 0) for l in deep]))
               for g in ("supervised", "contrastive")}
      out.append({
          "finding": "contrastive deep layers (8-11) have more active maps "
                     "than supervised ones (Sec. 3.3)",
          "holds": alive["contrastive"] > alive["supervised"],
          "evidence": f"maps active for some clip, layers {deep}: "
                      f"contrastive {alive['contrastive']:.2f}, supervised "
                      f"{alive['supervised']:.2f}"})
  return out


def format_findings(found: list[dict]) -> str:
  lines = ["# Sonification: the paper's findings on these models", ""]
  for f in found:
    verdict = {True: "holds", False: "does not hold", None: "not run"}[
        f["holds"]]
    lines.append(f"- **{f['finding']}**: {verdict}. {f['evidence']}")
  return "\n".join(lines) + "\n"


def run_analyses(config, workdir: str, analyses=ANALYSES) -> dict:
  """What `python -m recon_jax` runs for a configs/sonification.py config:
  the analyses (run_all), plus "lines": where each one's results are and
  one line per finding."""
  out = run_all(config, workdir, tuple(analyses))
  lines = [f"{name}: {os.path.join(workdir, name)}" for name in analyses]
  if "sonification_page" in analyses:
    lines.append("page: " + os.path.join(
        _analysis_dir(workdir, "sonification_page"), "index.html"))
  lines += format_findings(out["findings"]).splitlines()[2:]
  return {**out, "lines": lines}
