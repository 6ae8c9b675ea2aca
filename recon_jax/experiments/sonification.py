"""The sonification paper's analyses on trained CNN12s.

Each analysis is a function (config, workdir) -> results dict, run by its
own experiment (configs/sonification.py:<name>) or all at once by `run_all`
(configs/sonification.py):
  topk                top-k (k=3) most activating clips per map and layer
  residual_test       Fig. 6, with its controls (sonification_measures)
  coherence           Fig. 7 (sonification_measures)
  active_maps         Sec. 3.3: deep maps active for some clip
                      (sonification_measures)
  feature_evolution   Fig. 5: randomly chosen maps of some layers sonified,
                      each on the clip that activates it most at the end,
                      at every kept checkpoint of the contrastive run (step
                      0 included), and whether maps dead at the end were
                      alive at initialisation
  layer_importance    Fig. 4: classifiers on the encoder cut after block l,
                      fc-only and full fine-tuning
  sonification_page   WAVs, spectrogram pictures and the offline page
The models come from the cnn12 experiment (configs/cnn12_*.py) runs
(config.supervised, .contrastive, .probe, .finetune: run folders holding
seed_<s>). Every analysis folder records what made it and its results
(sonification_common); `run_all` then decides the paper's findings from
the saved results (report.sonification_findings) into summary.json and
summary.md.
"""
import os
import shutil

from absl import logging
import ml_collections
import numpy as np

from recon_jax import analysis
from recon_jax import inversion
from recon_jax import provenance
from recon_jax.experiments import sonification_common as common
from recon_jax.experiments import sonification_measures as measures
from recon_jax.metrics import statistics
from recon_jax.models import cnn12
from recon_jax.report import sonification_figures as figures
from recon_jax.report import findings as findings_report
from recon_jax.report import sonification_findings
from recon_jax.report import sonification_media as media
from recon_jax.report import sonification_page as page
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

ANALYSES = ("topk", "residual_test", "coherence", "active_maps",
            "feature_evolution", "layer_importance", "sonification_page")
# What the tests and the entry points reach through this module.
Inputs = common.Inputs
load_inputs = common.load_inputs
seed_runs = common.seed_runs
sonify_most_active = common.sonify_most_active
residual_test = measures.residual_test
coherence = measures.coherence
active_maps = measures.active_maps


def _fail(field, value, want):
  raise ValueError(f"config.{field}={value!r}: want {want}")


def _check_layers(field, layers):
  if (not isinstance(layers, (tuple, list)) or not layers or any(
      not sup._is_int(l) or not 1 <= l <= cnn12.NUM_BLOCKS for l in layers)
      or len(set(layers)) != len(layers)):
    _fail(field, layers, f"distinct block numbers in 1..{cnn12.NUM_BLOCKS}")


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
  if not (sup._is_int(config.seed) and config.seed >= 0):
    _fail("seed", config.seed, "an integer >= 0")
  for field, layers in (("layers", config.layers),
                        ("evolution.layers", config.evolution.layers),
                        ("active_maps.layers", config.active_maps.layers),
                        ("layer_importance.layers",
                         config.layer_importance.layers),
                        ("page.figure_layers", config.page.figure_layers)):
    _check_layers(field, layers)
  if not (sup._is_int(config.topk.k) and config.topk.k >= 1):
    _fail("topk.k", config.topk.k, "an integer >= 1")
  if config.topk.ranking not in ("paper", "authors"):
    _fail("topk.ranking", config.topk.ranking, "'paper' or 'authors'")
  if not isinstance(config.topk.exclude, (tuple, list)) or not all(
      isinstance(p, str) and p for p in config.topk.exclude):
    _fail("topk.exclude", config.topk.exclude,
          "a tuple of class-name patterns (fnmatch), e.g. ('*noise*',)")
  if not (sup._is_int(config.coherence.k) and config.coherence.k >= 1):
    _fail("coherence.k", config.coherence.k, "an integer >= 1")
  if config.coherence.method not in ("paper", "authors"):
    _fail("coherence.method", config.coherence.method, "'paper' or 'authors'")
  if not (sup._is_int(config.coherence.inputs_per_map)
          and config.coherence.inputs_per_map >= 1):
    _fail("coherence.inputs_per_map", config.coherence.inputs_per_map,
          "an integer >= 1")
  if config.evolution.maps not in ("random", "most_active"):
    _fail("evolution.maps", config.evolution.maps,
          "'random' (the paper) or 'most_active'")
  if not (sup._is_int(config.evolution.maps_per_layer)
          and config.evolution.maps_per_layer >= 1):
    _fail("evolution.maps_per_layer", config.evolution.maps_per_layer,
          "an integer >= 1")
  s = config.statistics
  if not (sup._is_int(s.num_resamples) and s.num_resamples >= 100):
    _fail("statistics.num_resamples", s.num_resamples, "an integer >= 100")
  if not (sup._is_int(s.seed) and s.seed >= 0):
    _fail("statistics.seed", s.seed, "an integer >= 0")
  if not (isinstance(s.level, float) and 0.5 <= s.level < 1):
    _fail("statistics.level", s.level, "a float in [0.5, 1)")
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


