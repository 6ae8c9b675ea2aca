"""Training and evaluating the thesis's phone CNN on PhoneData
(docs/methods.md, A2).

A trained network's folder records what made it: `model_config.json` (the
network and its input shape, what a loader needs) and, through `fit`,
`made_by.json` (the data's fingerprint, model, training settings, seed).
Both are compared with the current run before anything is restored or
written, and written only when absent (atomically).
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax import data as data_lib
from recon_jax import models
from recon_jax import provenance
from recon_jax.train import classification
from recon_jax.train import loop


class _EpochBatches:
  """One epoch of class-balanced batches (thesis 3.3), built lazily."""

  def __init__(self, inputs, labels, index_batches):
    self.inputs, self.labels = inputs, labels
    self.index_batches = index_batches

  def __len__(self):
    return len(self.index_batches)

  def __getitem__(self, i):
    idx = self.index_batches[i]
    return {"inputs": self.inputs[idx], "labels": self.labels[idx]}


def _init_fn(model, input_shape):
  return lambda key: model.init(key, jnp.zeros((1,) + input_shape))["params"]


def _optimizer(config):
  return classification.adagrad_with_l2(config.train.learning_rate,
                                        config.train.l2)


def evaluate(model, params, data, split: str = "test",
             per_class: int | None = None, seed: int = 0) -> dict:
  """Accuracy on 48 and on the 39 folded classes, and the 39-class confusion.

  Args:
    split: "train" or "test".
    per_class: evaluate on the thesis's class-balanced sample of this many
      phones per class (200 for test); None uses every phone once.

  Returns:
    dict with accuracy48, accuracy39 (floats), confusion39 (39, 39) counts,
    num_examples.
  """
  inputs = data_lib.network_inputs(data, split)
  labels = data.split(split).labels48
  if per_class is not None:
    idx = data_lib.balanced_indices(labels, per_class,
                                    np.random.default_rng([seed, 10**6]),
                                    num_classes=len(data.phones48))
    inputs, labels = inputs[idx], labels[idx]
  predictions = np.argmax(classification.predict_logits(model, params, inputs),
                          -1)
  fold = np.asarray(data_lib.phones.class_ids_48_to_39())
  return {
      "accuracy48": classification.folded_accuracy(labels, predictions),
      "accuracy39": classification.folded_accuracy(labels, predictions, fold),
      "confusion39": classification.confusion_matrix(
          fold[labels], fold[predictions], len(data.phones39)),
      "num_examples": int(len(labels)),
  }


def check_config(config, num_classes: int = 48,
                 num_devices: int | None = None) -> models.PhoneCNN:
  """Refuses a phone CNN config (`seed`, `model`, `train`) that cannot run.

  Every value is checked before any data is read or any step is taken, so
  a bad setting fails in a second, not after hours of training.

  Returns:
    The PhoneCNN the config describes.
  """
  model = models.phone_cnn_from_config(config)
  if model.num_classes != num_classes:
    raise ValueError(f"model.num_classes={model.num_classes} but the data has "
                     f"{num_classes} classes")
  if config.seed < 0:
    raise ValueError(f"seed={config.seed}: must be >= 0")
  t = config.train
  num_devices = jax.device_count() if num_devices is None else num_devices
  positive = ("batch_size", "per_class_train", "per_class_test",
              "num_epochs", "checkpoint_every", "keep_checkpoints",
              "log_every")
  for field in positive:
    if not t[field] > 0:
      raise ValueError(f"train.{field}={t[field]}: must be > 0")
  if t.eval_every_epochs < 0:
    raise ValueError(f"train.eval_every_epochs={t.eval_every_epochs}: must "
                     "be >= 0 (0: evaluate at the end only)")
  if not t.learning_rate > 0:
    raise ValueError(f"train.learning_rate={t.learning_rate}: must be > 0")
  if t.l2 < 0:
    raise ValueError(f"train.l2={t.l2}: must be >= 0")
  if t.batch_size % num_devices:
    raise ValueError(f"train.batch_size={t.batch_size} does not split over "
                     f"the {num_devices} devices; use a multiple of "
                     f"{num_devices}")
  per_epoch = t.per_class_train * num_classes
  if per_epoch < t.batch_size:
    raise ValueError(
        f"train.per_class_train={t.per_class_train} x {num_classes} classes = "
        f"{per_epoch} examples per epoch, fewer than one batch of "
        f"{t.batch_size}: the epoch would have no batch")
  if not 0 <= model.dropout_rate < 1:
    raise ValueError(f"model.dropout_rate={model.dropout_rate}: must be in "
                     "[0, 1)")
  return model


def _model_record(config, input_shape) -> dict:
  return {"model": provenance.to_jsonable(config.model),
          "input_shape": [int(n) for n in input_shape]}


def train_phone_classifier(config, workdir: str, data) -> tuple:
  """Trains a PhoneCNN (config.model) on `data`; resumes from workdir.

  Writes workdir/model_config.json (what the network is, for the decoders
  and the reconstruction experiment to check against), workdir/made_by.json
  (what trained it) and workdir/eval.json (final accuracies).

  Returns:
    (model, params, eval dict).

  Raises:
    ProvenanceError: workdir holds a network made from other data, another
      model or other training settings (nothing there is changed).
  """
  model = check_config(config, len(data.phones48))
  t = config.train
  inputs = data_lib.network_inputs(data, "train")
  made_by = {"data": data.fingerprint, "seed": config.seed,
             **_model_record(config, inputs.shape[1:]),
             "train": provenance.to_jsonable(t)}
  remedy = "use a new --workdir, or delete that folder to retrain"
  # Both records are compared before either is written.
  provenance.check_record(os.path.join(workdir, "made_by.json"), made_by,
                          f"the phone CNN in {workdir}", remedy)
  provenance.check_or_write_record(
      os.path.join(workdir, "model_config.json"),
      _model_record(config, inputs.shape[1:]),
      f"the phone CNN in {workdir}", remedy)
  labels = data.train.labels48

  def epoch_batches(epoch):
    return _EpochBatches(inputs, labels, list(data_lib.epoch_batches(
        labels, t.per_class_train, config.seed, epoch, t.batch_size,
        num_classes=len(data.phones48), drop_remainder=True)))

  steps_per_epoch = len(epoch_batches(0))

  def eval_fn(params, step):
    del step
    result = evaluate(model, params, data, "test", t.per_class_test,
                      config.seed)
    return {k: v for k, v in result.items() if k.startswith("accuracy")}

  state = loop.fit(
      workdir=workdir, init_fn=_init_fn(model, inputs.shape[1:]),
      loss_fn=classification.softmax_classifier_loss(model),
      optimizer=_optimizer(config), epoch_batches=epoch_batches,
      num_steps=int(t.num_epochs * steps_per_epoch), seed=config.seed,
      checkpoint_every=t.checkpoint_every,
      keep_checkpoints=t.keep_checkpoints, log_every=t.log_every,
      eval_fn=eval_fn, eval_every=t.eval_every_epochs * steps_per_epoch,
      record=made_by)
  params = jax.device_get(state.params)
  result = {
      "test": evaluate(model, params, data, "test", t.per_class_test,
                       config.seed),
      "test_all": evaluate(model, params, data, "test"),
      "train": evaluate(model, params, data, "train", t.per_class_test,
                        config.seed),
  }
  summary = {split: {k: v for k, v in r.items() if k != "confusion39"}
             for split, r in result.items()}
  provenance.write_json_atomic(os.path.join(workdir, "eval.json"), summary)
  return model, params, result


def load_phone_classifier(config, workdir: str, input_shape=None):
  """(model, params) of the newest checkpoint in `workdir`.

  Args:
    input_shape: the per-example input shape it will be used with (e.g.
      (201, 16)); checked against the shape it was trained on.

  Raises:
    FileNotFoundError if there is no checkpoint; ValueError if workdir's
    network is not the one `config.model` describes or was trained on
    inputs of another shape.
  """
  path = os.path.join(workdir, "model_config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no trained phone CNN in {workdir} (missing "
                            "model_config.json); train it first")
  saved = provenance.read_json(path)
  trained_shape = tuple(saved["input_shape"])
  want = provenance.to_jsonable(config.model)
  if saved["model"] != want:
    raise ValueError(f"the network in {workdir} differs from the config: "
                     + "; ".join(provenance.differences(saved["model"], want)))
  if input_shape is not None and tuple(input_shape) != trained_shape:
    raise ValueError(f"the network in {workdir} was trained on inputs of "
                     f"shape {trained_shape}, not {tuple(input_shape)} (a "
                     "corpus with another longest phone or STFT settings)")
  input_shape = trained_shape
  model = models.phone_cnn_from_config(config)
  # The state fit saved, as shapes on the mesh it restores onto.
  mesh = loop.make_mesh()
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  target = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      jax.eval_shape(functools.partial(
          loop.init_train_state, _init_fn(model, input_shape),
          _optimizer(config), mesh=mesh), jax.random.key(0)))
  manager = loop.checkpoint_manager(os.path.join(workdir, "checkpoints"), 3)
  state = loop.restore_latest(manager, target)
  if state is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
  return model, jax.device_get(state.params)
