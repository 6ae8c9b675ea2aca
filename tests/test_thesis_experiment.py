"""The thesis pipeline at toy scale: corpus -> CNNs -> reconstruction report."""
import csv
import os

import ml_collections
import numpy as np
import pytest

from configs import thesis_tiny
from recon_jax.data import prepare
from recon_jax.report import reconstruction_experiment as rx
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
  return workdir, config, data, nets


def _run(pipeline, subdir="recon"):
  workdir, config, data, nets = pipeline
  return rx.run_reconstruction_experiment(
      config.reconstruction, os.path.join(workdir, subdir), data,
      nets["valid"][:2], nets["padded"][:2])


def test_classifier_reports_48_and_39_class_accuracy(pipeline):
  _, _, data, nets = pipeline
  result = nets["valid"][2]["test"]
  assert 0.0 <= result["accuracy48"] <= result["accuracy39"] <= 1.0
  assert result["confusion39"].shape == (39, 39)
  assert result["confusion39"].sum() == result["num_examples"] == 48 * 8


def test_experiment_writes_report_and_resumes(pipeline):
  workdir, config, _, _ = pipeline
  out = _run(pipeline)
  outdir = os.path.join(workdir, "recon")
  r = config.reconstruction
  assert len(out["rows"]) == len(r.layers) * len(r.methods) * 2
  for row in out["rows"]:
    for measure in rx.MEASURES:
      assert np.isfinite(row[f"{measure}_mean"]), row
    assert -1.0 <= row["mxcorr2_mean"] <= 1.0
  with open(os.path.join(outdir, "results.csv")) as f:
    assert len(list(csv.DictReader(f))) == len(out["rows"])
  for name in ("results.md", "fig9_measures.png", "fig10_histograms.png",
               "fig11_phones_vs_chirps.png", "figB1_one_phone.png",
               "baselines.json"):
    assert os.path.getsize(os.path.join(outdir, name)) > 0, name
  wavs = os.listdir(os.path.join(outdir, "wavs"))
  assert any(w.endswith("_original.wav") for w in wavs)
  assert 0 < out["baselines"]["stft_round_trip_mxcorr_phones"] <= 1

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


def test_load_classifier_checks_the_config(pipeline):
  workdir, config, _, nets = pipeline
  net = _net_config(config, config.classifier)
  model, params = phone_classifier.load_phone_classifier(
      net, os.path.join(workdir, "valid"))
  np.testing.assert_array_equal(params["fc4"]["kernel"],
                                nets["valid"][1]["fc4"]["kernel"])
  net.model.conv_features = (9, 9, 9)
  with pytest.raises(ValueError, match="differs from the config"):
    phone_classifier.load_phone_classifier(net, os.path.join(workdir, "valid"))
  with pytest.raises(FileNotFoundError, match="no trained phone CNN"):
    phone_classifier.load_phone_classifier(net, os.path.join(workdir, "nope"))


def test_a_changed_config_is_not_mixed_into_old_results(pipeline):
  workdir, config, data, nets = pipeline
  changed = ml_collections.ConfigDict(config.reconstruction.to_dict())
  changed.layers = (1,)
  changed.methods = ("decoder",)
  outdir = os.path.join(workdir, "changing")
  rx.run_reconstruction_experiment(changed, outdir, data, nets["valid"][:2],
                                   nets["padded"][:2])
  changed.figure_example = 1  # presentation only: still the same results
  rx.run_reconstruction_experiment(changed, outdir, data, nets["valid"][:2],
                                   nets["padded"][:2])
  changed.decoder.num_draws = 3
  with pytest.raises(ValueError, match=r"another reconstruction config.*decoder"):
    rx.run_reconstruction_experiment(changed, outdir, data, nets["valid"][:2],
                                     nets["padded"][:2])
  changed.decoder.num_draws = 2
  changed.figure_example = 48
  with pytest.raises(ValueError, match="figure_example=48"):
    rx.run_reconstruction_experiment(changed, outdir, data, nets["valid"][:2],
                                     nets["padded"][:2])
