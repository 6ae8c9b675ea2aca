"""The thesis's reconstruction experiment (SPEC A4, thesis 7), end to end.

One random test phone per class and as many chirps; every method x layer
cell reconstructs both from that layer's activations and is scored by R,
spectrogram mxcorr2 and waveform mxcorr (Griffin-Lim). Each finished cell is
saved (atomically) under WORKDIR/cells, so a killed run resumes without
redoing it. Outputs, all under WORKDIR:
  results.csv, results.md      the measures per method x layer x stimulus
  fig9_measures.png            three measures per layer, phones vs chirps
  fig10_histograms.png         intensity histograms of one phone
  fig11_phones_vs_chirps.png   originals vs reconstructions (one method)
  figB1_one_phone.png          one phone, every method x layer
  wavs/                        originals and reconstructions as audio
  baselines.json               STFT round trip and waveform-mxcorr threshold

Networks: the search methods (annealing, backprop) invert the classifier
(`search_network: "valid"`, as the thesis) unless configured otherwise; the
decoder methods invert the padded encoder the decoders are trained against.
"""
import csv
import dataclasses
import json
import os
import time

from absl import logging
import jax
import numpy as np

from recon_jax import data as data_lib
from recon_jax import inversion
from recon_jax import metrics
from recon_jax.report import audio
from recon_jax.report import figures

METHODS = inversion.METHODS
METHOD_NAMES = {"annealing": "Sim. annealing", "backprop": "Backprop",
                "decoder": "Decoding", "decoder_backprop": "Dec. and backpr."}
MEASURES = ("R", "mxcorr2", "waveform_mxcorr")
STIMULI = ("phones", "chirps")


def _dataclass_from(cls, config_block):
  fields = {f.name for f in dataclasses.fields(cls)}
  values = dict(config_block)
  unknown = set(values) - fields
  if unknown:
    raise ValueError(f"unknown {cls.__name__} field(s) in the config: "
                     f"{sorted(unknown)}")
  return cls(**values)


def select_stimuli(data, num_chirps: int | None, seed: int) -> dict:
  """One random TEST phone per class, and chirps of phone lengths.

  Returns:
    {"phones"|"chirps": {"inputs": (N, F, T) network inputs, "waveforms":
    (N, L), "names": N strings}}.
  """
  rng = np.random.default_rng([seed, 7])
  labels = data.test.labels48
  picks = []
  for c in range(len(data.phones48)):
    members = np.flatnonzero(labels == c)
    if not len(members):
      raise data_lib.CorpusError(f"no TEST phone of class "
                                 f"{data.phones48[c]!r} to reconstruct")
    picks.append(int(rng.choice(members)))
  picks = np.asarray(picks)
  n = len(picks) if num_chirps is None else num_chirps
  halves = [data_lib.make_chirps(n // 2, data.max_length, seed=seed + 1,
                                 method="linear", lengths=data.train.lengths),
            data_lib.make_chirps(n - n // 2, data.max_length, seed=seed + 2,
                                 method="logarithmic",
                                 lengths=data.train.lengths)]
  chirp_spec = np.concatenate([h["spectrograms"] for h in halves])
  chirp_wave = np.concatenate([h["waveforms"] for h in halves])
  chirp_names = [f"chirp{i}_{kind}_{int(a)}-{int(b)}Hz"
                 for i, (kind, a, b) in enumerate(
                     [("lin", s, e) for s, e in zip(halves[0]["start_hz"],
                                                    halves[0]["end_hz"])] +
                     [("log", s, e) for s, e in zip(halves[1]["start_hz"],
                                                    halves[1]["end_hz"])])]
  return {
      "phones": {
          "inputs": data_lib.network_inputs(data, "test")[picks],
          "waveforms": data.test.waveforms[picks],
          "names": [data.phones48[c] for c in labels[picks]],
      },
      "chirps": {
          "inputs": chirp_spec - data.mean_spectrogram,
          "waveforms": chirp_wave,
          "names": chirp_names,
      },
  }


def _save_npz_atomically(path, **arrays):
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


class _Decoders:
  """Trains (or loads) the decoder of each layer once, on demand."""

  def __init__(self, config, workdir, encoder, train_inputs):
    self.config, self.workdir = config, workdir
    self.model, self.params = encoder
    self.train_inputs = train_inputs
    self._cache = {}

  def get(self, layer: int, unpooling: str = "blind"):
    key = (layer, unpooling)
    if key not in self._cache:
      directory = os.path.join(self.workdir, "decoders", f"{unpooling}_L{layer}")
      if os.path.exists(os.path.join(directory, "decoder.json")):
        decoder = inversion.load_decoder(directory, self.model, self.params,
                                         layer)
      else:
        train_config = _dataclass_from(inversion.DecoderTrainConfig,
                                       self.config.decoder_train)
        train_config = dataclasses.replace(train_config, unpooling=unpooling)
        logging.info("Training the %s decoder of layer %d in %s", unpooling,
                     layer, directory)
        decoder = inversion.train_decoder(
            self.model, self.params, layer, workdir=directory,
            epoch_batches=inversion.decoder.array_batches(
                self.train_inputs, self.config.decoder_batch_size,
                self.config.seed),
            config=train_config, input_shape=self.train_inputs.shape[1:])
      self._cache[key] = decoder
    return self._cache[key]


