"""Stacked decoder training (docs/methods.md, A3.3; thesis 6.5.5).

Each step runs through `recon_jax.train.fit` (checkpointed, resumable, data
parallel) in its own workdir subfolder:
  stage 1..S, innermost first: only that stage's parameters train; its input
    is the output of the already trained (frozen) inner stages applied to
    Y_n (the encoder's true activation for the innermost stage); its target
    is the true input of the matching encoder unit. (Training outward from
    the inner stages' actual outputs is what makes the order matter.)
  fine-tune: all stages together, target the input X.
Loss 1/2 ||target - D(Y)||^2 per example, mean over the batch. The encoder's
parameters are closed over and never train; its activations for a batch
come from one forward pass (decoder_model.encoder_views).
"""
import dataclasses
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from recon_jax.inversion import config as config_lib
from recon_jax.inversion import decoder_io
from recon_jax.inversion import decoder_model
from recon_jax.inversion import objective
from recon_jax.train import loop as train_loop

OPTIMIZERS = ("adam", "adagrad", "sgd")


@dataclasses.dataclass(frozen=True)
class DecoderTrainConfig(config_lib.Settings):
  """Stacked decoder training (thesis 6.5.5).

  unpooling: 'blind' | 'switch'.
  stage_relu: ReLU at the end of every inner stage (see make_decoder).
  stage_steps: optimiser steps for each stage alone, >= 0 (0 skips the
    stacked stages: plain end-to-end training from a random init).
  finetune_steps: steps for all stages together, >= 0. stage_steps and
    finetune_steps may not both be 0 (nothing would train).
  optimizer: 'adam' | 'adagrad' | 'sgd' (the thesis does not say which).
  learning_rate: its step size, > 0.
  checkpoint_every, keep_checkpoints, log_every: passed to train.fit, each
    >= 1.
  seed: init and loss keys, >= 0.
  """
  unpooling: str = "blind"
  stage_relu: bool = True
  stage_steps: int = 2000
  finetune_steps: int = 2000
  optimizer: str = "adam"
  learning_rate: float = 1e-3
  checkpoint_every: int = 500
  keep_checkpoints: int = 2
  log_every: int = 50
  seed: int = 0

  def __post_init__(self):
    self.check_choice("unpooling", decoder_model.UNPOOLING)
    self.check_bool("stage_relu")
    self.check_int("stage_steps", 0)
    self.check_int("finetune_steps", 0)
    if self.stage_steps == 0 and self.finetune_steps == 0:
      raise ValueError("DecoderTrainConfig.stage_steps=0 and finetune_steps=0"
                       " would train nothing; set either to >= 1")
    self.check_choice("optimizer", OPTIMIZERS)
    self.check_float("learning_rate", 0.0, low_open=True)
    self.check_int("checkpoint_every", 1)
    self.check_int("keep_checkpoints", 1)
    self.check_int("log_every", 1)
    self.check_int("seed", 0)


def _optimizer(config: DecoderTrainConfig) -> optax.GradientTransformation:
  return getattr(optax, config.optimizer)(config.learning_rate)


def half_squared_error(target, pred):
  """1/2 ||target - pred||^2 per example (any per-example shapes of equal
  size), mean over the batch."""
  d = (target.reshape((target.shape[0], -1))
       - pred.reshape((pred.shape[0], -1)))
  return 0.5 * jnp.mean(jnp.sum(d * d, axis=-1))


def array_batches(x: np.ndarray, batch_size: int,
                  seed: int = 0) -> Callable[[int], Sequence[dict]]:
  """epoch -> shuffled full batches {'x': (batch_size, F, T)} of x (N, F, T)
  (or waveforms (N, T))."""
  x = np.asarray(x, np.float32)
  if x.ndim not in (2, 3):
    raise ValueError(f"decoder training inputs must be (N, freq, frames) (or "
                     f"waveforms (N, T)), got shape {x.shape}")
  if (isinstance(batch_size, bool) or not isinstance(batch_size, int)
      or batch_size < 1):
    raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
  if len(x) < batch_size:
    raise ValueError(f"{len(x)} examples cannot fill a batch of {batch_size}")
  if not np.all(np.isfinite(x)):
    raise ValueError("decoder training inputs hold NaN/Inf")

  def epoch_batches(epoch):
    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    return [{"x": x[order[i:i + batch_size]]}
            for i in range(0, len(x) - batch_size + 1, batch_size)]
  return epoch_batches


def _batch_input_shape(epoch_batches, rank: int = 2) -> tuple:
  batches = epoch_batches(0)
  if not len(batches):
    raise ValueError("epoch_batches(0) gave no batches to train on")
  shape = np.shape(batches[0]["x"])
  if len(shape) != rank + 1:
    raise ValueError(f"decoder training batches must hold 'x' of shape "
                     f"{'(B, freq, frames)' if rank == 2 else '(B, T)'}, got "
                     f"{shape}")
  return tuple(shape[1:])