# --- Top-k -------------------------------------------------------------------


def topk(config, workdir: str, inputs: Inputs | None = None,
         models: dict | None = None) -> dict:
  """{model: {layer: {"indices": (C, k) clip numbers, "scores"}}}.

  models: the encoders (common.encoder_models(config) when None).
  """
  inputs = inputs or common.load_inputs(config, workdir)
  models = models or common.encoder_models(config)
  folder, saved = common.resume(config, workdir, inputs, "topk",
                          common.fingerprints(models))
  if saved is not None:
    return saved
  results = {}
  for name, enc in models.items():
    found = common.top_k_of_store(
        enc, inputs.store, config.layers, config.topk.k, config.batch_size,
        keep=common.kept_clips(inputs, config.topk.exclude),
        **common.topk_settings(config))
    results[name] = {
        str(layer): {"indices": indices.tolist(), "scores": scores.tolist()}
        for layer, (indices, scores) in found.items()}
    logging.info("top-%d clips of %s: layers %s", config.topk.k, name,
                 list(config.layers))
  return common.save_results(folder, results)


# --- Feature evolution (Fig. 5) ----------------------------------------------


def evolution_maps(config, activity: np.ndarray, layer: int) -> list[int]:
  """The maps (numbers from 1) followed through training at `layer`.

  activity: (N, C) mean |activation| of each clip and map at the final
  checkpoint. 'random' (the paper): config.evolution.maps_per_layer maps
  drawn without replacement from config.seed and the layer; 'most_active':
  the maps with the highest top-1 activity.
  """
  n = min(config.evolution.maps_per_layer, activity.shape[1])
  if config.evolution.maps == "random":
    rng = np.random.default_rng([config.seed, layer, 2])
    return sorted(int(m) + 1 for m in rng.choice(activity.shape[1], n,
                                                 replace=False))
  top = np.argsort(-activity.max(0), kind="stable")[:n]
  return [int(m) + 1 for m in top]


def _activity(enc, store, layer, batch_size) -> np.ndarray:
  """(N, C) mean |activation| of every clip and map of `layer`."""
  out = []
  order = []
  for idx, x in common.clip_batches(store, batch_size):
    out.append(np.asarray(inversion.map_activity(enc.model, enc.params, x,
                                                 layer)))
    order.append(idx)
  activity = np.empty((len(store), out[0].shape[1]), np.float32)
  activity[np.concatenate(order)] = np.concatenate(out)
  return activity


