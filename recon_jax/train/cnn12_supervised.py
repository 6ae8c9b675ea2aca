"""Supervised CNN12 training (docs/methods.md, B2): keywords (softmax CE) or
events (sigmoid BCE), through `recon_jax.train.fit`.

The step (jitted by `fit`, data parallel over the 'data' mesh axis) draws
everything from its key: a random crop of `train.crop_seconds` of each clip
(clips shorter than it tiled), then the augmentation chain of
`recon_jax.data.augment` (gain, Gaussian noise, peak normalisation, time
masks) and mixup, then CNN12 (dropout 0.4) and a Dense classifier on the
512-d embedding. Everything is drawn for the global batch, so the result
does not depend on the device count.

Optimiser: Adam, weight decay 1e-3 (decoupled, the paper's text; 'coupled'
is the authors' torch Adam), a linear warm-up over `train.warmup_epochs`
epochs, then cosine decay to 0 (recon_jax.train.optimizers).

Evaluation is on whole clips (cnn12_data.eval_groups): accuracy for
multi-class data; mAP, mAUC and d' for multi-label data.

The same recipe fine-tunes a saved encoder (`recipe='finetune'`) or trains
only the classifier on the frozen encoder (`recipe='probe'`, the paper's
"fc-only": the encoder runs without dropout under stop_gradient and its
parameters get no update); see cnn12_eval.

A work directory holds: checkpoints/ (fit; the kept series every
`train.keep_period` steps), made_by.json (data fingerprint, config, seed,
and for probe/fine-tune the encoder checkpoint's fingerprint),
model_config.json (what the network is, for loaders), metrics.jsonl and
TensorBoard events, eval.json (validation and test metrics, chance levels).
"""
import functools
import json
import math
import numbers
import os
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from recon_jax import metrics as metrics_lib
from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import augment
from recon_jax.models import cnn12
from recon_jax.models import heads
from recon_jax.train import cnn12_data
from recon_jax.train import losses
from recon_jax.train import loop
from recon_jax.train import optimizers

RECIPES = ("supervised", "contrastive", "probe", "finetune")
CHECKPOINT_CHOICES = ("final", "best_validation")
SAMPLE_RATE = augment.SAMPLE_RATE
MODEL_CONFIG = "model_config.json"
MADE_BY = "made_by.json"
EVAL_JSON = "eval.json"


# --- Config blocks -----------------------------------------------------------


def model_config(width_divisor: int = 1) -> ml_collections.ConfigDict:
  """The `model` block: CNN12 and its classifier head.

  width_multiplier: 1 (CNN12) or 2 (CNN12_x2) (docs/methods.md, B1).
  width_divisor: every conv width is divided by it (1: the paper's widths;
    the CPU-sized defaults use 8: 330,856 encoder parameters instead of
    13,757,248; the 512-d embedding layer keeps its width).
  dropout_rate: before fc10 (0.4 in the paper).
  embedding_dim: fc10's outputs (512).
  head_relu_input: ReLU on the embedding before the classifier (the
    authors' code) or not (the paper's text, default).
  """
  c = ml_collections.ConfigDict()
  c.width_multiplier = 1
  c.width_divisor = width_divisor
  c.dropout_rate = cnn12.DROPOUT_RATE
  c.embedding_dim = cnn12.EMBEDDING_DIM
  c.head_relu_input = False
  return c


def train_config() -> ml_collections.ConfigDict:
  """The `train` block (defaults: docs/methods.md, B2; sizes set by each
  config file).

  batch_size: the global batch (split over the devices).
  num_epochs, warmup_epochs: epochs of training and of linear warm-up.
  learning_rate: Adam's peak rate (its default, 1e-3).
  weight_decay / weight_decay_mode: 1e-3 'decoupled' (the paper's text) or
    the authors' 'coupled' L2 (torch Adam) and values (0 supervised, 1e-5
    contrastive).
  crop_seconds: random crop length (1.0 the whole keyword clip, 2.5 or 5.0
    for events); unused by the contrastive recipe (its views).
  eval_batch_size: clips per evaluation batch (rounded up to the devices).
  eval_every_epochs: validation every so many epochs (0: at the end only).
  checkpoint_every / keep_checkpoints: steps between checkpoints, newest
    kept. keep_period: a never-pruned checkpoint every so many steps (0:
    none), the series the feature-evolution analysis reads.
  log_every: steps between metric rows.
  checkpoint_choice: which parameters a classifier run reports and hands on
    (its test metrics, load_classifier): 'final' (the paper is silent; the
    default) or 'best_validation' (the authors' evaluation scripts: the
    checkpoint with the best validation metric of those evaluated every
    eval_every_epochs, all of which are then kept).
  """
  c = ml_collections.ConfigDict()
  c.batch_size = 64
  c.num_epochs = 30
  c.warmup_epochs = 10
  c.learning_rate = 1e-3
  c.weight_decay = 1e-3
  c.weight_decay_mode = "decoupled"
  c.crop_seconds = 1.0
  c.eval_batch_size = 64
  c.eval_every_epochs = 5
  c.checkpoint_every = 200
  c.keep_checkpoints = 2
  c.keep_period = 0
  c.log_every = 20
  c.checkpoint_choice = "final"
  return c


