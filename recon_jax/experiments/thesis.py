"""The thesis pipeline (docs/methods.md, A): corpus -> phone CNNs ->
reconstructions.

  summary = thesis.run(config, workdir)   # config: configs/thesis*.py

Stages, each resumable after a kill: corpus (generated unless
corpus.timit_dir is set) -> phone features -> the phone CNN classifier and
the padded encoder -> decoders -> reconstructions by 4 methods x layers ->
figures, tables, WAVs. The whole config is checked before any work, and
every stage's folder records what made it (see recon_jax.provenance).
"""
import os

from absl import logging
import jax
import ml_collections

from recon_jax import provenance
from recon_jax.data import prepare
from recon_jax.experiments import reconstruction
from recon_jax.report import figures
from recon_jax.report import reconstruction as reconstruction_report
from recon_jax.train import phone_classifier


def _network_config(config, net_config) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"seed": config.seed,
                                    "model": net_config.model,
                                    "train": net_config.train})


def validate_config(config, num_devices: int | None = None):
  """Checks every block of a thesis config; raises ValueError at the first
  impossible value, before any corpus is made or network trained."""
  if config.seed < 0:
    raise ValueError(f"seed={config.seed}: must be >= 0")
  prepare.check_corpus_settings(config.corpus)
  nets = {}
  for name in ("classifier", "encoder"):
    try:
      nets[name] = phone_classifier.check_config(
          _network_config(config, config[name]), num_devices=num_devices)
    except ValueError as e:
      raise ValueError(f"{name}: {e}") from None
  if nets["encoder"].padding != "SAME":
    raise ValueError("encoder.model.padding must be 'SAME' (the padded "
                     "encoder the decoders invert), got "
                     f"{nets['encoder'].padding!r}")
  try:
    reconstruction.check_config(config.reconstruction, nets["classifier"],
                                nets["encoder"], num_devices)
  except ValueError as e:
    raise ValueError(f"reconstruction: {e}") from None
  return nets


def _train_network(config, net_config, workdir, data, name):
  """Trains (or resumes, or loads) one phone CNN; returns (model, params)."""
  net_dir = os.path.join(workdir, name)
  model, params, result = phone_classifier.train_phone_classifier(
      _network_config(config, net_config), net_dir, data)
  figures.confusion_matrix_figure(
      os.path.join(net_dir, "confusion39.png"), result["test"]["confusion39"],
      data.phones39, title=f"{name}: test accuracy (39 classes) "
      f"{result['test']['accuracy39']:.3f}")
  logging.info("%s: test accuracy 48-class %.4f, 39-class %.4f", name,
               result["test"]["accuracy48"], result["test"]["accuracy39"])
  return (model, params), result


def run(config, workdir: str) -> dict:
  """Runs (or resumes) the whole thesis experiment in `workdir`.

  Returns:
    The summary written to workdir/summary.json, plus "rows" (the result
    table) and "report_dir".
  """
  workdir = provenance.check_workdir(workdir)
  validate_config(config)
  run_config = provenance.to_jsonable(config)
  for field in reconstruction.PRESENTATION_FIELDS:
    run_config["reconstruction"].pop(field, None)
  provenance.check_or_write_record(
      os.path.join(workdir, "config.json"), run_config,
      what=f"the experiment in {workdir}",
      remedy="use a new --workdir for a different config")
  data = prepare.phone_data_from_config(config.corpus, workdir)
  logging.info("Phones: %d train, %d test; spectrograms %s; longest %d "
               "samples; data %s", len(data.train), len(data.test),
               data.train.spectrograms.shape[1:], data.max_length,
               data.fingerprint)
  classifier, cls_result = _train_network(config, config.classifier, workdir,
                                          data, "phone_cnn")
  encoder, enc_result = _train_network(config, config.encoder, workdir, data,
                                       "phone_cnn_padded")
  report_dir = os.path.join(workdir, "reconstruction")
  out = reconstruction.run_reconstruction_experiment(
      config.reconstruction, report_dir, data, classifier, encoder)
  summary = {
      "data": data.fingerprint,
      "phones": {"train": len(data.train), "test": len(data.test)},
      "classifier_test_accuracy39": cls_result["test"]["accuracy39"],
      "encoder_test_accuracy39": enc_result["test"]["accuracy39"],
      **out["baselines"],
      "num_devices": jax.device_count(),
  }
  provenance.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
  return {**summary, "rows": out["rows"], "report_dir": report_dir,
          "table": reconstruction_report.markdown_table(out["rows"],
                                                        out["baselines"])}


def load_networks(config, workdir: str, input_shape=None):
  """(classifier, encoder), each (model, params), trained by `run` earlier."""
  return tuple(
      phone_classifier.load_phone_classifier(
          _network_config(config, config[name]), os.path.join(workdir, sub),
          input_shape)
      for name, sub in (("classifier", "phone_cnn"),
                        ("encoder", "phone_cnn_padded")))

