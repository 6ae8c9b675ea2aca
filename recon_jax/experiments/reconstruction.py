"""The thesis's reconstruction experiment (docs/methods.md, A4; thesis 7), end
to end.

One random test phone per class and as many chirps (at the phones' RMS
level); every method x layer cell reconstructs both from that layer's
activations and is scored by R, spectrogram mxcorr2 and waveform mxcorr
(Griffin-Lim). Each finished cell is saved (atomically) under WORKDIR/cells,
so a killed run resumes without redoing it.

What made the results is recorded in WORKDIR/made_by.json (the data's
fingerprint, the config less presentation fields, fingerprints of both
networks' parameters); a rerun with anything else stops with a
ProvenanceError before any cell, decoder or baseline is reused.

Networks: the search methods (annealing, backprop) invert the classifier
(`search_network: "valid"`, as the thesis) unless configured otherwise; the
decoder methods invert the padded encoder the decoders are trained against.
The files written are listed in `recon_jax.report.reconstruction`.
"""
import os

from absl import logging
import jax
import numpy as np
import tqdm

from recon_jax import data as data_lib
from recon_jax import inversion
from recon_jax import metrics
from recon_jax import provenance
from recon_jax.report import findings as findings_report
from recon_jax.report import reconstruction as report
from recon_jax.report import thesis_findings

METHODS = inversion.METHODS
MEASURES = report.MEASURES
STIMULI = report.STIMULI

FINDINGS_JSON = "findings.json"
# Fields that only change what the report shows, not any computed number.
PRESENTATION_FIELDS = ("figure_example", "figure_method", "num_wav_examples")


