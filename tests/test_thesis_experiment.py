"""The thesis pipeline at toy scale: corpus -> CNNs -> reconstruction report.

Also the thesis's findings that hold robustly at this scale (a regression
that breaks the science fails here, not only one that breaks shapes), and
the refusals that keep results trustworthy: no reuse of results made from
other data, config or networks.
"""
import csv
import dataclasses
import os

import jax
import ml_collections
import numpy as np
import pytest

from configs import thesis_tiny
from recon_jax import provenance
from recon_jax.data import prepare
from recon_jax.experiments import reconstruction as rx
from recon_jax.experiments import thesis
from recon_jax.report import reconstruction as report
from recon_jax.train import phone_classifier


def _net_config(config, net):
  return ml_collections.ConfigDict({"seed": config.seed,
                                    "model": net.model, "train": net.train})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("thesis"))
  config = thesis_tiny.get_config()
  data = prepare.phone_data_from_config(config.corpus, workdir)
  nets = {}
  for name, net in (("valid", config.classifier), ("padded", config.encoder)):
    model, params, result = phone_classifier.train_phone_classifier(
        _net_config(config, net), os.path.join(workdir, name), data)
    nets[name] = (model, params, result)
  r = config.reconstruction
  r.layers = (1, 12)
  r.mangled_check_layer = 0
  # Decoders trained long enough for the thesis's findings to show.
  r.decoder_train.stage_steps = 60
  r.decoder_train.finetune_steps = 60
  r.decoder_train.checkpoint_every = 60
  r.decoder_train.log_every = 30
  return workdir, config, data, nets


def _run(pipeline, subdir="recon", config=None, data=None):
  workdir, base_config, base_data, nets = pipeline
  return rx.run_reconstruction_experiment(
      config or base_config.reconstruction, os.path.join(workdir, subdir),
      data or base_data, nets["valid"][:2], nets["padded"][:2])


@pytest.fixture(scope="module")
def results(pipeline):
  return _run(pipeline)


def test_classifier_reports_48_and_39_class_accuracy(pipeline):
  _, _, data, nets = pipeline
  result = nets["valid"][2]["test"]
  assert 0.0 <= result["accuracy48"] <= result["accuracy39"] <= 1.0
  assert result["confusion39"].shape == (39, 39)
  assert result["confusion39"].sum() == result["num_examples"] == 48 * 8


def test_experiment_writes_report_and_resumes(pipeline, results):
  workdir, config, _, _ = pipeline
  out = results
  outdir = os.path.join(workdir, "recon")
  r = config.reconstruction
  assert len(out["rows"]) == len(r.layers) * len(r.methods) * 2
  for row in out["rows"]:
    assert row["num_diverged"] == 0, row
    for measure in rx.MEASURES:
      assert np.isfinite(row[f"{measure}_mean"]), row
    assert -1.0 <= row["mxcorr2_mean"] <= 1.0
  with open(os.path.join(outdir, "results.csv")) as f:
    assert len(list(csv.DictReader(f))) == len(out["rows"])
  for name in ("results.md", "fig9_measures.png", "fig10_histograms.png",
               "fig11_phones_vs_chirps.png", "figB1_one_phone.png",
               "baselines.json", "made_by.json"):
    assert os.path.getsize(os.path.join(outdir, name)) > 0, name
  wavs = os.listdir(os.path.join(outdir, "wavs"))
  assert any(w.endswith("_original.wav") for w in wavs)
  assert 0 < out["baselines"]["stft_round_trip_mxcorr_phones"] <= 1
  # Annealing says what it did: how often it accepted and how far X moved.
  for layer in r.layers:
    diag = out["search"]["annealing", layer]
    assert 0 <= diag["acceptance_rate"] <= 1 and diag["distance_moved"] >= 0

  # Kill-and-resume: a finished cell is never redone; a missing one is.
  cells = os.path.join(outdir, "cells")
  stamps = {f: os.stat(os.path.join(cells, f)).st_mtime_ns
            for f in os.listdir(cells)}
  os.remove(os.path.join(cells, "backprop_L12.npz"))
  again = _run(pipeline)
  for f, stamp in stamps.items():
    now = os.stat(os.path.join(cells, f)).st_mtime_ns
    assert (now != stamp) == (f == "backprop_L12.npz"), f
  assert again["rows"] == out["rows"]


