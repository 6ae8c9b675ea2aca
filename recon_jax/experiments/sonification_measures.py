"""The sonification paper's measured claims, each with its test.

  residual_test  Fig. 6: each classifier's metric on r = x - s, s the
                 sonification of the clip's most active map of a layer, vs
                 on x; with two controls, the same removal of a random
                 active map's sonification and of white noise of s's
                 energy (the paper's claim is about what the most active
                 map holds, not about removing energy).
  coherence      Fig. 7: mean top-k magnitude-squared coherence of x and s
                 per layer, supervised vs contrastive encoders.
  active_maps    Sec. 3.3: the fraction of a deep layer's maps active for
                 some clip, contrastive vs supervised.

Every effect gets an interval from metrics.statistics: a paired bootstrap
over the clips with each group's seeds redrawn (config.statistics: the
number of resamples, the generator's seed, the level). The per-clip values
the intervals come from are saved beside results.json (logits.npz,
active.npz; the coherence values in results.json), so a test can be redone.
"""
import os

from absl import logging
import numpy as np

from recon_jax import inversion
from recon_jax import metrics
from recon_jax import provenance
from recon_jax.experiments import sonification_common as common
from recon_jax.metrics import statistics
from recon_jax.report import sonification_figures as figures
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup

GROUPS = {"supervised": "supervised", "fc_only": "probe", "full": "finetune"}
CONDITIONS = ("most_active", "random_map", "same_energy_noise")
SHUFFLES = 5  # Label shuffles the "learned" check compares with.
LOGITS_NPZ = "logits.npz"
ACTIVE_NPZ = "active.npz"


def every_seeds_encoder(config) -> dict:
  """{'supervised' | 'contrastive': [(seed, cnn12_eval.Encoder)]}: every
  seed of config.supervised and config.contrastive."""
  return {name: [(seed, cnn12_eval.load_encoder(run))
                 for seed, run in common.seed_runs(config[name], name)]
          for name in ("supervised", "contrastive")}


def fingerprints_by_seed(groups: dict) -> dict:
  """{'group/seed_s': parameter fingerprint} of {group: [(seed, model)]}
  (what an analysis' record names)."""
  return {f"{g}/seed_{s}": m.record["fingerprint"]
          for g, runs in groups.items() for s, m in runs}


def seed_spread(values) -> dict:
  """{mean, ci95 (t-interval half-width over seeds, NaN for one), values}."""
  values = [float(v) for v in values]
  if len(values) == 1:
    return {"mean": values[0], "ci95": float("nan"), "values": values}
  mean, half = metrics.confidence_interval_95(values)
  return {"mean": mean, "ci95": half, "values": values}


def _draw(config, num_clips, seeds_per_group):
  s = config.statistics
  return statistics.draw_resamples(num_clips, seeds_per_group,
                                   num_resamples=s.num_resamples, seed=s.seed)


def _interval(config, estimate, distribution, what: str) -> dict:
  return statistics.percentile_interval(
      estimate, distribution, config.statistics.level, method=what)


# --- Residual test (Fig. 6) --------------------------------------------------


class ClipMetric:
  """The classifier metric of a store's labels: accuracy (multi-class) or
  mAP (multi-label), on all clips and on bootstrap resamples of them."""

  def __init__(self, store):
    self.name = "mAP" if store.multilabel else "accuracy"
    self.chance = sup.chance_levels(store)[self.name]
    self.labels = np.asarray(store.labels)

  def __call__(self, logits) -> float:
    if self.name == "mAP":
      return metrics.mean_average_precision(self.labels, logits)
    return metrics.accuracy(self.labels, logits)

  def resampled(self, logits, clip_indices, chunk: int = 250) -> np.ndarray:
    """(B,) the metric of each resample (rows of clip_indices (B, N))."""
    if self.name == "accuracy":
      correct = (np.asarray(logits).argmax(-1) == self.labels).astype(float)
      return correct[clip_indices].mean(axis=1)
    return np.concatenate([
        metrics.resampled_mean_average_precision(
            self.labels, logits, clip_indices[i:i + chunk])
        for i in range(0, len(clip_indices), chunk)])