def _is_int(v):
  return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
  return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
          and np.isfinite(v))


def _need(ok, field, value, want):
  if not ok:
    raise ValueError(f"{field}={value!r}: {want}")


def check_seeds(seeds) -> tuple:
  """The config's `seeds`: a non-empty sequence of distinct integers >= 0."""
  _need(isinstance(seeds, (list, tuple)) and len(seeds) > 0 and
        all(_is_int(s) and s >= 0 for s in seeds) and
        len(set(seeds)) == len(seeds), "seeds", seeds,
        "want a non-empty sequence of distinct integers >= 0")
  return tuple(int(s) for s in seeds)


def check_model_config(m, field="model") -> None:
  for name in ("width_multiplier", "width_divisor", "embedding_dim"):
    _need(_is_int(m[name]) and m[name] >= 1, f"{field}.{name}", m[name],
          "want an integer >= 1")
  bad = [w for w in cnn12.WIDTHS if (w * m.width_multiplier) % m.width_divisor]
  _need(not bad, f"{field}.width_divisor", m.width_divisor,
        f"must divide every conv width x width_multiplier "
        f"({[w * m.width_multiplier for w in cnn12.WIDTHS]})")
  _need(_is_real(m.dropout_rate) and 0 <= m.dropout_rate < 1,
        f"{field}.dropout_rate", m.dropout_rate, "want a number in [0, 1)")
  _need(isinstance(m.head_relu_input, bool), f"{field}.head_relu_input",
        m.head_relu_input, "want True or False")


def check_train_config(t, num_devices: int, crop: bool = True) -> None:
  """Refuses train settings that cannot work, naming the field."""
  for name in ("batch_size", "num_epochs", "eval_batch_size",
               "checkpoint_every", "keep_checkpoints", "log_every"):
    _need(_is_int(t[name]) and t[name] >= 1, f"train.{name}", t[name],
          "want an integer >= 1")
  for name in ("warmup_epochs", "eval_every_epochs", "keep_period"):
    _need(_is_int(t[name]) and t[name] >= 0, f"train.{name}", t[name],
          "want an integer >= 0")
  _need(t.warmup_epochs <= t.num_epochs, "train.warmup_epochs",
        t.warmup_epochs, f"must be <= train.num_epochs={t.num_epochs}")
  _need(_is_real(t.learning_rate) and t.learning_rate > 0,
        "train.learning_rate", t.learning_rate, "want a number > 0")
  _need(_is_real(t.weight_decay) and t.weight_decay >= 0, "train.weight_decay",
        t.weight_decay, "want a number >= 0")
  _need(t.weight_decay_mode in optimizers.WEIGHT_DECAY_MODES,
        "train.weight_decay_mode", t.weight_decay_mode,
        f"want one of {optimizers.WEIGHT_DECAY_MODES}")
  _need(t.checkpoint_choice in CHECKPOINT_CHOICES, "train.checkpoint_choice",
        t.checkpoint_choice, f"want one of {CHECKPOINT_CHOICES}")
  _need(t.checkpoint_choice != "best_validation" or t.eval_every_epochs >= 1,
        "train.eval_every_epochs", t.eval_every_epochs,
        "must be >= 1 with train.checkpoint_choice='best_validation' (the "
        "checkpoints it chooses among are the evaluated ones)")
  _need(t.batch_size % num_devices == 0, "train.batch_size", t.batch_size,
        f"must be divisible by the {num_devices} devices (each holds "
        "batch_size / devices examples)")
  if crop:
    _need(_is_real(t.crop_seconds) and
          round(t.crop_seconds * SAMPLE_RATE) >= cnn12.MIN_INPUT_LENGTH,
          "train.crop_seconds", t.crop_seconds,
          f"want at least CNN12's receptive field, {cnn12.MIN_INPUT_LENGTH} "
          f"samples ({cnn12.MIN_INPUT_LENGTH / SAMPLE_RATE:.4f} s at 8 kHz)")


