"""Training experiments: the thesis's phone CNN (docs/methods.md, A2) and CNN12
by any recipe (docs/methods.md, B1, B2: supervised, contrastive, probe,
fine-tune).

  phone_cnn(config, workdir)   configs/phone_cnn*.py
  cnn12(config, workdir)       configs/cnn12_*.py

Both checkpoint as they train (a rerun of the same command resumes after a
kill), write TensorBoard events and metrics.jsonl, and evaluate at the end.
"""
import os

from absl import logging

from recon_jax import provenance
from recon_jax.data import prepare
from recon_jax.report import figures
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import phone_classifier


def phone_cnn(config, workdir: str) -> dict:
  """Trains and evaluates one phone CNN in workdir/model; writes eval.json
  and the 39-class confusion matrix picture workdir/confusion39.png."""
  workdir = provenance.check_workdir(workdir)
  prepare.check_corpus_settings(config.corpus)
  phone_classifier.check_config(config)  # Before any corpus work.
  data = prepare.phone_data_from_config(config.corpus, workdir)
  logging.info("Phones: %d train, %d test, %s spectrograms", len(data.train),
               len(data.test), data.train.spectrograms.shape[1:])
  _, _, result = phone_classifier.train_phone_classifier(
      config, os.path.join(workdir, "model"), data)
  figures.confusion_matrix_figure(
      os.path.join(workdir, "confusion39.png"), result["test"]["confusion39"],
      data.phones39, title=f"test, 39 classes: accuracy "
      f"{result['test']['accuracy39']:.3f}")
  return {**result, "lines": [
      f"test accuracy (balanced, {config.train.per_class_test}/class): "
      f"48-class {result['test']['accuracy48']:.4f}, 39-class "
      f"{result['test']['accuracy39']:.4f}; all test phones: 39-class "
      f"{result['test_all']['accuracy39']:.4f}"]}


def cnn12(config, workdir: str) -> dict:
  """Trains CNN12 by config.recipe over config.seeds (workdir/seed_<s>),
  making the generated data set first if the config names one; writes
  workdir/summary.json (each metric's mean and 95% interval over seeds)."""
  workdir = provenance.check_workdir(workdir)
  cnn12_eval.check_config(config)  # Every field, before any data work.
  data = cnn12_data.load_data(config.data, workdir)
  logging.info("Data %s: %d train, %d validation, %d test clips, %d classes",
               config.data.source, *(len(data.split(s)) for s in (
                   "train", "validation", "test")), len(data.class_names))
  summary = cnn12_eval.run_recipe(config, workdir, data)
  return {**summary, "lines": [
      f"{config.recipe} CNN12 on {config.data.source}, "
      f"{len(data.class_names)} classes; results in "
      f"{os.path.join(workdir, cnn12_eval.SUMMARY_JSON)}",
      *cnn12_eval.format_summary(summary)]}