def energy_matched_noise(reference: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
  """White Gaussian noise with the L2 energy of `reference` (zeros for a
  silent reference)."""
  noise = rng.standard_normal(reference.shape)
  energy = float(np.linalg.norm(reference))
  if energy == 0:
    return np.zeros_like(reference)
  return (noise * (energy / np.linalg.norm(noise))).astype(reference.dtype)


def removals(model, params, store, layer, config) -> tuple[dict, dict]:
  """What each condition subtracts from every clip at block `layer`.

  Returns ({condition: {clip: signal}}, counts {"silent_most_active",
  "silent_random_map"}: clips whose chosen map is silent, so nothing is
  removed). The random maps and the noise are drawn from config.seed and
  the layer.
  """
  active, _, silent = common.sonify_most_active(
      model, params, store, layer, config.batch_size, config.chunk_size)
  rng = np.random.default_rng([config.seed, layer, 0])
  random_map, _, silent_random = common.sonify_chosen(
      model, params, store, layer,
      lambda activity, _: common.random_active_map(activity, rng),
      config.batch_size, config.chunk_size)
  noise_rng = np.random.default_rng([config.seed, layer, 1])
  noise = {i: energy_matched_noise(active[i], noise_rng)
           for i in sorted(active)}
  return ({"most_active": active, "random_map": random_map,
           "same_energy_noise": noise},
          {"silent_most_active": int(sum(silent.values())),
           "silent_random_map": int(sum(silent_random.values()))})


def _key(group, seed, layer=None, condition="clean"):
  return (f"{group}/seed_{seed}/clean" if layer is None
          else f"{group}/seed_{seed}/L{layer}/{condition}")


def residual_logits(config, store, classifiers) -> tuple[dict, dict]:
  """Every classifier's logits on the clean clips and on each condition's
  residuals: ({_key: (N, C)}, {group: [per layer counts]})."""
  logits, counts = {}, {}
  cache = {}  # {'encoder': fingerprint, layer: (removals, counts)}
  bar = common.progress(sum(map(len, classifiers.values())) *
                        len(config.layers), "residual test")
  for group, runs in classifiers.items():
    counts[group] = [dict() for _ in config.layers]
    for seed, clf in runs:

      def predict(clips, clf=clf):
        return sup.predict_logits(clf.encoder, clf.head, clf.params, clips)

      logits[_key(group, seed)] = predict(store)
      # fc-only runs share the frozen encoder: sonify it once.
      fingerprint = provenance.fingerprint_arrays(clf.params["encoder"])
      if cache.get("encoder") != fingerprint:
        cache = {"encoder": fingerprint}
      for li, layer in enumerate(config.layers):
        if layer not in cache:
          cache[layer] = removals(clf.encoder, clf.params["encoder"], store,
                                  layer, config)
        removed, layer_counts = cache[layer]
        for name, value in layer_counts.items():
          counts[group][li][name] = counts[group][li].get(name, 0) + value
        for condition in CONDITIONS:
          residual = common.replace_clips(store, {
              i: store.clip(i) - r for i, r in removed[condition].items()})
          logits[_key(group, seed, layer, condition)] = predict(residual)
        bar.update()
  bar.close()
  return logits, counts


def residual_statistics(config, metric: ClipMetric, logits: dict,
                        seeds: dict) -> dict:
  """The residual test's numbers and intervals from the saved logits.

  seeds: {group: [seed, ...]}. Per group: "clean", and per layer
  "residual" (most active map), "random_map", "same_energy_noise" (mean,
  ci95 over seeds, values: the figure's points); and the bootstrap
  intervals: "learned" (clean metric - the metric of the same scores on
  shuffled clips: chance, resampled alike), per layer "drop" (clean -
  residual), "versus_random" (random-map residual - residual),
  "versus_noise" (noise residual - residual), each also averaged over the
  layers ("..._over_layers").
  """
  num_clips = len(metric.labels)
  drawn = _draw(config, num_clips, {g: len(s) for g, s in seeds.items()})
  what = (f"paired bootstrap over {num_clips} clips, seeds redrawn, "
          f"{config.statistics.num_resamples} resamples")
  layers = list(config.layers)
  groups = {}
  for group, group_seeds in seeds.items():
    full, boot = {}, {}  # (layer, condition) or "clean" -> (S,), (S, B)
    names = [("clean", None, "clean")] + [
        ((layer, c), layer, c) for layer in layers for c in CONDITIONS]
    for name, layer, condition in names:
      z = [logits[_key(group, s, layer, condition)] for s in group_seeds]
      full[name] = np.array([metric(v) for v in z])
      boot[name] = np.stack([metric.resampled(v, drawn.clips) for v in z])
    pick = drawn.seeds[group]

    def effect(a, b, full=full, boot=boot, pick=pick):
      """Mean over seeds of metric(a) - metric(b): (estimate, (B,))."""
      return (float(np.mean(full[a] - full[b])),
              statistics.seed_mean(boot[a] - boot[b], pick))

    def over_layers(pairs, full=full, boot=boot, pick=pick):
      est = float(np.mean([np.mean(full[a] - full[b]) for a, b in pairs]))
      dist = np.mean([statistics.seed_mean(boot[a] - boot[b], pick)
                      for a, b in pairs], axis=0)
      return _interval(config, est, dist, what)

    # Learned: the metric minus the same scores' metric on shuffled clips,
    # both on each resample (mAP of clips drawn with replacement is biased
    # up; against the constant chance level that bias would not cancel).
    clean = [logits[_key(group, s)] for s in group_seeds]
    shuffles = [np.random.default_rng([config.statistics.seed, 7, i])
                .permutation(num_clips) for i in range(SHUFFLES)]
    null_full = np.array([np.mean([metric(z[p]) for p in shuffles])
                          for z in clean])
    null_boot = np.stack([np.mean([metric.resampled(z[p], drawn.clips)
                                   for p in shuffles], axis=0)
                          for z in clean])
    learned = _interval(
        config, float(np.mean(full["clean"] - null_full)),
        statistics.seed_mean(boot["clean"] - null_boot, pick),
        f"{what}; against the same scores on clips shuffled ({SHUFFLES} "
        "shuffles)")
    out = {"clean": seed_spread(full["clean"]), "learned": learned}
    for c, field in zip(CONDITIONS, ("residual", "random_map",
                                     "same_energy_noise")):
      out[field] = [seed_spread(full[(l, c)]) for l in layers]
    for field, (a, b) in {
        "drop": ("clean", "most_active"),
        "versus_random": ("random_map", "most_active"),
        "versus_noise": ("same_energy_noise", "most_active")}.items():
      pairs = [(a if a == "clean" else (l, a), (l, b)) for l in layers]
      out[field] = [_interval(config, *effect(*p), what) for p in pairs]
      out[field + "_over_layers"] = over_layers(pairs)
    groups[group] = out
  return {"metric": metric.name, "chance": metric.chance, "layers": layers,
          "seeds": {g: list(s) for g, s in seeds.items()}, "groups": groups}


def residual_test(config, workdir: str, inputs=None) -> dict:
  """Metric of each classifier on the residuals per layer, with controls.

  Groups: supervised (config.supervised's runs), fc_only (config.probe),
  full (config.finetune). The sonifications come from the evaluated
  classifier's own encoder (frozen contrastive encoder for fc-only runs,
  the fine-tuned one for full runs), since "the most active map" is a
  property of that network. Returns residual_statistics' dict plus
  "removed_nothing": per group and layer, clips whose chosen map was
  silent.
  """
  inputs = inputs or common.load_inputs(config, workdir)
  classifiers = {}
  for group, field in GROUPS.items():
    if config[field]:
      classifiers[group] = [(seed, cnn12_eval.load_classifier(run))
                            for seed, run in common.seed_runs(config[field],
                                                              field)]
  if not classifiers:
    raise ValueError("the residual test needs classifier runs: set "
                     "config.supervised, config.probe or config.finetune")
  models = fingerprints_by_seed(classifiers)
  folder, saved = common.resume(config, workdir, inputs, "residual_test",
                                models)
  if saved is not None:
    return saved
  path = os.path.join(folder, LOGITS_NPZ)
  if os.path.exists(path):  # Made by this record (resume checked it).
    logits = provenance.read_npz(path)
    counts = provenance.read_json(os.path.join(folder, "counts.json"))
  else:
    logits, counts = residual_logits(config, inputs.store, classifiers)
    provenance.write_json_atomic(os.path.join(folder, "counts.json"), counts)
    provenance.write_npz_atomic(path, logits)
  metric = ClipMetric(inputs.store)
  results = residual_statistics(
      config, metric, logits,
      {g: [s for s, _ in runs] for g, runs in classifiers.items()})
  results["removed_nothing"] = counts
  for group, g in results["groups"].items():
    logging.info("residual test %s: clean %s %.4f, drop over layers %s",
                 group, metric.name, g["clean"]["mean"],
                 statistics.format_interval(g["drop_over_layers"], 4))
  figures.residual_figure(os.path.join(folder, "fig6_residual_test.png"),
                          results)
  return common.save_results(folder, results)


# --- Coherence (Fig. 7) ------------------------------------------------------


def coherence_values(config, x, s) -> np.ndarray:
  """(B,) mean top-k coherence of each clip and its sonification; NaN where
  it is undefined (a silent sonification)."""
  k = config.coherence.k
  if config.coherence.method == "paper":
    return metrics.mean_topk_coherence_batch(x, s, common.SAMPLE_RATE, k=k,
                                             on_undefined="nan")
  return np.array([metrics.mean_top_peaks_coherence(
      a, b, common.SAMPLE_RATE, k=k, on_undefined="nan")
                   for a, b in zip(x, s)])


def coherence_per_clip(config, enc, store, layer) -> np.ndarray:
  """(N,) coherence of each clip with its most active map's sonification."""
  sonified, _, _ = common.sonify_most_active(
      enc.model, enc.params, store, layer, config.batch_size,
      config.chunk_size)
  values = np.full(len(store), np.nan)
  for idx, x in common.clip_batches(store, config.batch_size):
    values[idx] = coherence_values(config, x, np.stack([sonified[i]
                                                        for i in idx]))
  return values


def _fall_tests(config, falls: dict, what: str) -> dict:
  """{group: {"falls": interval}, "falls_faster": supervised's fall minus
  contrastive's} from {group: (estimate, (B,) resampled falls)}."""
  out = {g: {"falls": _interval(config, *f, what)} for g, f in falls.items()}
  if {"supervised", "contrastive"} <= set(falls):
    (es, ds), (ec, dc) = falls["supervised"], falls["contrastive"]
    out["falls_faster"] = _interval(config, es - ec, ds - dc, what)
  return out


def coherence_statistics(config, values: dict) -> dict:
  """Intervals of the coherence claims from per-clip values.

  values: {group: (S, L, N) per seed, layer and clip (NaN: silent)}.
  Per group "falls" (first layer - last layer); "falls_faster"
  (supervised's fall - contrastive's) when both groups are there.
  """
  num_clips = next(iter(values.values())).shape[-1]
  seeds = {g: v.shape[0] for g, v in values.items()}
  drawn = _draw(config, num_clips, seeds)
  what = (f"paired bootstrap over {num_clips} clips, seeds redrawn, "
          f"{config.statistics.num_resamples} resamples")
  falls = {}
  for g, v in values.items():
    means = statistics.finite_mean(v)  # (S, L)
    est = float(np.mean(means[:, 0] - means[:, -1]))
    per_seed = np.stack([statistics.resampled_finite_mean(v[s, 0], drawn.clips)
                         - statistics.resampled_finite_mean(v[s, -1], drawn.clips)
                         for s in range(v.shape[0])])
    falls[g] = (est, statistics.seed_mean(per_seed, drawn.seeds[g]))
  return _fall_tests(config, falls, what)


def coherence_per_map(config, enc, inputs, layer) -> np.ndarray:
  """(C,) the authors' notebook measure of each map of `layer`: the mean
  over its top config.coherence.inputs_per_map clips (ranked before
  pooling, config.topk.exclude left out) of the mean top-k peak coherence
  of clip and sonification; NaN for a map none of whose clips gives k
  peaks (or sounds)."""
  keep = common.kept_clips(inputs, config.topk.exclude)
  (indices, _), = common.top_k_of_store(
      enc, inputs.store, [layer], config.coherence.inputs_per_map,
      config.batch_size, activation="pre_pool", keep=keep).values()
  pairs = [(int(clip), c + 1) for c in range(indices.shape[0])
           for clip in indices[c]]
  sonified = common.sonify_pairs_of_store(enc, inputs.store, layer, pairs,
                                          config.batch_size,
                                          config.chunk_size)
  values = np.array([metrics.mean_top_peaks_coherence(
      inputs.store.clip(clip), sonified[clip, m], common.SAMPLE_RATE,
      k=config.coherence.k, on_undefined="nan") for clip, m in pairs])
  return statistics.finite_mean(values.reshape(indices.shape))


def coherence_statistics_over_maps(config, values: dict) -> dict:
  """coherence_statistics for the authors' measure, whose unit is a map:
  values {group: [per seed [per layer (C_l,)]]}; the first and the last
  layer's maps are resampled independently (they are different maps)."""
  s = config.statistics
  first = values[next(iter(values))][0][0].size
  last = values[next(iter(values))][0][-1].size
  if min(first, last) < 2:  # A layer of one map: nothing to resample.
    none = {"estimate": float("nan"), "low": float("nan"),
            "high": float("nan"), "level": s.level,
            "method": f"no interval: a layer of {min(first, last)} map"}
    out = {g: {"falls": dict(none)} for g in values}
    if {"supervised", "contrastive"} <= set(values):
      out["falls_faster"] = dict(none)
    return out
  seeds = {g: len(v) for g, v in values.items()}
  draw_first = statistics.draw_resamples(first, seeds,
                                         num_resamples=s.num_resamples,
                                         seed=s.seed)
  draw_last = statistics.draw_resamples(last, num_resamples=s.num_resamples,
                                        seed=s.seed + 1)
  what = (f"bootstrap over maps ({first} of the first layer, {last} of the "
          f"last, resampled apart), seeds redrawn, {s.num_resamples} "
          "resamples")
  falls = {}
  for g, v in values.items():
    est = float(np.mean([statistics.finite_mean(seed[0])
                         - statistics.finite_mean(seed[-1]) for seed in v]))
    per_seed = np.stack([statistics.resampled_finite_mean(seed[0], draw_first.clips)
                         - statistics.resampled_finite_mean(seed[-1], draw_last.clips)
                         for seed in v])
    falls[g] = (est, statistics.seed_mean(per_seed, draw_first.seeds[g]))
  return _fall_tests(config, falls, what)


def _jsonable_values(v):
  return [None if np.isnan(c) else float(c) for c in v]


def coherence(config, workdir: str, inputs=None) -> dict:
  """Mean top-k coherence of inputs and sonifications, per layer.

  Per encoder group (supervised: every seed of config.supervised;
  contrastive: every seed of config.contrastive) and layer.
  config.coherence.method 'paper' (Eq. 3): each clip with its most active
  map's sonification, scipy's Welch defaults, the k largest values; a
  clip's value is left out where its sonification is silent (counted);
  tested by coherence_statistics. 'authors' (their notebook): every map
  with its top config.coherence.inputs_per_map clips, nperseg 160,
  noverlap 80, nfft 512, the k highest peaks, averaged per map then over
  the maps (coherence_per_map; tested by coherence_statistics_over_maps).
  "coherence": the mean per seed (mean and t-interval over seeds, the
  figure's points); "tests": the bootstrap intervals.
  """
  inputs = inputs or common.load_inputs(config, workdir)
  encoders = every_seeds_encoder(config)
  models = fingerprints_by_seed(encoders)
  folder, saved = common.resume(config, workdir, inputs, "coherence", models)
  if saved is not None:
    return saved
  by_map = config.coherence.method == "authors"
  values = {}
  bar = common.progress(sum(map(len, encoders.values())) *
                        len(config.layers), "coherence")
  for name, runs in encoders.items():
    per_seed = []
    for seed, enc in runs:
      per_layer = []
      for layer in config.layers:
        per_layer.append(
            coherence_per_map(config, enc, inputs, layer) if by_map
            else coherence_per_clip(config, enc, inputs.store, layer))
        bar.update()
      per_seed.append(per_layer)
      logging.info("coherence %s seed %d: %s", name, seed,
                   [round(float(np.nanmean(v)), 4) if np.isfinite(v).any()
                    else None for v in per_layer])
    values[name] = per_seed
  bar.close()
  groups = {}
  for name, per_seed in values.items():
    means = np.array([[statistics.finite_mean(v) for v in seed]
                      for seed in per_seed])  # (S, L)
    groups[name] = {
        "coherence": [seed_spread(means[:, l]) for l in range(means.shape[1])],
        "left_out": [int(sum(np.isnan(seed[l]).sum() for seed in per_seed))
                     for l in range(means.shape[1])],
        "seeds": [s for s, _ in encoders[name]],
        ("per_map" if by_map else "per_clip"): [
            [_jsonable_values(v) for v in seed] for seed in per_seed]}
  tests = (coherence_statistics_over_maps(config, values) if by_map else
           coherence_statistics(config, {g: np.array(v)
                                         for g, v in values.items()}))
  results = {"layers": list(config.layers), "k": config.coherence.k,
             "method": config.coherence.method, "clips": len(inputs.store),
             "unit": "map" if by_map else "clip", "groups": groups,
             "tests": tests}
  figures.coherence_figure(os.path.join(folder, "fig7_coherence.png"),
                           results)
  return common.save_results(folder, results)


# --- Active maps (Sec. 3.3) --------------------------------------------------


def active_per_clip(enc, store, layer, batch_size) -> np.ndarray:
  """bool (N, C): whether map c is active (mean |activation| > 0) on clip n
  at block `layer`."""
  out = np.zeros((len(store), enc.model.conv_widths[layer - 1]), bool)
  for idx, x in common.clip_batches(store, batch_size):
    out[idx] = np.asarray(inversion.map_activity(enc.model, enc.params, x,
                                                 layer)) > 0
  return out


def _resampled_active_fraction(active, clip_indices, chunk=50):
  """(B,) fraction of maps active for some clip of each resample."""
  return np.concatenate([active[clip_indices[i:i + chunk]].any(axis=1).mean(-1)
                         for i in range(0, len(clip_indices), chunk)])


def active_maps(config, workdir: str, inputs=None) -> dict:
  """Fraction of each deep layer's maps active for some clip.

  Per encoder group and seed, for config.active_maps.layers; the interval
  of contrastive - supervised of that fraction averaged over the layers
  (the paper: deeper contrastive layers keep more maps active).
  """
  inputs = inputs or common.load_inputs(config, workdir)
  encoders = every_seeds_encoder(config)
  models = fingerprints_by_seed(encoders)
  folder, saved = common.resume(config, workdir, inputs, "active_maps",
                                models)
  if saved is not None:
    return saved
  layers = list(config.active_maps.layers)
  active = {}
  for name, runs in encoders.items():
    for seed, enc in runs:
      for layer in layers:
        active[f"{name}/seed_{seed}/L{layer}"] = active_per_clip(
            enc, inputs.store, layer, config.batch_size)
  provenance.write_npz_atomic(os.path.join(folder, ACTIVE_NPZ), active)
  num_clips = len(inputs.store)
  drawn = _draw(config, num_clips, {g: len(r) for g, r in encoders.items()})
  what = (f"paired bootstrap over {num_clips} clips, seeds redrawn, "
          f"{config.statistics.num_resamples} resamples")
  groups, fraction = {}, {}
  for name, runs in encoders.items():
    full = np.array([[active[f"{name}/seed_{s}/L{l}"].any(0).mean()
                      for l in layers] for s, _ in runs])  # (S, L)
    boot = np.stack([np.mean([_resampled_active_fraction(
        active[f"{name}/seed_{s}/L{l}"], drawn.clips) for l in layers],
                             axis=0) for s, _ in runs])  # (S, B)
    fraction[name] = (float(full.mean()),
                      statistics.seed_mean(boot, drawn.seeds[name]))
    groups[name] = {"fraction": [seed_spread(full[:, i])
                                 for i in range(len(layers))],
                    "seeds": [s for s, _ in runs],
                    "over_layers": _interval(config, *fraction[name], what)}
  (ec, dc), (es, ds) = fraction["contrastive"], fraction["supervised"]
  results = {"layers": layers, "clips": num_clips, "groups": groups,
             "contrastive_minus_supervised": _interval(config, ec - es,
                                                       dc - ds, what)}
  return common.save_results(folder, results)