def test_chirps_are_at_the_phones_level(pipeline):
  _, config, data, _ = pipeline
  stimuli = rx.select_stimuli(data, 8, 0)

  def rms(waves):
    return np.mean([np.sqrt(np.mean(w[np.flatnonzero(w)[0]:
                                      np.flatnonzero(w)[-1] + 1] ** 2))
                    for w in waves])

  assert rms(stimuli["chirps"]["waveforms"]) == pytest.approx(
      rms(stimuli["phones"]["waveforms"]), rel=0.05)


# The thesis's findings that hold robustly at toy scale.
def test_decoding_from_layer_1_beats_decoding_from_layer_12(results):
  rows = {(r["method"], r["layer"], r["stimulus"]): r for r in results["rows"]}
  for method in ("decoder", "decoder_backprop"):
    l1 = rows[method, 1, "phones"]["mxcorr2_mean"]
    l12 = rows[method, 12, "phones"]["mxcorr2_mean"]
    assert l1 > l12 + 0.05, (method, l1, l12)


def test_the_network_reconstructs_phones_better_than_chirps(results):
  rows = {(r["method"], r["layer"], r["stimulus"]): r for r in results["rows"]}
  for method in ("decoder", "decoder_backprop"):
    phones = rows[method, 12, "phones"]["mxcorr2_mean"]
    chirps = rows[method, 12, "chirps"]["mxcorr2_mean"]
    assert phones > chirps, (method, phones, chirps)


def test_diverged_examples_are_counted_and_never_averaged_in():
  config = ml_collections.ConfigDict({"layers": (1,), "methods": ("backprop",)})
  nan = np.float32(np.nan)
  cell = {}
  for stim in rx.STIMULI:
    cell[f"{stim}_diverged"] = np.array([False, True, False])
    cell[f"{stim}_R"] = np.array([1.0, nan, 3.0], np.float32)
    cell[f"{stim}_mxcorr2"] = np.array([0.5, nan, 0.7], np.float32)
    cell[f"{stim}_waveform_mxcorr"] = np.array([nan, nan, nan], np.float32)
  rows = rx.result_rows(config, {("backprop", 1): cell})
  assert rows[0]["num_diverged"] == 1 and rows[0]["num_examples"] == 3
  assert rows[0]["R_mean"] == pytest.approx(2.0)
  assert rows[0]["mxcorr2_mean"] == pytest.approx(0.6)
  table = report.markdown_table(rows, {"stft_round_trip_mxcorr_phones": 0.5,
                                       "waveform_mxcorr_threshold": 0.1})
  assert "| diverged | 1/3 |" in table


def test_experiment_rejects_bad_config(pipeline):
  workdir, config, data, nets = pipeline
  bad = ml_collections.ConfigDict(config.reconstruction.to_dict())
  bad.layers = (17,)
  with pytest.raises(ValueError, match="layer 17 does not exist"):
    rx.run_reconstruction_experiment(bad, os.path.join(workdir, "bad"), data,
                                     nets["valid"][:2], nets["padded"][:2])
  bad.layers = (1,)
  bad.methods = ("telepathy",)
  with pytest.raises(ValueError, match="unknown method 'telepathy'"):
    rx.run_reconstruction_experiment(bad, os.path.join(workdir, "bad"), data,
                                     nets["valid"][:2], nets["padded"][:2])
  assert not os.path.exists(os.path.join(workdir, "bad"))


def test_load_classifier_checks_the_config_and_input_shape(pipeline):
  workdir, config, data, nets = pipeline
  net = _net_config(config, config.classifier)
  model, params = phone_classifier.load_phone_classifier(
      net, os.path.join(workdir, "valid"))
  np.testing.assert_array_equal(params["fc4"]["kernel"],
                                nets["valid"][1]["fc4"]["kernel"])
  shape = data.train.spectrograms.shape[1:]
  with pytest.raises(ValueError, match=r"trained on inputs of shape"):
    phone_classifier.load_phone_classifier(
        net, os.path.join(workdir, "valid"), (shape[0], shape[1] + 1))
  net.model.conv_features = (9, 9, 9)
  with pytest.raises(ValueError, match="differs from the config"):
    phone_classifier.load_phone_classifier(net, os.path.join(workdir, "valid"))
  with pytest.raises(FileNotFoundError, match="no trained phone CNN"):
    phone_classifier.load_phone_classifier(net, os.path.join(workdir, "nope"))


def _file_bytes(directory):
  return {f: open(os.path.join(directory, f), "rb").read()
          for f in sorted(os.listdir(directory))
          if os.path.isfile(os.path.join(directory, f))}