def train_decoder(model, encoder_params, layer: int, *,
                  workdir: str,
                  epoch_batches: Callable[[int], Sequence[dict]],
                  config: DecoderTrainConfig = DecoderTrainConfig(),
                  input_shape=None,
                  fit=None) -> decoder_io.TrainedDecoder:
  """Trains D_layer stage by stage, then all together; saves it in workdir.

  Args:
    model, encoder_params: the (frozen) encoder, any network of the
      inversion protocol (normally the phone CNN with padding 'SAME'; a
      CNN12 on waveforms, a user's declared net).
    layer: the encoder layer n to decode from (its own numbering).
    workdir: stage i's checkpoints go to workdir/stage{i}_{name}, the
      fine-tuning's to workdir/finetune, the final decoder to workdir
      (decoder.msgpack + decoder.json). Re-running resumes.
    epoch_batches: epoch -> batches {'x': (B, F, T) network inputs ((B, T)
      for waveforms)}; B must
      split over the devices (see train.fit). `array_batches` makes one.
    config: DecoderTrainConfig.
    input_shape: one example's shape, (F, T) or (T,); None takes it from the
      first batch. Given, it must
      equal the batches' (F, T) in full.
    fit: the training loop (default recon_jax.train.fit).

  Returns:
    The TrainedDecoder (also saved in workdir).

  Raises:
    ValueError: a config that is not a DecoderTrainConfig, an input shape
      that does not match the batches or the encoder's parameters, or a bad
      layer.
  """
  if not isinstance(config, DecoderTrainConfig):
    raise ValueError(f"config must be a DecoderTrainConfig, got "
                     f"{type(config).__name__} (see config_from_dict)")
  fit = train_loop.fit if fit is None else fit
  objective.check_layer(model, layer)
  rank = objective.example_rank(model)
  data_shape = _batch_input_shape(epoch_batches, rank)
  input_shape = objective.resolve_input_shape(
      data_shape if input_shape is None else input_shape, rank=rank)
  if input_shape != data_shape:
    raise ValueError(f"input_shape {input_shape} does not match the training "
                     f"batches' (freq, frames) {data_shape}")
  objective.check_params_fit(model, encoder_params, input_shape)
  decoder = decoder_model.make_decoder(model, layer, config.unpooling,
                                       input_shape, config.stage_relu)
  stages = decoder.stages
  top = stages[0].source_layer  # the position of `layer`'s activation
  act, switches0 = decoder_model.dummy_inputs(model, layer, input_shape)

  def init_all(key):
    return decoder.init(key, act, switches0)["params"]

  def init_stage(key, index):
    stage = stages[index]
    y = jnp.zeros((1,) + (tuple(act.shape[1:]) if index == 0 else
                          stages[index - 1].out_shape))
    return decoder.init(key, y, switches0, start=index,
                        stop=index + 1)["params"][stage.name]

  common = dict(optimizer=_optimizer(config), epoch_batches=epoch_batches,
                checkpoint_every=config.checkpoint_every,
                keep_checkpoints=config.keep_checkpoints,
                log_every=config.log_every)
  trained = {}
  for index, stage in enumerate(stages if config.stage_steps else ()):
    inner = dict(trained)

    def stage_loss(stage_params, batch, key, index=index, stage=stage,
                   inner=inner):
      del key
      views, switches = decoder_model.encoder_views(
          model, encoder_params, batch["x"], layer)
      h = views[top]
      if index:
        h = decoder.apply({"params": inner}, h, switches, stop=index)
      pred = decoder.apply({"params": {stage.name: stage_params}}, h,
                           switches, start=index, stop=index + 1)
      return half_squared_error(views[stage.target_layer], pred), {}

    state = fit(workdir=os.path.join(workdir, f"stage{index + 1}_{stage.name}"),
                init_fn=lambda key, index=index: init_stage(key, index),
                loss_fn=stage_loss, num_steps=config.stage_steps,
                seed=config.seed + index, **common)
    trained[stage.name] = jax.device_get(state.params)

  def full_loss(params, batch, key):
    del key
    views, switches = decoder_model.encoder_views(model, encoder_params,
                                                  batch["x"], layer)
    pred = decoder.apply({"params": params}, views[top], switches)
    return half_squared_error(batch["x"], pred), {}

  stacked = dict(trained)

  def init_finetune(key):
    if stacked:  # stage_steps > 0: start from the stacked stages
      return stacked
    return init_all(key)  # stage_steps == 0: plain end-to-end training

  if config.finetune_steps:
    params = jax.device_get(fit(
        workdir=os.path.join(workdir, "finetune"), init_fn=init_finetune,
        loss_fn=full_loss, num_steps=config.finetune_steps,
        seed=config.seed + len(stages), **common).params)
  else:  # The stacked stages as they are (fit refuses 0 steps).
    params = stacked
  result = decoder_io.TrainedDecoder(
      decoder, params, layer, config.unpooling,
      decoder_io.encoder_config(model),
      decoder_io.params_fingerprint(encoder_params), input_shape,
      dataclasses.asdict(config))
  decoder_io.save_decoder(workdir, result)
  return result


def decoder_loss(decoder: decoder_io.TrainedDecoder, model, encoder_params,
                 x) -> float:
  """1/2 ||X - D(Y_n(X))||^2, mean over the batch x (N, F, T)."""
  x = jnp.asarray(x, jnp.float32)
  views, switches = decoder_model.encoder_views(model, encoder_params, x,
                                                decoder.layer)
  top = decoder.module.stages[0].source_layer
  pred = decoder.module.apply({"params": decoder.params}, views[top],
                              switches)
  return float(half_squared_error(x, pred))