def select_stimuli(data, num_chirps: int | None, seed: int) -> dict:
  """One random TEST phone per class, and chirps of phone lengths and level.

  The chirps get the RMS of the chosen phones (over each phone's own
  samples), so R and the spectrogram measures compare like with like.

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
  phone_waves = data.test.waveforms[picks]
  lengths = data.test.lengths[picks]
  rms = float(np.mean([np.sqrt(np.mean(np.square(w[:n], dtype=np.float64)))
                       for w, n in zip(phone_waves, lengths)]))
  n = len(picks) if num_chirps is None else num_chirps
  stft_settings = data_lib.stft_settings(data)
  halves = [data_lib.make_chirps(n // 2, data.max_length, seed=seed + 1,
                                 method="linear", lengths=data.train.lengths,
                                 rms=rms, **stft_settings),
            data_lib.make_chirps(n - n // 2, data.max_length, seed=seed + 2,
                                 method="logarithmic",
                                 lengths=data.train.lengths, rms=rms,
                                 **stft_settings)]
  chirp_names = [f"chirp{i}_{kind}_{int(a)}-{int(b)}Hz"
                 for i, (kind, a, b) in enumerate(
                     [("lin", s, e) for s, e in zip(halves[0]["start_hz"],
                                                    halves[0]["end_hz"])] +
                     [("log", s, e) for s, e in zip(halves[1]["start_hz"],
                                                    halves[1]["end_hz"])])]
  return {
      "phones": {
          "inputs": data_lib.network_inputs(data, "test")[picks],
          "waveforms": phone_waves,
          "names": [data.phones48[c] for c in labels[picks]],
      },
      "chirps": {
          "inputs": np.concatenate([h["spectrograms"] for h in halves]) -
                    data.mean_spectrogram,
          "waveforms": np.concatenate([h["waveforms"] for h in halves]),
          "names": chirp_names,
      },
  }


class _Decoders:
  """Trains (or loads) the decoder of each layer once, on demand."""

  def __init__(self, config, workdir, encoder, train_inputs):
    self.config, self.workdir = config, workdir
    self.model, self.params = encoder
    self.train_inputs = train_inputs
    self._cache = {}
    self.train_config = inversion.config_from_dict(
        inversion.DecoderTrainConfig, config.decoder_train)

  def get(self, layer: int, unpooling: str = "blind"):
    key = (layer, unpooling)
    if key not in self._cache:
      directory = os.path.join(self.workdir, "decoders", f"{unpooling}_L{layer}")
      if inversion.decoder_exists(directory):
        decoder = inversion.load_decoder(directory, self.model, self.params,
                                         layer)
      else:
        logging.info("Training the %s decoder of layer %d in %s", unpooling,
                     layer, directory)
        decoder = inversion.train_decoder(
            self.model, self.params, layer, workdir=directory,
            epoch_batches=inversion.array_batches(
                self.train_inputs, self.config.decoder_batch_size,
                self.config.seed),
            config=self.train_config.replace(unpooling=unpooling),
            input_shape=self.train_inputs.shape[1:])
      self._cache[key] = decoder
    return self._cache[key]


def _reconstruct(method, layer, inputs, key, config, methods_config,
                 classifier, encoder, decoders):
  """(reconstructions (N, F, T), summary) of `inputs` from layer `layer`."""
  if method in ("annealing", "backprop") and config.search_network == "valid":
    model, params = classifier
  else:
    model, params = encoder
  targets = inversion.layer_targets(model, params, inputs, layer)
  decoder = (decoders.get(layer) if method in ("decoder", "decoder_backprop")
             else None)
  rec, _, summary = inversion.reconstruct(
      method, model, params, layer, targets, key, methods_config,
      decoder=decoder, input_shape=inputs.shape[1:])
  return rec, summary


def _measures(stim, reconstructions, diverged, data, key, gl_iters):
  """The three measures per example; NaN for diverged examples."""
  recon = np.asarray(reconstructions, np.float32)
  ok = ~diverged
  out = {m: np.full(len(recon), np.nan, np.float32) for m in MEASURES}
  if ok.any():
    x, r, w = stim["inputs"][ok], recon[ok], stim["waveforms"][ok]
    out["R"][ok] = np.asarray(metrics.euclidean_error(x, r))
    out["mxcorr2"][ok] = np.asarray(metrics.spectrogram_mxcorr(x, r))
    out["waveform_mxcorr"][ok] = np.asarray(metrics.waveform_mxcorr(
        w, r, data.mean_spectrogram, key, gl_iters,
        **data_lib.stft_settings(data)))
  return out


def check_config(config, classifier_model, encoder_model,
                 num_devices: int | None = None):
  """Refuses a reconstruction config that cannot run, before any work.

  Args:
    config: the `reconstruction` block of configs/thesis.py.
    classifier_model, encoder_model: the PhoneCNN modules (untrained is
      fine: only their layer structure is checked).
    num_devices: the data-parallel device count the decoders train on.
  """
  num_classes = classifier_model.num_classes
  if not 0 <= config.figure_example < num_classes:
    raise ValueError(f"figure_example={config.figure_example} is not a phone "
                     f"class index (0..{num_classes - 1})")
  if config.num_chirps is not None and config.num_chirps < 2:
    raise ValueError(f"num_chirps={config.num_chirps}: need >= 2 (one linear, "
                     "one logarithmic sweep)")
  if not config.methods:
    raise ValueError("reconstruction.methods is empty")
  for method in config.methods:
    if method not in METHODS:
      raise ValueError(f"unknown method {method!r}; want some of {METHODS}")
  if config.search_network not in ("valid", "padded"):
    raise ValueError("search_network must be 'valid' or 'padded', got "
                     f"{config.search_network!r}")
  if not config.layers:
    raise ValueError("reconstruction.layers is empty")
  for layer in config.layers:
    classifier_model.check_layer(layer)
    encoder_model.check_layer(layer)
  if config.mangled_check_layer:
    encoder_model.check_layer(config.mangled_check_layer)
    if not any(l.kind == "pool" for l in
               encoder_model.layers[:config.mangled_check_layer]):
      raise ValueError(
          f"mangled_check_layer={config.mangled_check_layer} reaches no "
          "pooling layer, so switch and blind unpooling do not differ; use a "
          "layer at or after the first pool (3), or 0 to skip the check")
  if config.griffin_lim_iters < 1:
    raise ValueError(f"griffin_lim_iters={config.griffin_lim_iters}: need >= 1")
  if config.num_wav_examples < 0:
    raise ValueError(f"num_wav_examples={config.num_wav_examples} < 0")
  if config.seed < 0:
    raise ValueError(f"reconstruction seed={config.seed} < 0")
  batch = config.decoder_batch_size
  num_devices = jax.device_count() if num_devices is None else num_devices
  uses_decoder = (set(config.methods) & {"decoder", "decoder_backprop"} or
                  config.mangled_check_layer)
  if uses_decoder and (batch < 1 or batch % num_devices):
    raise ValueError(f"decoder_batch_size={batch} must be a positive multiple "
                     f"of the {num_devices} devices it is split over")
  # Parsed here, so a misspelt or impossible method setting fails at once.
  methods_config = inversion.ReconstructionConfig.from_dict(
      {k: config[k] for k in ("annealing", "backprop", "decoder")})
  inversion.config_from_dict(inversion.DecoderTrainConfig,
                             config.decoder_train)
  return methods_config


def made_by(config, data, classifier, encoder) -> dict:
  """What the results in a reconstruction work dir are made from."""
  settings = provenance.to_jsonable(config)
  for field in PRESENTATION_FIELDS:
    settings.pop(field, None)
  return {
      "config": settings,
      "data": data.fingerprint,
      "classifier_params": provenance.fingerprint_arrays(classifier[1]),
      "encoder_params": provenance.fingerprint_arrays(encoder[1]),
  }


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
    {"rows": result rows (dicts), "baselines": dict, "mangled": dict or
    None, "search": {(method, layer): diagnostics}, "findings": the
    thesis's claims decided by statistics (report.thesis_findings; also in
    findings.json), "files": paths written}.

  Raises:
    ProvenanceError: `workdir` holds results made from other data, config
      or networks.
  """
  methods_config = check_config(config, classifier[0], encoder[0])
  record = made_by(config, data, classifier, encoder)
  provenance.check_or_write_record(
      os.path.join(workdir, "made_by.json"), record,
      what=f"the reconstruction results in {workdir}",
      remedy="use a new --workdir (or delete that directory) to "
      "reconstruct with these settings")
  os.makedirs(os.path.join(workdir, "cells"), exist_ok=True)
  stimuli = select_stimuli(data, config.num_chirps, config.seed)
  mean = data.mean_spectrogram
  base_key = jax.random.key(config.seed)
  baselines = _baselines(config, workdir, data, stimuli, base_key)
  decoders = _Decoders(config, workdir, encoder,
                       data_lib.network_inputs(data, "train"))

  cells = [(m, l) for l in config.layers for m in config.methods]
  results = {}
  bar = tqdm.tqdm(cells, desc="reconstruction cells", unit="cell",
                  disable=jax.process_index() != 0)
  for method, layer in bar:
    bar.set_postfix_str(f"{method} L{layer}")
    path = os.path.join(workdir, "cells", f"{method}_L{layer}.npz")
    if os.path.exists(path):
      results[method, layer] = provenance.read_npz(path)
      continue
    cell_key = jax.random.fold_in(jax.random.fold_in(base_key, layer),
                                  METHODS.index(method))
    arrays = {}
    for s, name in enumerate(STIMULI):
      k_rec, k_gl = jax.random.split(jax.random.fold_in(cell_key, s))
      rec, summary = _reconstruct(method, layer, stimuli[name]["inputs"],
                                  k_rec, config, methods_config, classifier,
                                  encoder, decoders)
      rec = np.asarray(rec, np.float32)
      diverged = np.asarray(summary["diverged"], bool)
      arrays[f"{name}_reconstructions"] = np.where(
          diverged[:, None, None], 0.0, np.nan_to_num(rec)).astype(np.float32)
      arrays[f"{name}_diverged"] = diverged
      for key, value in summary.items():
        if key in ("acceptance_rate", "distance_moved"):
          arrays[f"{name}_search_{key}"] = np.asarray(value, np.float32)
      for measure, values in _measures(stimuli[name], rec, diverged, data,
                                       k_gl, config.griffin_lim_iters).items():
        arrays[f"{name}_{measure}"] = values
    provenance.write_npz_atomic(path, arrays)
    results[method, layer] = arrays
    logging.info("cell %s L%d: phones mxcorr2 %.3f, chirps %.3f", method,
                 layer, np.nanmean(arrays["phones_mxcorr2"]),
                 np.nanmean(arrays["chirps_mxcorr2"]))

  mangled = _mangled_check(config, workdir, decoders, stimuli)
  rows = result_rows(config, results)
  search = search_diagnostics(results)
  found = thesis_findings.findings(results, config.layers, config.methods,
                                   seed=config.seed)
  provenance.write_json_atomic(os.path.join(workdir, FINDINGS_JSON), {
      "findings": found, "rule": findings_report.VERDICT_RULE})
  files = report.write_tables(workdir, rows, baselines, mangled, search,
                              record)
  files += report.write_figures(workdir, config, stimuli, results, mean,
                                baselines)
  files += report.write_wavs(workdir, _sounds(config, data, stimuli, results),
                             data.sample_rate)
  return {"rows": rows, "baselines": baselines, "mangled": mangled,
          "search": search, "findings": found, "files": files}


