"""Trains the thesis's phone CNN (SPEC A2) and evaluates it.

  python experiments/train_phone_cnn.py --config=configs/phone_cnn.py \
      --workdir=runs/phone_cnn_valid

Writes checkpoints (resumable after a kill), TensorBoard events and
metrics.jsonl, eval.json and a 39-class confusion matrix picture.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import provenance  # noqa: E402
from recon_jax.data import prepare  # noqa: E402
from recon_jax.experiments import cli  # noqa: E402
from recon_jax.report import figures  # noqa: E402
from recon_jax.train import phone_classifier  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  workdir = provenance.check_workdir(_WORKDIR.value)
  prepare.check_corpus_settings(config.corpus)
  phone_classifier.check_config(config)  # Before any corpus work.
  data = prepare.phone_data_from_config(config.corpus, workdir)
  logging.info("Phones: %d train, %d test, %s spectrograms",
               len(data.train), len(data.test), data.train.spectrograms.shape[1:])
  _, _, result = phone_classifier.train_phone_classifier(
      config, os.path.join(workdir, "model"), data)
  figures.confusion_matrix_figure(
      os.path.join(workdir, "confusion39.png"), result["test"]["confusion39"],
      data.phones39, title=f"test, 39 classes: accuracy "
      f"{result['test']['accuracy39']:.3f}")
  print(f"test accuracy (balanced, {config.train.per_class_test}/class): "
        f"48-class {result['test']['accuracy48']:.4f}, "
        f"39-class {result['test']['accuracy39']:.4f}; all test phones: "
        f"39-class {result['test_all']['accuracy39']:.4f}")


if __name__ == "__main__":
  cli.run(main)