def check_common(config, num_devices: int) -> None:
  """Fields every CNN12 recipe has: recipe, seeds, data, train, augment."""
  _need(config.recipe in RECIPES, "recipe", config.recipe,
        f"want one of {RECIPES}")
  check_seeds(config.seeds)
  cnn12_data.check_data_config(config.data)
  try:
    augment.check_augment_config(config.augment)
  except ValueError as e:
    raise ValueError(str(e).replace("augment config:", "augment:")) from None


def check_config(config, num_devices: int | None = None) -> None:
  """Refuses a supervised/probe/fine-tune config that cannot run, before
  any data is read (the data-dependent checks come in train_classifier)."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  check_common(config, num_devices)
  _need(config.recipe in ("supervised", "probe", "finetune"), "recipe",
        config.recipe, "this recipe trains a classifier: want 'supervised', "
        "'probe' or 'finetune'")
  # For probe/fine-tune the model block describes the encoder expected in
  # the checkpoint (checked when it is loaded) and sets its dropout.
  check_model_config(config.model)
  check_train_config(config.train, num_devices)


def encoder_from_config(m) -> cnn12.CNN12:
  """CNN12 of a `model` block."""
  widths = tuple(w * m.width_multiplier // m.width_divisor
                 for w in cnn12.WIDTHS)
  return cnn12.CNN12(widths=widths, embedding_dim=m.embedding_dim,
                     dropout_rate=m.dropout_rate)


def encoder_record(encoder: cnn12.CNN12) -> dict:
  """What a loader needs to rebuild `encoder` (model_config.json); with
  "block" for an encoder cut after that block (analysis.TruncatedCNN12)."""
  record = {"widths": list(encoder.conv_widths),
            "embedding_dim": int(encoder.embedding_dim),
            "dropout_rate": float(encoder.dropout_rate)}
  if getattr(encoder, "block", None) is not None:
    record["block"] = int(encoder.block)
  return record


def encoder_from_record(record: dict) -> cnn12.CNN12:
  if "block" in record:
    raise ValueError(f"this run's encoder is CNN12 cut after block "
                     f"{record['block']} (a layer-importance run), not a "
                     "whole CNN12 encoder")
  return cnn12.CNN12(widths=tuple(record["widths"]),
                     embedding_dim=record["embedding_dim"],
                     dropout_rate=record["dropout_rate"])


# --- The step ----------------------------------------------------------------


def augment_chain(key, x, aug, noise=None, noise_lengths=None):
  """augment.augment (the authors' order), or only its peak normalisation
  when every random step is off (nothing else would change x; this skips
  compiling them)."""
  random_steps = [aug.gain_p, aug.noise_p, aug.mask_p]
  if noise is not None:
    random_steps.append(aug.background_p)
  if not any(p > 0 for p in random_steps):
    return augment.peak_normalise(x, aug.peak)
  return augment.augment(key, x, aug, noise, noise_lengths)


def classifier_loss_fn(encoder: cnn12.CNN12, head: heads.ClassifierHead, *,
                       multilabel: bool, crop_length: int, augment_config,
                       frozen_encoder: bool = False):
  """loss_fn(params, batch, key) for `fit`.

  params: {"encoder": CNN12 params, "head": ClassifierHead params}.
  batch: {"waveforms": (B, W), "lengths": (B,), "labels": int (B,) or
    multi-hot (B, C)} (cnn12_data.EpochBatches).
  """
  aug = augment.check_augment_config(augment_config)
  use_mixup = aug.mixup_p > 0

  def loss_fn(params, batch, key):
    k_crop, k_aug, k_mix, k_drop = jax.random.split(key, 4)
    x = augment.random_crop(k_crop, batch["waveforms"], crop_length,
                            lengths=batch["lengths"])
    x = augment_chain(k_aug, x, aug)
    labels = batch["labels"]
    if use_mixup:
      y = (labels.astype(jnp.float32) if multilabel else
           jax.nn.one_hot(labels, head.num_classes, dtype=jnp.float32))
      x, labels = augment.mixup(k_mix, x, y, aug.mixup_alpha, aug.mixup_p)
    enc = params["encoder"]
    if frozen_encoder:
      enc = jax.lax.stop_gradient(enc)
    h = encoder.apply({"params": enc}, x, train=not frozen_encoder,
                      rngs={"dropout": k_drop})
    logits = head.apply({"params": params["head"]}, h)
    if multilabel:
      return losses.sigmoid_binary_cross_entropy(logits, labels), {}
    return losses.softmax_cross_entropy(logits, labels), {}

  return loss_fn


def classifier_optimizer(t, steps_per_epoch: int,
                         frozen_encoder: bool = False):
  """Adam + warm-up/cosine of the train block; with a frozen encoder only
  the head is updated (the encoder's updates are zero, no decay)."""
  base = optimizers.adam_warmup_cosine(
      t.learning_rate, t.weight_decay, t.warmup_epochs * steps_per_epoch,
      t.num_epochs * steps_per_epoch, t.weight_decay_mode)
  if not frozen_encoder:
    return base

  def labels(params):
    return {k: jax.tree.map(lambda _, k=k: "frozen" if k == "encoder"
                            else "train", v) for k, v in params.items()}
  return optax.multi_transform({"train": base,
                                "frozen": optax.set_to_zero()}, labels)


# --- Whole-clip evaluation ---------------------------------------------------


@functools.lru_cache(maxsize=32)
def head_forward(encoder, head, mesh, name: str = "head"):
  """jit of (params, x) -> head(encoder(x)), no dropout; x split over
  `mesh`, the output replicated (every host can read all of it)."""
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def forward(params, x):
    h = encoder.apply({"params": params["encoder"]}, x)
    return head.apply({"params": params[name]}, h)

  return jax.jit(forward, out_shardings=replicated)


def _replicated(tree, mesh):
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.device_put(tree, sharding)


def predict_logits(encoder, head, params, store: cnn12_data.ClipStore,
                   batch_size: int = 64, length_multiple: int = 1,
                   mesh=None, *, min_length: int = 0,
                   pad: str = "tile") -> np.ndarray:
  """(N, C) float32 logits of every clip of `store`, each seen whole.

  Clips are grouped by evaluation length (cnn12_data.eval_groups: at least
  min_length samples, rounded up to length_multiple), lengthened by `pad`
  (cnn12_data.eval_inputs); each batch is padded to `batch_size` (rounded
  up to the mesh's devices) and split over the mesh.
  """
  mesh = loop.make_mesh() if mesh is None else mesh
  n_dev = mesh.devices.size
  batch_size = -(-batch_size // n_dev) * n_dev
  params = _replicated(params, mesh)
  out = np.zeros((len(store), head.num_classes), np.float32)
  for length, indices in cnn12_data.eval_groups(store, length_multiple,
                                                min_length):
    for start in range(0, len(indices), batch_size):
      idx = indices[start:start + batch_size]
      x = np.zeros((batch_size, length), np.float32)
      x[:len(idx)] = cnn12_data.eval_inputs(store, idx, length, pad)
      logits = head_forward(encoder, head, mesh)(
          params, loop.shard_batch({"x": x}, mesh)["x"])
      out[idx] = np.asarray(logits)[:len(idx)]
  return out


def classification_metrics(store: cnn12_data.ClipStore, logits) -> dict:
  """accuracy (multi-class) or mAP, mAUC, d' (multi-label), as floats."""
  if store.multilabel:
    m = metrics_lib.multilabel_metrics(store.labels, logits)
    return {"mAP": m["mAP"], "mAUC": m["mAUC"], "d_prime": m["d_prime"]}
  return {"accuracy": metrics_lib.accuracy(store.labels, logits)}


def chance_levels(store: cnn12_data.ClipStore) -> dict:
  """What a classifier that knows nothing scores on `store`: 1/C accuracy;
  mAP = mean class prevalence (the AP of random scores), mAUC 0.5, d' 0."""
  if store.multilabel:
    prevalence = store.labels.mean(0)
    return {"mAP": float(prevalence[prevalence > 0].mean()), "mAUC": 0.5,
            "d_prime": 0.0}
  return {"accuracy": 1.0 / store.num_classes}


def evaluate(encoder, head, params, store, batch_size=64, length_multiple=1,
             mesh=None, *, min_length: int = 0, pad: str = "tile") -> dict:
  """Metrics of the classifier on every clip of `store`, seen whole (as
  predict_logits)."""
  return classification_metrics(store, predict_logits(
      encoder, head, params, store, batch_size, length_multiple, mesh,
      min_length=min_length, pad=pad))


def eval_settings(data_config) -> dict:
  """evaluate's length keywords from a data block."""
  return {"length_multiple": data_config.eval_length_multiple,
          "min_length": int(round(data_config.eval_min_seconds
                                  * audio_io.SAMPLE_RATE)),
          "pad": data_config.eval_pad}


# --- Training ----------------------------------------------------------------


def _has_checkpoints(workdir: str) -> bool:
  directory = os.path.join(workdir, loop.CHECKPOINTS)
  return os.path.isdir(directory) and bool(ocp.utils.checkpoint_steps(
      directory))


def write_initial_state(workdir: str, params, optimizer, mesh) -> None:
  """Saves `params` as step 0 (with a fresh optimiser state) for `fit`.

  For a run whose parameters start partly from elsewhere (a pretrained
  encoder): `fit` resumes from this checkpoint, so the pretrained weights
  never become constants of a compiled program.
  """
  params = _replicated(jax.tree.map(jnp.asarray, params), mesh)
  state = loop.TrainState(
      step=_replicated(jnp.zeros((), jnp.int32), mesh), params=params,
      opt_state=_replicated(jax.jit(optimizer.init)(params), mesh))
  with loop.checkpoint_manager(os.path.join(workdir, loop.CHECKPOINTS), 1,
                               clean_up_unfinished=True) as manager:
    manager.save(0, args=loop.save_args(state))
    manager.wait_until_finished()


def run_paths(workdir: str) -> dict:
  return {name: os.path.join(workdir, name)
          for name in (MODEL_CONFIG, MADE_BY, EVAL_JSON)}


class Setup(NamedTuple):
  """Everything `fit` needs for one run, built from a config and the data.

  encoder / head: the modules. init_fn, loss_fn, optimizer, epoch_batches,
  num_steps: fit's arguments. steps_per_epoch: batches per epoch. stores:
  ClipStores by split. made_by / model_record: the run's records.
  head_init: key -> the head's parameters alone (what init_fn makes from
  the second half of its key), for runs that start from a saved encoder.
  """
  encoder: Any
  head: Any
  init_fn: Callable
  loss_fn: Callable
  optimizer: Any
  epoch_batches: Callable
  num_steps: int
  steps_per_epoch: int
  stores: dict
  made_by: dict
  model_record: dict
  head_init: Callable | None = None


def classifier_setup(config, data, seed: int, *, mesh=None,
                     pretrained=None) -> Setup:
  """A supervised/probe/fine-tune run's pieces (see train_classifier).

  Raises:
    ValueError for settings the data cannot meet (crop longer than every
    clip, fewer clips than a batch, an empty split).
  """
  mesh = loop.make_mesh() if mesh is None else mesh
  check_config(config, mesh.devices.size)
  t = config.train
  frozen = config.recipe == "probe"
  if (pretrained is None) != (config.recipe == "supervised"):
    raise ValueError(f"recipe {config.recipe!r} "
                     + ("needs an encoder to start from" if pretrained is None
                        else "trains from scratch; got a pretrained encoder"))
  encoder = (encoder_from_config(config.model) if pretrained is None
             else pretrained.model)
  num_classes = len(data.class_names)
  head = heads.ClassifierHead(num_classes,
                              relu_input=config.model.head_relu_input)
  stores = {s: cnn12_data.clip_store(data, s)
            for s in ("train", "validation", "test")}
  for s, store in stores.items():
    if not len(store):
      raise ValueError(f"the data's {s} split is empty")
  train_store = stores["train"]
  crop_length = int(round(t.crop_seconds * SAMPLE_RATE))
  if crop_length > train_store.max_length:
    raise ValueError(
        f"train.crop_seconds={t.crop_seconds} ({crop_length} samples) is "
        f"longer than every training clip (longest {train_store.max_length} "
        f"samples = {train_store.max_length / SAMPLE_RATE:g} s); crop at "
        "most the clip length")
  window = cnn12_data.train_window(
      train_store, crop_length,
      int(round(config.data.max_window_seconds * SAMPLE_RATE)))

  epoch_batches = cnn12_data.train_batches(train_store, t.batch_size, seed,
                                           window, mesh, config.data)

  steps_per_epoch = len(epoch_batches(0))
  model_record = {
      "kind": "cnn12_classifier", "encoder": encoder_record(encoder),
      "head": {"num_classes": num_classes,
               "relu_input": config.model.head_relu_input},
      "class_names": list(data.class_names), "multilabel":
      train_store.multilabel, "sample_rate": SAMPLE_RATE}
  made_by = {
      "recipe": config.recipe, "data": data.fingerprint, "seed": seed,
      "model": model_record, "train": provenance.to_jsonable(t),
      "augment": provenance.to_jsonable(config.augment),
      "data_settings": {k: config.data[k] for k in (
          "max_window_seconds", "eval_length_multiple", "eval_min_seconds",
          "eval_pad")}}
  if pretrained is not None:
    made_by["encoder"] = pretrained.record

  def head_init(key):
    h = jnp.zeros((1, encoder.embedding_dim), jnp.float32)
    return head.init(key, h)["params"]

  def init_fn(key):
    k_enc, k_head = jax.random.split(key)
    x = jnp.zeros((1, cnn12.MIN_INPUT_LENGTH), jnp.float32)
    return {"encoder": encoder.init(k_enc, x)["params"],
            "head": head_init(k_head)}

  return Setup(
      encoder=encoder, head=head, init_fn=init_fn,
      loss_fn=classifier_loss_fn(
          encoder, head, multilabel=train_store.multilabel,
          crop_length=crop_length, augment_config=config.augment,
          frozen_encoder=frozen),
      optimizer=classifier_optimizer(t, steps_per_epoch, frozen),
      epoch_batches=epoch_batches, num_steps=t.num_epochs * steps_per_epoch,
      steps_per_epoch=steps_per_epoch, stores=stores, made_by=made_by,
      model_record=model_record, head_init=head_init)


def kept_period(t, steps_per_epoch: int) -> int | None:
  """fit's keep_period: train.keep_period, and with checkpoint_choice
  'best_validation' every evaluated step too (their gcd)."""
  period = t.keep_period
  if t.get("checkpoint_choice") == "best_validation":
    every_eval = t.eval_every_epochs * steps_per_epoch
    period = math.gcd(period, every_eval) if period else every_eval
  return period or None


def best_validation_step(workdir: str, metric: str) -> int:
  """The evaluated step with the highest eval/<metric> in metrics.jsonl
  (the last row of a step counts, after a resume; the earliest of equal
  values wins)."""
  path = os.path.join(workdir, "metrics.jsonl")
  values = {}
  with open(path) as f:
    for line in f:
      row = json.loads(line)
      if f"eval/{metric}" in row:
        values[int(row["step"])] = float(row[f"eval/{metric}"])
  if not values:
    raise ValueError(f"{path} has no eval/{metric} row to choose the best "
                     "validation checkpoint by")
  return max(sorted(values), key=lambda step: values[step])


def fit_setup(workdir: str, setup, t, seed: int, eval_fn, mesh, *,
              init_fn=None):
  """`loop.fit` of a recipe's Setup (classifier_setup, contrastive_setup)
  with the config's train block `t`; init_fn defaults to setup.init_fn."""
  return loop.fit(
      workdir=workdir, init_fn=init_fn or setup.init_fn,
      loss_fn=setup.loss_fn, optimizer=setup.optimizer,
      epoch_batches=setup.epoch_batches, num_steps=setup.num_steps,
      seed=seed, checkpoint_every=t.checkpoint_every,
      keep_checkpoints=t.keep_checkpoints,
      keep_period=kept_period(t, setup.steps_per_epoch),
      log_every=t.log_every,
      eval_fn=eval_fn,
      eval_every=t.eval_every_epochs * setup.steps_per_epoch,
      mesh=mesh, record=setup.made_by)


def train_classifier(config, workdir: str, data, seed: int, *, mesh=None,
                     pretrained=None) -> dict:
  """Trains CNN12 + classifier with `seed` in `workdir`; resumes there.

  Args:
    config: a supervised/probe/fine-tune config (check_config).
    workdir: this run's folder (one seed).
    data: KeywordData (multi-class) or EventData (multi-label).
    seed: the run's seed (init, batches, step keys).
    mesh: the data mesh (default every device).
    pretrained: for probe/fine-tune, cnn12_eval.Encoder (module, params,
      and its record: kind, step, fingerprint) to start from.

  Returns:
    {"validation": metrics, "test": metrics, "chance": metrics,
     "steps": int, "checkpoint": {"choice", "step"}: the parameters those
     metrics are of} (also written to workdir/eval.json).

  Raises:
    ValueError for settings the data cannot meet (crop longer than every
    clip, fewer clips than a batch); ProvenanceError when workdir was made
    by another run.
  """
  workdir = provenance.check_workdir(workdir, "workdir")
  mesh = loop.make_mesh() if mesh is None else mesh
  setup = classifier_setup(config, data, seed, mesh=mesh,
                           pretrained=pretrained)
  t = config.train
  paths = run_paths(workdir)
  what = f"the CNN12 run in {workdir}"
  remedy = "use a new --workdir, or delete that folder to retrain"
  provenance.check_record(paths[MADE_BY], setup.made_by, what, remedy)
  provenance.check_or_write_record(paths[MODEL_CONFIG], setup.model_record,
                                   what, remedy)
  if pretrained is not None and not _has_checkpoints(workdir):
    provenance.check_or_write_record(paths[MADE_BY], setup.made_by, what,
                                     remedy)
    # The head as fit's init_fn would make it from `seed`.
    init_key = jax.random.split(jax.random.key(seed))[0]
    head_key = jax.random.split(init_key)[1]
    write_initial_state(
        workdir, {"encoder": pretrained.params,
                  "head": jax.jit(setup.head_init)(head_key)},
        setup.optimizer, mesh)

  def run_eval(params, split):
    return evaluate(setup.encoder, setup.head, params, setup.stores[split],
                    t.eval_batch_size, mesh=mesh,
                    **eval_settings(config.data))

  last_eval = {}

  def eval_fn(params, step):
    last_eval.update(step=step, result=run_eval(params, "validation"))
    return last_eval["result"]

  init_fn = setup.init_fn
  if pretrained is not None:
    # fit restores step 0 (written above) over whatever init_fn makes; only
    # its structure matters, so it need not compile the random encoder init.
    encoder_shapes = jax.eval_shape(setup.init_fn,
                                    jax.random.key(0))["encoder"]

    def init_fn(key):
      head_key = jax.random.split(key)[1]
      return {"encoder": jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                                      encoder_shapes),
              "head": setup.head_init(head_key)}

  state = fit_setup(workdir, setup, t, seed, eval_fn, mesh, init_fn=init_fn)
  if t.checkpoint_choice == "best_validation":
    metric = "mAP" if setup.stores["validation"].multilabel else "accuracy"
    step = best_validation_step(workdir, metric)
    params = loop.restore_params_at(workdir, step)
    validation = run_eval(params, "validation")
  else:
    step, params = setup.num_steps, state.params
    validation = (last_eval["result"]
                  if last_eval.get("step") == setup.num_steps
                  else run_eval(params, "validation"))
  result = {
      "validation": validation,
      "test": run_eval(params, "test"),
      "chance": chance_levels(setup.stores["test"]),
      "steps": setup.num_steps,
      "checkpoint": {"choice": t.checkpoint_choice, "step": step},
  }
  if jax.process_index() == 0:
    provenance.write_json_atomic(paths[EVAL_JSON], result)
  logging.info("%s: validation %s, test %s", workdir, result["validation"],
               result["test"])
  return result


def parse_variant(variant: str, sizes=("default", "tiny", "paper"),
                  options=("x2", "authors")) -> tuple:
  """'size[,option...]' of a config file -> (size, set of options).

  E.g. 'tiny', 'x2' (= 'default,x2'), 'paper,x2,authors'.
  """
  tokens = [t.strip() for t in str(variant or "default").split(",")
            if t.strip()]
  size = [t for t in tokens if t in sizes]
  unknown = [t for t in tokens if t not in sizes and t not in options]
  if unknown or len(size) > 1:
    raise ValueError(f"config variant {variant!r}: want one size of {sizes} "
                     f"and any of {options}, comma-separated (e.g. "
                     f"'{sizes[0]},{options[0]}')")
  return (size[0] if size else "default"), set(tokens) - set(size)