def feature_evolution(config, workdir: str, inputs=None) -> dict:
  """Maps of config.evolution.layers sonified at every kept checkpoint.

  For each layer: the maps evolution_maps picks, each on the clip with its
  largest activity at the contrastive run's last checkpoint (a map dead
  there, silent on every clip, on the clip with its largest activity at the
  first kept step instead, and marked dead),
  sonified at every kept step (step 0, the initialisation, included when
  the run kept it). Also, per layer, the maps dead at the end (silent on
  every clip) and how many of them were active for some clip at the first
  kept step: the paper's "a dead unit starts with a full spectrogram and
  fades". Writes WAVs, thumbnails and one figure per layer.
  """
  inputs = inputs or common.load_inputs(config, workdir)
  _, run = common.seed_runs(config.contrastive, "contrastive")[0]
  steps = loop.list_checkpoint_steps(run)
  if len(steps) < 2:
    raise ValueError(f"{run} keeps {len(steps)} checkpoint(s); the feature "
                     "evolution needs a kept series (train.keep_period)")
  encoders = [cnn12_eval.load_encoder(run, step) for step in steps]
  final, first = encoders[-1], encoders[0]
  folder, saved = common.resume(
      config, workdir, inputs, "feature_evolution",
      {"contrastive": final.record["fingerprint"], "steps": steps})
  if saved is not None:
    return saved
  entries, dead = [], []
  bar = common.progress(len(config.evolution.layers), "feature evolution")
  for layer in config.evolution.layers:
    bar.update()
    end = _activity(final, inputs.store, layer, config.batch_size)
    start = _activity(first, inputs.store, layer, config.batch_size)
    dead_end = np.flatnonzero(end.max(0) <= 0)
    dead.append({"layer": layer, "maps": int(end.shape[1]),
                 "dead_at_end": [int(m) + 1 for m in dead_end],
                 "alive_at_first_step": [
                     int(m) + 1 for m in dead_end if start[:, m].max() > 0]})
    for m in evolution_maps(config, end, layer):
      # The clip that activates the map most at the end; a map dead there
      # has none, so it gets the one that activated it most at the first
      # kept step (where the paper's dead unit still sounds).
      dead_map = end[:, m - 1].max() <= 0
      clip = int(np.argmax((start if dead_map else end)[:, m - 1]))
      entries.append(_evolve(folder, inputs, layer, m, clip,
                             float(end[clip, m - 1]), steps, encoders))
  bar.close()
  results = {"run": run, "steps": steps, "maps": config.evolution.maps,
             "first_step": steps[0], "entries": entries, "dead": dead}
  results["dead_alive_at_start"] = dead_alive_interval(dead)
  return common.save_results(folder, results)


def dead_alive_interval(dead: list[dict]) -> dict:
  """Clopper-Pearson interval of the fraction of maps dead at the end that
  were active at the first kept step, over the layers' dead maps."""
  n = sum(len(d["dead_at_end"]) for d in dead)
  k = sum(len(d["alive_at_first_step"]) for d in dead)
  return statistics.binomial_interval(k, n)