def _baselines(config, workdir, data, stimuli, key):
  path = os.path.join(workdir, "baselines.json")
  if os.path.exists(path):
    return provenance.read_json(path)
  k1, k2 = jax.random.split(jax.random.fold_in(key, 10**6))
  waves = stimuli["phones"]["waveforms"]
  round_trip = metrics.stft_round_trip_mxcorr(
      waves, k1, config.griffin_lim_iters, **data_lib.stft_settings(data))
  out = {
      "stft_round_trip_mxcorr_phones": float(np.mean(round_trip)),
      "waveform_mxcorr_threshold": metrics.waveform_mxcorr_threshold(
          data.mean_spectrogram, waves, k2, config.griffin_lim_iters,
          **data_lib.stft_settings(data)),
  }
  provenance.write_json_atomic(path, out)
  return out


def _mangled_check(config, workdir, decoders, stimuli):
  """Switch vs blind unpooling with the first decoding conv zeroed."""
  if not config.mangled_check_layer:
    return None
  path = os.path.join(workdir, "mangled_check.json")
  if os.path.exists(path):
    return provenance.read_json(path)
  layer = config.mangled_check_layer
  out = {}
  for unpooling in ("switch", "blind"):
    decoder = decoders.get(layer, unpooling)
    out[unpooling] = inversion.mangled_decoder_check(
        decoder, decoders.model, decoders.params, stimuli["phones"]["inputs"])
  out["layer"] = layer
  provenance.write_json_atomic(path, out)
  return out


