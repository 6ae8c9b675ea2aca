"""Training and evaluating the thesis's phone CNN on PhoneData (SPEC A2)."""
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax import data as data_lib
from recon_jax import models
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


def train_phone_classifier(config, workdir: str, data) -> tuple:
  """Trains a PhoneCNN (config.model) on `data`; resumes from workdir.

  Writes workdir/model_config.json (what the network is, for the decoders
  and the reconstruction experiment to check against) and
  workdir/eval.json (final accuracies).

  Returns:
    (model, params, eval dict).
  """
  model = models.phone_cnn_from_config(config)
  if model.num_classes != len(data.phones48):
    raise ValueError(f"config.model.num_classes={model.num_classes} but the "
                     f"data has {len(data.phones48)} classes")
  os.makedirs(workdir, exist_ok=True)
  t = config.train
  inputs = data_lib.network_inputs(data, "train")
  with open(os.path.join(workdir, "model_config.json"), "w") as f:
    json.dump({"model": config.model.to_dict(),
               "input_shape": list(inputs.shape[1:])}, f, indent=1,
              sort_keys=True)
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
      eval_fn=eval_fn, eval_every=t.eval_every_epochs * steps_per_epoch)
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
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return model, params, result


def load_phone_classifier(config, workdir: str):
  """(model, params) of the newest checkpoint in `workdir`.

  Raises:
    FileNotFoundError if there is no checkpoint; ValueError if workdir's
    network is not the one `config.model` describes.
  """
  path = os.path.join(workdir, "model_config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no trained phone CNN in {workdir} (missing "
                            "model_config.json); train it first")
  with open(path) as f:
    saved = json.load(f)
  input_shape = tuple(saved["input_shape"])
  saved = saved["model"]
  want = json.loads(json.dumps(config.model.to_dict()))
  if saved != want:
    diff = {k: (saved.get(k), want.get(k)) for k in set(saved) | set(want)
            if saved.get(k) != want.get(k)}
    raise ValueError(f"the network in {workdir} differs from the config "
                     f"(saved, wanted): {diff}")
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