def _evolve(folder, inputs, layer, m, clip, score, steps, encoders) -> dict:
  """Sonifies map m of `layer` on `clip` at every step; its media and
  figure; the entry the page and results.json list."""
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
                         "sonification_png": png, "silent": not np.any(s)})
  media.spectrogram_pairs_figure(
      os.path.join(folder, f"fig5_evolution_L{layer:02d}_m{m:04d}.png"),
      [(x, s) for s in waves], row_labels=[f"step {st}" for st in steps],
      column_titles=("input", f"block {layer} map {m}"),
      title=f"Contrastive feature evolution: block {layer}, map {m}, clip "
      f"{inputs.ids[clip]}")
  return {"layer": layer, "map": m, "clip": inputs.ids[clip],
          "clip_index": clip, "activity": score, "dead_at_end": score <= 0,
          "input_wav": f"{rel}/input.wav", "input_png": f"{rel}/input.png",
          "steps": step_entries}


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
  config.layer_importance.probe.seeds; the per-seed values for the
  findings); dashed lines from the whole-encoder
  runs (config.supervised, .probe, .finetune summaries) where present."""
  inputs = inputs or common.load_inputs(config, workdir)
  models = common.encoder_models(config)
  folder, saved = common.resume(config, workdir, inputs, "layer_importance",
                          common.fingerprints(models))
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
    results["encoders"][name] = {"mean": out["mean"], "ci95": out["ci95"],
                                 "values": out["values"]}
  results["baselines"] = _whole_encoder_baselines(config, results["metric"])
  figures.layer_importance_figure(
      os.path.join(folder, "fig4_layer_importance.png"), results)
  return common.save_results(folder, results)


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


def sonification_page(config, workdir: str,
                      inputs: Inputs | None = None) -> dict:
  """WAVs, spectrogram pictures and the offline page (index.html).

  For each model and layer: the config.page.maps_per_layer maps with the
  highest top-1 activity (maps silent for every clip marked), each with its
  top-k clips: input, sonification and residual. The feature evolution and
  the figures of the analyses already run are included.
  """
  inputs = inputs or common.load_inputs(config, workdir)
  models = common.encoder_models(config)
  found = topk(config, workdir, inputs, models)
  folder, saved = common.resume(config, workdir, inputs, "sonification_page",
                          common.fingerprints(models))
  if saved is not None and os.path.exists(saved["page"]):
    return saved
  manifest = {"title": "CNN12 sonifications", "sample_rate": common.SAMPLE_RATE,
              "note": (f"{len(inputs.store)} clips of the {config.split} "
                       f"split (data {inputs.fingerprint}); top "
                       f"{config.topk.k} clips of the "
                       f"{config.page.maps_per_layer} most active maps per "
                       "layer."),
              "models": {}, "figures": []}
  pairs_figures = []
  bar = common.progress(len(models) * len(config.layers), "page media")
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
      sonified = common.sonify_pairs_of_store(
          enc, inputs.store, layer, pairs, config.batch_size, config.chunk_size)
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
  evolution = common.done(workdir, "feature_evolution")
  if evolution:
    ev_dir = common.analysis_dir(workdir, "feature_evolution")
    manifest["models"]["contrastive"]["evolution"] = [
        _copied_evolution(e, ev_dir, folder) for e in evolution["entries"]]
  manifest["figures"] = pairs_figures + _analysis_figures(workdir, folder)
  path = page.write_page(folder, manifest)
  return common.save_results(folder, {"page": path, "maps": {
      name: {str(l["layer"]): [m["map"] for m in l["maps"]]
             for l in entry["layers"]}
      for name, entry in manifest["models"].items()}})


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
    src = common.analysis_dir(workdir, name)
    if os.path.exists(os.path.join(src, png)):
      out.append({"title": title, "png": _copy(src, png, folder, "figures")})
  return out


# --- Everything --------------------------------------------------------------


# The run folders each analysis reads (residual_test: any of its three).
NEEDS = {"topk": ("supervised", "contrastive"),
         "coherence": ("supervised", "contrastive"),
         "active_maps": ("supervised", "contrastive"),
         "feature_evolution": ("contrastive",),
         "layer_importance": ("supervised", "contrastive"),
         "sonification_page": ("supervised", "contrastive")}


def check_runs(config, analyses) -> None:
  """Refuses, before any data is made or read, analyses whose run folders
  are not given or hold no seed_<s> run."""
  for name in analyses:
    for field in NEEDS.get(name, ()):
      common.seed_runs(config[field], field)
  if "residual_test" in analyses:
    given = [f for f in ("supervised", "probe", "finetune") if config[f]]
    if not given:
      raise ValueError("the residual test needs classifier runs: set "
                       "config.supervised, config.probe or config.finetune")
    for field in given:
      common.seed_runs(config[field], field)


def run_all(config, workdir: str, analyses=ANALYSES) -> dict:
  """Runs the analyses named (all by default) and writes summary.json and
  summary.md: the paper's findings with their intervals and verdicts."""
  workdir = provenance.check_workdir(workdir)
  check_config(config)
  for name in analyses:
    if name not in ANALYSES:
      raise ValueError(f"unknown analysis {name!r}; have {ANALYSES}")
  check_runs(config, analyses)
  inputs = common.load_inputs(config, workdir)
  results = {}
  for name in ANALYSES:
    if name in analyses:
      logging.info("analysis %s", name)
      results[name] = globals()[name](config, workdir, inputs)
  summary = sonification_findings.findings(results)
  provenance.write_json_atomic(os.path.join(workdir, "summary.json"), {
      "findings": summary, "data": inputs.fingerprint,
      "rule": findings_report.VERDICT_RULE,
      "analyses": [a for a in ANALYSES if a in analyses]})
  provenance.write_text_atomic(os.path.join(workdir, "summary.md"),
                               format_summary(summary))
  return {**results, "findings": summary}


def format_summary(found: list[dict]) -> str:
  return ("# Sonification: the paper's findings on these models\n\n"
          + findings_report.format_findings(found) + "\n"
          + findings_report.VERDICT_RULE + "\n")


def run_analyses(config, workdir: str, analyses=ANALYSES) -> dict:
  """What `python -m recon_jax` runs for a configs/sonification.py config:
  the analyses (run_all), plus "lines": where each one's results are and
  one line per finding."""
  out = run_all(config, workdir, tuple(analyses))
  lines = [f"{name}: {os.path.join(workdir, name)}" for name in analyses]
  if "sonification_page" in analyses:
    lines.append("page: " + os.path.join(
        common.analysis_dir(workdir, "sonification_page"), "index.html"))
  lines += [f"{f['verdict']}: {f['finding']} "
            f"({statistics.format_interval(f)})" for f in out["findings"]]
  return {**out, "lines": lines}