def _reconstruct(method, layer, inputs, key, config, methods_config,
                 classifier, encoder, decoders):
  """Reconstructions (N, F, T) of `inputs` from layer `layer` by `method`."""
  if method in ("annealing", "backprop") and config.search_network == "valid":
    model, params = classifier
  else:
    model, params = encoder
  targets = inversion.layer_targets(model, params, inputs, layer)
  decoder = (decoders.get(layer) if method in ("decoder", "decoder_backprop")
             else None)
  return inversion.reconstruct(method, model, params, layer, targets, key,
                               methods_config, decoder=decoder,
                               input_shape=inputs.shape[1:])[0]


def _measures(stim, reconstructions, mean_spectrogram, key, gl_iters):
  recon = np.asarray(reconstructions, np.float32)
  return {
      "R": np.asarray(metrics.euclidean_error(stim["inputs"], recon)),
      "mxcorr2": np.asarray(metrics.spectrogram_mxcorr(stim["inputs"], recon)),
      "waveform_mxcorr": np.asarray(metrics.waveform_mxcorr(
          stim["waveforms"], recon, mean_spectrogram, key, gl_iters)),
  }


# Fields that only change what the report shows, not any computed number.
_PRESENTATION_FIELDS = ("figure_example", "figure_method", "num_wav_examples")


def _check_same_config(config, workdir):
  """Refuses to mix results of two configs in one workdir.

  Cells, decoders and baselines are reused by name when a run resumes, so
  a workdir remembers the config that made them (experiment_config.json).
  """
  path = os.path.join(workdir, "experiment_config.json")
  current = json.loads(config.to_json_best_effort())
  for field in _PRESENTATION_FIELDS:
    current.pop(field, None)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != current:
      changed = sorted(k for k in set(saved) | set(current)
                       if saved.get(k) != current.get(k))
      raise ValueError(
          f"{workdir} holds results of another reconstruction config (fields "
          f"{changed} differ); resuming would mix them. Use a new --workdir "
          "or delete that directory.")
    return
  os.makedirs(workdir, exist_ok=True)
  with open(path, "w") as f:
    json.dump(current, f, indent=1, sort_keys=True)


def _check_config(config, classifier, encoder):
  if not 0 <= config.figure_example < classifier[0].num_classes:
    raise ValueError(f"figure_example={config.figure_example} is not a phone "
                     f"class index (0..{classifier[0].num_classes - 1})")
  if config.num_chirps is not None and config.num_chirps < 2:
    raise ValueError(f"num_chirps={config.num_chirps}: need >= 2 (one linear, "
                     "one logarithmic sweep)")
  for method in config.methods:
    if method not in METHODS:
      raise ValueError(f"unknown method {method!r}; want some of {METHODS}")
  if config.search_network not in ("valid", "padded"):
    raise ValueError("search_network must be 'valid' or 'padded', got "
                     f"{config.search_network!r}")
  for layer in config.layers:
    classifier[0].check_layer(layer)
    encoder[0].check_layer(layer)