def result_rows(config, results) -> list[dict]:
  """Mean and s.e.m. of each measure per method x layer x stimulus.

  Diverged examples are left out of the means and counted.
  """
  rows = []
  for layer in config.layers:
    for method in config.methods:
      cell = results[method, layer]
      for stim in STIMULI:
        diverged = cell[f"{stim}_diverged"]
        row = {"method": method, "layer": layer, "stimulus": stim,
               "num_examples": int(len(diverged)),
               "num_diverged": int(np.sum(diverged))}
        for measure in MEASURES:
          v = cell[f"{stim}_{measure}"]
          v = v[np.isfinite(v)]
          row[f"{measure}_mean"] = float(np.mean(v)) if len(v) else np.nan
          row[f"{measure}_sem"] = float(np.std(v, ddof=1) / np.sqrt(len(v))
                                        if len(v) > 1 else 0.0)
        rows.append(row)
  return rows


def search_diagnostics(results) -> dict:
  """{(method, layer): {name: mean}} of the search methods' diagnostics."""
  out = {}
  for (method, layer), cell in results.items():
    names = sorted({k.split("_search_", 1)[1] for k in cell
                    if "_search_" in k})
    if names:
      out[method, layer] = {
          n: float(np.mean([np.mean(cell[f"{s}_search_{n}"])
                            for s in STIMULI])) for n in names}
  return out


def _sounds(config, data, stimuli, results) -> dict:
  """{file name: waveform}: originals and Griffin-Lim reconstructions."""
  key = jax.random.key(config.seed + 99)
  method = report.figure_method(config)
  sounds = {}
  for stim in STIMULI:
    n = min(config.num_wav_examples, len(stimuli[stim]["names"]))
    for j in range(n):
      name = stimuli[stim]["names"][j]
      sounds[f"{stim}_{j:02d}_{name}_original.wav"] = (
          stimuli[stim]["waveforms"][j])
      for layer in config.layers:
        if results[method, layer][f"{stim}_diverged"][j]:
          continue
        rec = results[method, layer][f"{stim}_reconstructions"][j:j + 1]
        sounds[f"{stim}_{j:02d}_{name}_{method}_L{layer}.wav"] = np.asarray(
            metrics.spectrogram_to_waveform(
                rec, data.mean_spectrogram, key, config.griffin_lim_iters,
                data.max_length, **data_lib.stft_settings(data)))[0]
  return sounds
