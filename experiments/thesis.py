"""The thesis experiment end to end (SPEC A): README command 1 runs this.

  python experiments/thesis.py --config=configs/thesis_quick.py \
      --workdir=runs/thesis_quick

Stages, each resumable: corpus (generated unless corpus.timit_dir is set) ->
phone features -> the phone CNN classifier and the padded encoder ->
decoders -> reconstructions by 4 methods x layers -> figures, tables, WAVs.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import report  # noqa: E402
from recon_jax.data import prepare  # noqa: E402
from recon_jax.report import reconstruction_experiment  # noqa: E402
from recon_jax.train import phone_classifier  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
flags.mark_flags_as_required(["config", "workdir"])


def train_network(config, net_config, workdir, data, name):
  """Trains (or resumes, or loads) one phone CNN; returns (model, params)."""
  cfg = ml_collections.ConfigDict({"seed": config.seed,
                                   "model": net_config.model,
                                   "train": net_config.train})
  net_dir = os.path.join(workdir, name)
  model, params, result = phone_classifier.train_phone_classifier(
      cfg, net_dir, data)
  report.confusion_matrix_figure(
      os.path.join(net_dir, "confusion39.png"), result["test"]["confusion39"],
      data.phones39, title=f"{name}: test accuracy (39 classes) "
      f"{result['test']['accuracy39']:.3f}")
  logging.info("%s: test accuracy 48-class %.4f, 39-class %.4f", name,
               result["test"]["accuracy48"], result["test"]["accuracy39"])
  return (model, params), result


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=1))
  data = prepare.phone_data_from_config(config.corpus, workdir)
  logging.info("Phones: %d train, %d test; spectrograms %s; longest %d "
               "samples", len(data.train), len(data.test),
               data.train.spectrograms.shape[1:], data.max_length)
  classifier, cls_result = train_network(config, config.classifier, workdir,
                                         data, "phone_cnn")
  encoder, enc_result = train_network(config, config.encoder, workdir, data,
                                      "phone_cnn_padded")
  out = reconstruction_experiment.run_reconstruction_experiment(
      config.reconstruction, os.path.join(workdir, "reconstruction"), data,
      classifier, encoder)
  summary = {
      "phones": {"train": len(data.train), "test": len(data.test)},
      "classifier_test_accuracy39": cls_result["test"]["accuracy39"],
      "encoder_test_accuracy39": enc_result["test"]["accuracy39"],
      **out["baselines"],
  }
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(json.dumps(summary, indent=1))
  print(reconstruction_experiment.markdown_table(out["rows"], out["baselines"]))
  print(f"Figures, tables and WAVs: {os.path.join(workdir, 'reconstruction')}")


if __name__ == "__main__":
  app.run(main)