def run_reconstruction_experiment(config, workdir: str, data, classifier,
                                  encoder) -> dict:
  """Runs every method x layer cell (resuming), then writes the report.

  Args:
    config: the `reconstruction` block of configs/thesis.py.
    workdir: output directory.
    data: PhoneData.
    classifier, encoder: (model, params) of the trained VALID classifier and
      PADDED encoder.

  Returns:
    {"rows": result rows (dicts), "baselines": dict, "files": paths written}.
  """
  _check_config(config, classifier, encoder)
  # Parsed before any work, so a misspelt field fails at once.
  methods_config = inversion.ReconstructionConfig.from_dict(
      {k: config[k] for k in ("annealing", "backprop", "decoder")})
  _check_same_config(config, workdir)
  os.makedirs(os.path.join(workdir, "cells"), exist_ok=True)
  stimuli = select_stimuli(data, config.num_chirps, config.seed)
  mean = data.mean_spectrogram
  base_key = jax.random.key(config.seed)
  baselines = _baselines(config, workdir, data, stimuli, base_key)
  decoders = _Decoders(config, workdir, encoder,
                       data_lib.network_inputs(data, "train"))

  cells = [(m, l) for l in config.layers for m in config.methods]
  results, started = {}, time.time()
  for i, (method, layer) in enumerate(cells):
    path = os.path.join(workdir, "cells", f"{method}_L{layer}.npz")
    if os.path.exists(path):
      with np.load(path) as f:
        results[method, layer] = {k: f[k] for k in f.files}
      logging.info("cell %d/%d %s L%d: done earlier", i + 1, len(cells),
                   method, layer)
      continue
    t0 = time.time()
    cell_key = jax.random.fold_in(jax.random.fold_in(base_key, layer),
                                  METHODS.index(method))
    arrays = {}
    for s, name in enumerate(STIMULI):
      k_rec, k_gl = jax.random.split(jax.random.fold_in(cell_key, s))
      rec = np.asarray(_reconstruct(method, layer, stimuli[name]["inputs"],
                                    k_rec, config, methods_config,
                                    classifier, encoder, decoders),
                      np.float32)
      arrays[f"{name}_reconstructions"] = rec
      for measure, values in _measures(stimuli[name], rec, mean, k_gl,
                                       config.griffin_lim_iters).items():
        arrays[f"{name}_{measure}"] = values
    _save_npz_atomically(path, **arrays)
    results[method, layer] = arrays
    done = i + 1
    elapsed = time.time() - started
    logging.info("cell %d/%d %s L%d: %.1fs, phones wave mxcorr %.3f, "
                 "chirps %.3f; ETA %.0fs", done, len(cells), method, layer,
                 time.time() - t0, arrays["phones_waveform_mxcorr"].mean(),
                 arrays["chirps_waveform_mxcorr"].mean(),
                 elapsed / done * (len(cells) - done))

  mangled = _mangled_check(config, workdir, decoders, stimuli)
  rows = _rows(config, results)
  files = _write_report(config, workdir, data, stimuli, results, rows,
                        baselines, mangled)
  return {"rows": rows, "baselines": baselines, "mangled": mangled,
          "files": files}