def test_a_changed_network_config_is_refused_before_anything_is_written(
    pipeline):
  workdir, config, data, _ = pipeline
  net_dir = os.path.join(workdir, "valid")
  before = _file_bytes(net_dir)
  changed = _net_config(config, config.classifier)
  changed.train.num_epochs = 3
  with pytest.raises(provenance.ProvenanceError,
                     match=r"train.num_epochs: was 2, now 3"):
    phone_classifier.train_phone_classifier(changed, net_dir, data)
  changed = _net_config(config, config.classifier)
  changed.model.conv_features = (9, 9, 9)
  with pytest.raises(provenance.ProvenanceError, match="conv_features"):
    phone_classifier.train_phone_classifier(changed, net_dir, data)
  assert _file_bytes(net_dir) == before


def test_network_from_other_data_is_refused(pipeline):
  workdir, config, data, _ = pipeline
  other = dataclasses.replace(data, fingerprint="other-corpus")
  with pytest.raises(provenance.ProvenanceError, match=r"data: was .*other"):
    phone_classifier.train_phone_classifier(
        _net_config(config, config.classifier),
        os.path.join(workdir, "valid"), other)


def test_results_from_other_data_config_or_networks_are_not_reused(pipeline):
  workdir, config, data, nets = pipeline
  changed = ml_collections.ConfigDict(config.reconstruction.to_dict())
  changed.layers = (1,)
  changed.methods = ("decoder",)
  outdir = os.path.join(workdir, "changing")

  def run(cfg=changed, d=data, valid=nets["valid"][:2]):
    return rx.run_reconstruction_experiment(cfg, outdir, d, valid,
                                            nets["padded"][:2])

  run()
  changed.figure_example = 1  # presentation only: still the same results
  run()
  changed.decoder.num_draws = 3
  with pytest.raises(provenance.ProvenanceError,
                     match=r"config.decoder.num_draws: was 2, now 3"):
    run()
  changed.decoder.num_draws = 2
  with pytest.raises(provenance.ProvenanceError, match=r"^.*data: was"):
    run(d=dataclasses.replace(data, fingerprint="real-timit"))
  model, params = nets["valid"][:2]
  other = jax.tree.map(lambda p: p + 1.0, params)
  with pytest.raises(provenance.ProvenanceError, match="classifier_params"):
    run(valid=(model, other))
  changed.figure_example = 48
  with pytest.raises(ValueError, match="figure_example=48"):
    run()


def test_damaged_results_are_named(pipeline, results):
  del results
  workdir = pipeline[0]
  path = os.path.join(workdir, "recon", "baselines.json")
  good = open(path).read()
  with open(path, "w") as f:
    f.write(good[:len(good) // 2])
  try:
    with pytest.raises(provenance.CorruptFileError, match="baselines.json"):
      _run(pipeline)
  finally:
    with open(path, "w") as f:
      f.write(good)


def test_whole_config_is_validated_before_any_work():
  config = thesis_tiny.get_config()
  thesis.validate_config(config, num_devices=8)
  cases = [
      ("classifier.train.num_epochs", 0, "num_epochs=0"),
      ("encoder.train.batch_size", 0, "batch_size=0"),
      ("classifier.train.per_class_train", 1, "fewer than one batch"),
      ("classifier.train.batch_size", 60, "does not split over the 8"),
      ("seed", -1, "seed=-1"),
      ("reconstruction.layers", (1, 99), "layer 99 does not exist"),
      ("reconstruction.mangled_check_layer", 2, "reaches no pooling layer"),
      ("reconstruction.decoder_batch_size", 12, "multiple of the 8"),
      ("reconstruction.decoder_train.stage_steps", -1, "stage_steps"),
      ("reconstruction.backprop.min_bold", 10.0, "min_bold"),
      ("reconstruction.annealing.final_ratio", 2.0, "final_ratio"),
      ("corpus.percentile", 0.0, "percentile"),
  ]
  for field, value, message in cases:
    bad = thesis_tiny.get_config()
    *parents, leaf = field.split(".")
    block = bad
    for p in parents:
      block = block[p]
    block[leaf] = value
    with pytest.raises(ValueError, match=message):
      thesis.validate_config(bad, num_devices=8)


def test_configs_are_locked_against_misspelt_fields():
  config = thesis_tiny.get_config()
  with pytest.raises(AttributeError, match="Did you mean .timit_dir."):
    config.corpus.timitdir = "/data/TIMIT"