def _baselines(config, workdir, data, stimuli, key):
  path = os.path.join(workdir, "baselines.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  k1, k2 = jax.random.split(jax.random.fold_in(key, 10**6))
  waves = stimuli["phones"]["waveforms"]
  round_trip = metrics.stft_round_trip_mxcorr(waves, k1,
                                              config.griffin_lim_iters)
  out = {
      "stft_round_trip_mxcorr_phones": float(np.mean(round_trip)),
      "waveform_mxcorr_threshold": metrics.waveform_mxcorr_threshold(
          data.mean_spectrogram, waves, k2, config.griffin_lim_iters),
  }
  with open(path, "w") as f:
    json.dump(out, f, indent=1)
  return out


def _mangled_check(config, workdir, decoders, stimuli):
  """Switch vs blind unpooling with the first decoding conv zeroed."""
  if not config.mangled_check_layer:
    return None
  path = os.path.join(workdir, "mangled_check.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  layer = config.mangled_check_layer
  out = {}
  for unpooling in ("switch", "blind"):
    decoder = decoders.get(layer, unpooling)
    out[unpooling] = inversion.mangled_decoder_check(
        decoder, decoders.model, decoders.params, stimuli["phones"]["inputs"])
  out["layer"] = layer
  with open(path, "w") as f:
    json.dump(out, f, indent=1)
  return out


def _rows(config, results):
  rows = []
  for layer in config.layers:
    for method in config.methods:
      cell = results[method, layer]
      for stim in STIMULI:
        row = {"method": method, "layer": layer, "stimulus": stim}
        for measure in MEASURES:
          v = cell[f"{stim}_{measure}"]
          row[f"{measure}_mean"] = float(np.mean(v))
          row[f"{measure}_sem"] = float(np.std(v, ddof=1) / np.sqrt(len(v))
                                        if len(v) > 1 else 0.0)
        rows.append(row)
  return rows


def markdown_table(rows, baselines) -> str:
  """The results as a Markdown table (mean +- s.e.m. over examples)."""
  lines = ["| method | layer | stimulus | R | mxcorr2 | waveform mxcorr |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {METHOD_NAMES[r['method']]} | L{r['layer']} | {r['stimulus']} | "
        f"{r['R_mean']:.3f} ± {r['R_sem']:.3f} | "
        f"{r['mxcorr2_mean']:.3f} ± {r['mxcorr2_sem']:.3f} | "
        f"{r['waveform_mxcorr_mean']:.3f} ± {r['waveform_mxcorr_sem']:.3f} |")
  lines.append("")
  lines.append(f"STFT round trip (true magnitude -> Griffin-Lim), phones: "
               f"waveform mxcorr {baselines['stft_round_trip_mxcorr_phones']:.3f}"
               " (thesis ~0.7)")
  lines.append(f"Waveform mxcorr threshold (average spectrogram): "
               f"{baselines['waveform_mxcorr_threshold']:.3f} (thesis 0.12)")
  return "\n".join(lines) + "\n"


def _write_report(config, workdir, data, stimuli, results, rows, baselines,
                  mangled):
  files = []
  csv_path = os.path.join(workdir, "results.csv")
  with open(csv_path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  files.append(csv_path)
  md = markdown_table(rows, baselines)
  if mangled:
    md += (f"\nMangled-network check (layer {mangled['layer']}, first "
           "decoding conv zeroed; mxcorr2 of the mangled decoding with its "
           "own input minus with another input's):\n")
    for unpooling in ("switch", "blind"):
      m = mangled[unpooling]
      md += (f"- {unpooling} unpooling: intact {m['intact_mxcorr2']:.3f}, "
             f"mangled {m['mangled_mxcorr2']:.3f}, leak {m['leak']:.3f}, "
             f"mangled spread {m['mangled_spread']:.3f}\n")
  md_path = os.path.join(workdir, "results.md")
  with open(md_path, "w") as f:
    f.write(md)
  files.append(md_path)

  layers = list(config.layers)
  panels = []
  for measure, label in zip(MEASURES, ("Euclidean error R", "mxcorr2",
                                       "waveform mxcorr")):
    series = {}
    for method in config.methods:
      for stim in STIMULI:
        series[f"{METHOD_NAMES[method]} ({stim})"] = [
            np.mean(results[method, l][f"{stim}_{measure}"]) for l in layers]
    panels.append((label, series))
  files.append(figures.measure_curves(
      os.path.join(workdir, "fig9_measures.png"), layers, panels,
      thresholds={"waveform mxcorr": baselines["waveform_mxcorr_threshold"]},
      title="Reconstruction measures per layer (dashed: chirps)"))

  example = int(config.figure_example)
  name = stimuli["phones"]["names"][example]
  original = stimuli["phones"]["inputs"][example]
  grid = [[original] + [results[m, l]["phones_reconstructions"][example]
                        for l in layers] for m in config.methods]
  col_labels = ["original"] + [f"L{l}" for l in layers]
  row_labels = [METHOD_NAMES[m] for m in config.methods]
  files.append(figures.histogram_grid(
      os.path.join(workdir, "fig10_histograms.png"), grid, row_labels,
      col_labels, title=f"Intensity histograms, phone [{name}]"))
  files.append(figures.spectrogram_grid(
      os.path.join(workdir, "figB1_one_phone.png"),
      [[g + data.mean_spectrogram for g in row] for row in grid], row_labels,
      col_labels, title=f"Reconstructions of phone [{name}] (mean added back)",
      log_scale=True, shared_scale=True))

  method = config.figure_method if config.figure_method in config.methods \
      else config.methods[-1]
  fig_layers = [l for l in (6, 12) if l in layers] or layers[-2:]
  rows_img, row_names = [], []
  for stim in ("chirps", "phones"):
    for j in range(2):
      rows_img.append([stimuli[stim]["inputs"][j] + data.mean_spectrogram] + [
          results[method, l][f"{stim}_reconstructions"][j] +
          data.mean_spectrogram for l in fig_layers])
      row_names.append(stimuli[stim]["names"][j])
  files.append(figures.spectrogram_grid(
      os.path.join(workdir, "fig11_phones_vs_chirps.png"), rows_img, row_names,
      ["original"] + [f"L{l}" for l in fig_layers],
      title=f"{METHOD_NAMES[method]}: chirps (top) vs phones (bottom)",
      log_scale=True, shared_scale=True))

  files += _write_wavs(config, workdir, data, stimuli, results, method)
  return files


def _write_wavs(config, workdir, data, stimuli, results, method):
  """Originals and Griffin-Lim audio of reconstructions, a few examples."""
  files = []
  key = jax.random.key(config.seed + 99)
  wav_dir = os.path.join(workdir, "wavs")
  for stim in STIMULI:
    n = min(config.num_wav_examples, len(stimuli[stim]["names"]))
    for j in range(n):
      name = stimuli[stim]["names"][j]
      files.append(audio.write_wav(
          os.path.join(wav_dir, f"{stim}_{j:02d}_{name}_original.wav"),
          stimuli[stim]["waveforms"][j], data.sample_rate))
      for layer in config.layers:
        rec = results[method, layer][f"{stim}_reconstructions"][j:j + 1]
        wave = np.asarray(metrics.spectrogram_to_waveform(
            rec, data.mean_spectrogram, key, config.griffin_lim_iters,
            data.max_length))[0]
        files.append(audio.write_wav(
            os.path.join(wav_dir, f"{stim}_{j:02d}_{name}_{method}_L{layer}.wav"),
            wave, data.sample_rate))
  return files
