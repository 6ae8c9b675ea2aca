"""Decoders from layer n of the encoder back to its input (SPEC A3.3-4).

A decoder D_n mirrors the encoder (a PhoneCNN, normally the padded 'SAME'
one) from layer n down to the input, one decoder STAGE per encoder unit
(a conv block conv -> ReLU -> pool, or a dense layer with its ReLU), run
innermost first:
  conv block:  [unpool, if layer n reaches the block's pool] -> transposed
               conv (own, untied weights; 'SAME' padding for a 'SAME'
               encoder so the length returns to the block's input length,
               'VALID' for a 'VALID' one, where it grows back by k - 1)
  dense layer: Dense back to the layer's input size (reshaped to (L, C) when
               that input was a flattened conv activation).
Each stage's output estimates the input of its encoder unit. Every inner
unit's input is a ReLU (or pool-of-ReLU) output, so every stage but the
outermost ends in a ReLU (the ReLUs "between blocks where the encoder had
one"); the outermost stage, which estimates the mean-subtracted spectrogram
(negative values included), is linear.

Unpooling: 'blind' (default: each value copied over its window, averaged
where windows overlap; no information about the input) or 'switch'
(max_unpool at the encoder's recorded argmax; the switches of the ORIGINAL
input must then be passed, and they leak input information, see
`mangled_decoder_check`).

Stacked training (thesis 6.5.5), each step through `recon_jax.train.fit`
(checkpointed, resumable, data parallel) in its own workdir subfolder:
  stage 1..S, innermost first: only that stage's parameters train; its input
    is the output of the already trained (frozen) inner stages applied to
    Y_n (the encoder's true activation for the innermost stage); its target
    is the true input of the matching encoder unit. (Training outward from
    the inner stages' actual outputs is what makes the order matter.)
  fine-tune: all stages together, target the input X.
Loss 1/2 ||target - D(Y)||^2 per example, mean over the batch. The encoder's
parameters are closed over and never train.

A trained decoder is saved with what it was trained against (layer,
unpooling, encoder config, a fingerprint of the encoder's parameters, input
shape); loading it for another encoder raises ValueError.
"""
import dataclasses
import functools
import hashlib
import json
import math
import os
from typing import Any, Callable, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from recon_jax import ops
from recon_jax.inversion import backprop
from recon_jax.inversion import objective
from recon_jax.models import phone_cnn

UNPOOLING = ("blind", "switch")
_PARAMS_FILE = "decoder.msgpack"
_META_FILE = "decoder.json"


@dataclasses.dataclass(frozen=True)
class DecoderStage:
  """One decoder stage, mirroring one encoder unit.

  name: parameter-tree name ('block3', 'fc2', ...).
  kind: 'conv' or 'dense'.
  source_layer: encoder layer whose activation the stage decodes.
  target_layer: encoder layer whose output it estimates (0: the input X).
  out_shape: per-example shape of that target.
  kernel: conv stages: the encoder conv's kernel size.
  pool_layer: conv stages: the encoder pool layer to undo (0: none).
  unpool_length: the pre-pool length to unpool to.
  relu: a ReLU on the output (all stages but the outermost).
  """
  name: str
  kind: str
  source_layer: int
  target_layer: int
  out_shape: tuple
  kernel: int = 0
  pool_layer: int = 0
  unpool_length: int = 0
  relu: bool = True


def decoder_stages(model: phone_cnn.PhoneCNN, layer: int,
                   input_shape=objective.INPUT_SHAPE) -> tuple[DecoderStage, ...]:
  """The stages of D_layer for `model`, innermost first."""
  model.check_layer(layer)
  shapes = {0: tuple(input_shape)}
  for spec in model.layers[:layer]:
    shapes[spec.number] = tuple(phone_cnn.activation_shape(
        model, (1,) + tuple(input_shape), spec.number)[1:])
  units = []  # (kind, layers of the unit)
  for spec in model.layers[:layer]:
    if spec.kind in ("conv", "dense"):
      units.append((spec.kind, [spec]))
    else:
      units[-1][1].append(spec)
  stages = []
  for index, (kind, specs) in enumerate(units):
    first = specs[0]
    pool = [s for s in specs if s.kind == "pool"]
    stages.append(DecoderStage(
        name=f"block{first.block + 1}" if kind == "conv" else first.name,
        kind=kind,
        source_layer=specs[-1].number,
        target_layer=first.number - 1,
        out_shape=shapes[first.number - 1],
        kernel=model.conv_kernels[first.block] if kind == "conv" else 0,
        pool_layer=pool[0].number if pool else 0,
        unpool_length=shapes[pool[0].number - 1][0] if pool else 0,
        relu=index > 0))
  return tuple(reversed(stages))


class Decoder(nn.Module):
  """D_n: (N, *activation of layer n) -> (N, F, T). See the module doc."""
  stages: tuple
  unpooling: str = "blind"
  pool_window: int = 5
  pool_stride: int = 2
  conv_padding: str = "SAME"
  stage_relu: bool = True

  @nn.compact
  def __call__(self, y, switches=None, *, start: int = 0,
               stop: int | None = None):
    """Runs stages[start:stop] (all by default) on y.

    Args:
      y: (N, *source shape of stages[start]).
      switches: 'switch' unpooling: {pool layer: int (N, L_out, C)} from the
        encoder run on the original inputs.
    """
    h = y
    for stage in self.stages[start:stop]:
      if stage.kind == "dense":
        h = h.reshape((h.shape[0], -1))
        h = nn.Dense(math.prod(stage.out_shape), name=stage.name)(h)
        h = h.reshape((h.shape[0],) + stage.out_shape)
      else:
        if stage.pool_layer:
          if self.unpooling == "blind":
            h = ops.blind_unpool(h, self.pool_window, self.pool_stride,
                                 stage.unpool_length)
          else:
            h = ops.max_unpool(h, switches[stage.pool_layer],
                               stage.unpool_length)
        h = nn.ConvTranspose(stage.out_shape[-1], (stage.kernel,),
                             padding=self.conv_padding, name=stage.name)(h)
      if stage.relu and self.stage_relu:
        h = nn.relu(h)
    return h


def make_decoder(model: phone_cnn.PhoneCNN, layer: int,
                 unpooling: str = "blind",
                 input_shape=objective.INPUT_SHAPE,
                 stage_relu: bool = True) -> Decoder:
  """The (untrained) decoder module D_layer for `model`.

  stage_relu: end every inner stage in a ReLU (default); False makes each
    stage linear (then the decoder's only nonlinearity is switch unpooling).
  """
  if unpooling not in UNPOOLING:
    raise ValueError(f"unpooling must be one of {UNPOOLING}, got {unpooling!r}")
  return Decoder(stages=decoder_stages(model, layer, input_shape),
                 unpooling=unpooling, pool_window=model.pool_window,
                 pool_stride=model.pool_stride, conv_padding=model.padding,
                 stage_relu=stage_relu)


def encoder_config(model: phone_cnn.PhoneCNN) -> dict:
  """The fields of `model` that decide its activations (JSON-able)."""
  return {f.name: (list(v) if isinstance(v, (tuple, list)) else v)
          for f in dataclasses.fields(model)
          if f.name not in ("parent", "name", "dropout_rate")
          for v in [getattr(model, f.name)]}


def params_fingerprint(params) -> str:
  """sha256 of a parameter tree's paths, shapes and float32 values."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    arr = np.asarray(leaf, np.float32)
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(str(arr.shape).encode())
    digest.update(arr.tobytes())
  return digest.hexdigest()[:16]


@dataclasses.dataclass
class TrainedDecoder:
  """A decoder, its parameters and what it was trained against."""
  module: Decoder
  params: Any
  layer: int
  unpooling: str
  encoder: dict  # encoder_config of the encoder
  encoder_fingerprint: str
  input_shape: tuple

  def metadata(self) -> dict:
    return {"layer": self.layer, "unpooling": self.unpooling,
            "stage_relu": self.module.stage_relu,
            "encoder": self.encoder,
            "encoder_fingerprint": self.encoder_fingerprint,
            "input_shape": list(self.input_shape)}


def check_decoder_matches(decoder: TrainedDecoder, model: phone_cnn.PhoneCNN,
                          encoder_params, layer: int | None = None):
  """ValueError naming the mismatch if `decoder` was not trained for these."""
  if layer is not None and decoder.layer != layer:
    raise ValueError(f"decoder was trained to decode layer {decoder.layer}, "
                     f"not layer {layer}")
  config = encoder_config(model)
  if decoder.encoder != config:
    diff = {k: (decoder.encoder.get(k), v) for k, v in config.items()
            if decoder.encoder.get(k) != v}
    raise ValueError("decoder does not match the encoder: it was trained "
                     "against an encoder with different config (field: "
                     f"(decoder's, this encoder's)) {diff}")
  if encoder_params is not None:
    fp = params_fingerprint(encoder_params)
    if fp != decoder.encoder_fingerprint:
      raise ValueError(
          "decoder does not match the encoder: it was trained against "
          f"encoder parameters with fingerprint {decoder.encoder_fingerprint}"
          f", these have {fp} (same architecture, different weights)")


def save_decoder(directory: str, decoder: TrainedDecoder):
  """Writes decoder.msgpack (parameters) and decoder.json (metadata)."""
  os.makedirs(directory, exist_ok=True)
  params = jax.tree.map(np.asarray, decoder.params)
  with open(os.path.join(directory, _PARAMS_FILE), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(params))
  with open(os.path.join(directory, _META_FILE), "w") as f:
    json.dump(decoder.metadata(), f, indent=1)


def load_decoder(directory: str, model: phone_cnn.PhoneCNN, encoder_params,
                 layer: int | None = None) -> TrainedDecoder:
  """Loads a saved decoder and checks it matches (model, encoder_params, layer).

  Raises:
    ValueError: no decoder there, or it was trained for another layer,
      encoder config or encoder parameters (encoder_params None skips the
      parameter check).
  """
  meta_path = os.path.join(directory, _META_FILE)
  if not os.path.exists(meta_path):
    raise ValueError(f"no decoder in {directory} (missing {_META_FILE})")
  with open(meta_path) as f:
    meta = json.load(f)
  with open(os.path.join(directory, _PARAMS_FILE), "rb") as f:
    params = flax.serialization.msgpack_restore(f.read())
  input_shape = tuple(meta["input_shape"])
  stub = TrainedDecoder(None, params, meta["layer"], meta["unpooling"],
                        meta["encoder"], meta["encoder_fingerprint"],
                        input_shape)
  check_decoder_matches(stub, model, encoder_params, layer)
  stub.module = make_decoder(model, meta["layer"], meta["unpooling"],
                             input_shape, meta.get("stage_relu", True))
  return stub


# ----------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class DecoderTrainConfig:
  """Stacked decoder training (thesis 6.5.5).

  unpooling: 'blind' | 'switch'.
  stage_relu: ReLU at the end of every inner stage (see make_decoder).
  stage_steps: optimiser steps for each stage alone.
  finetune_steps: steps for all stages together.
  optimizer: 'adam' | 'adagrad' | 'sgd' (the thesis does not say which).
  learning_rate: its step size.
  checkpoint_every, keep_checkpoints, log_every: passed to train.fit.
  seed: init and loss keys.
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
    if self.unpooling not in UNPOOLING:
      raise ValueError(f"unpooling must be one of {UNPOOLING}, got "
                       f"{self.unpooling!r}")
    if self.optimizer not in ("adam", "adagrad", "sgd"):
      raise ValueError(f"unknown optimizer {self.optimizer!r}")


def _optimizer(config: DecoderTrainConfig) -> optax.GradientTransformation:
  return getattr(optax, config.optimizer)(config.learning_rate)


def encoder_views(model, encoder_params, x, layers, with_switches_of: int):
  """The encoder activations at `layers` (0: x itself) and the switches."""
  enc = {"params": encoder_params}
  top, switches = model.apply(enc, x, layer=with_switches_of,
                              with_switches=True)
  out = {0: x, with_switches_of: top}
  for l in layers:
    if l not in out:
      out[l] = model.apply(enc, x, layer=l)
  return {k: jax.lax.stop_gradient(v) for k, v in out.items()}, switches


def _half_squared_error(target, pred):
  d = (target - pred).reshape((target.shape[0], -1))
  return 0.5 * jnp.mean(jnp.sum(d * d, axis=-1))


def array_batches(x: np.ndarray, batch_size: int,
                  seed: int = 0) -> Callable[[int], Sequence[dict]]:
  """epoch -> shuffled full batches {'x': (batch_size, F, T)} of x (N, F, T)."""
  x = np.asarray(x, np.float32)
  if len(x) < batch_size:
    raise ValueError(f"{len(x)} examples cannot fill a batch of {batch_size}")

  def epoch_batches(epoch):
    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    return [{"x": x[order[i:i + batch_size]]}
            for i in range(0, len(x) - batch_size + 1, batch_size)]
  return epoch_batches


def train_decoder(model: phone_cnn.PhoneCNN, encoder_params, layer: int, *,
                  workdir: str,
                  epoch_batches: Callable[[int], Sequence[dict]],
                  config: DecoderTrainConfig = DecoderTrainConfig(),
                  input_shape=objective.INPUT_SHAPE,
                  fit=None) -> TrainedDecoder:
  """Trains D_layer stage by stage, then all together; saves it in workdir.

  Args:
    model, encoder_params: the (frozen) encoder, normally padding 'SAME'.
    layer: the encoder layer n to decode from.
    workdir: stage i's checkpoints go to workdir/stage{i}_{name}, the
      fine-tuning's to workdir/finetune, the final decoder to workdir
      (decoder.msgpack + decoder.json). Re-running resumes.
    epoch_batches: epoch -> batches {'x': (B, F, T) network inputs}; B must
      split over the devices (see train.fit). `array_batches` makes one.
    config: DecoderTrainConfig. stage_steps 0 skips the stacked stages
      (plain end-to-end training from a random init).
    fit: the training loop (default recon_jax.train.fit).

  Returns:
    The TrainedDecoder (also saved in workdir).
  """
  if fit is None:
    from recon_jax import train  # pylint: disable=g-import-not-at-top
    fit = train.fit
  decoder = make_decoder(model, layer, config.unpooling, input_shape,
                         config.stage_relu)
  stages = decoder.stages
  needed = sorted({s.target_layer for s in stages})
  act_shape = phone_cnn.activation_shape(model, (1,) + tuple(input_shape),
                                         layer)
  switch_shapes = jax.eval_shape(
      lambda: model.apply({"params": encoder_params},
                          jnp.zeros((1,) + tuple(input_shape)), layer=layer,
                          with_switches=True))[1]

  def dummy_switches():
    return {k: jnp.zeros(v.shape, jnp.int32) for k, v in switch_shapes.items()}

  def init_all(key):
    return decoder.init(key, jnp.zeros(act_shape), dummy_switches())["params"]

  def init_stage(key, index):
    stage = stages[index]
    y = jnp.zeros((1,) + (tuple(act_shape[1:]) if index == 0 else
                          stages[index - 1].out_shape))
    return decoder.init(key, y, dummy_switches(), start=index,
                        stop=index + 1)["params"][stage.name]

  trained = {}
  for index, stage in enumerate(stages if config.stage_steps else ()):
    inner = dict(trained)

    def stage_loss(stage_params, batch, key, index=index, stage=stage,
                   inner=inner):
      del key
      views, switches = encoder_views(model, encoder_params, batch["x"],
                                      needed, layer)
      h = views[layer]
      if index:
        h = decoder.apply({"params": inner}, h, switches, stop=index)
      pred = decoder.apply({"params": {stage.name: stage_params}}, h,
                           switches, start=index, stop=index + 1)
      loss = _half_squared_error(views[stage.target_layer], pred)
      return loss, {}

    state = fit(workdir=os.path.join(workdir, f"stage{index + 1}_{stage.name}"),
                init_fn=lambda key, index=index: init_stage(key, index),
                loss_fn=stage_loss, optimizer=_optimizer(config),
                epoch_batches=epoch_batches, num_steps=config.stage_steps,
                seed=config.seed + index,
                checkpoint_every=config.checkpoint_every,
                keep_checkpoints=config.keep_checkpoints,
                log_every=config.log_every)
    trained[stage.name] = jax.device_get(state.params)

  def full_loss(params, batch, key):
    del key
    views, switches = encoder_views(model, encoder_params, batch["x"], [],
                                    layer)
    pred = decoder.apply({"params": params}, views[layer], switches)
    return _half_squared_error(batch["x"], pred), {}

  stacked = dict(trained)

  def init_finetune(key):
    if stacked:  # stage_steps > 0: start from the stacked stages
      return stacked
    return init_all(key)  # stage_steps == 0: plain end-to-end training

  state = fit(workdir=os.path.join(workdir, "finetune"),
              init_fn=init_finetune, loss_fn=full_loss,
              optimizer=_optimizer(config), epoch_batches=epoch_batches,
              num_steps=config.finetune_steps, seed=config.seed + len(stages),
              checkpoint_every=config.checkpoint_every,
              keep_checkpoints=config.keep_checkpoints,
              log_every=config.log_every)
  result = TrainedDecoder(decoder, jax.device_get(state.params), layer,
                          config.unpooling, encoder_config(model),
                          params_fingerprint(encoder_params),
                          tuple(input_shape))
  save_decoder(workdir, result)
  return result


def decoder_loss(decoder: TrainedDecoder, model, encoder_params, x) -> float:
  """1/2 ||X - D(Y_n(X))||^2, mean over the batch x (N, F, T)."""
  views, switches = encoder_views(model, encoder_params, jnp.asarray(x), [],
                                  decoder.layer)
  pred = decoder.module.apply({"params": decoder.params}, views[decoder.layer],
                              switches)
  return float(_half_squared_error(jnp.asarray(x), pred))


# ----------------------------------------------------------- reconstruction


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Decoding Y*_n with K noisy draws (thesis 6.7).

  num_draws: K decodings averaged per example.
  noise_scale: std of the Gaussian noise added to Y*_n, relative to each
    example's RMS activation if relative_noise else absolute. Draws with
    noise_scale 0 are all the same, plain decoding.
  weight_decay: lambda of the E reported in the summary.
  """
  num_draws: int = 4
  noise_scale: float = 0.01
  relative_noise: bool = True
  weight_decay: float = 1e-3

  def __post_init__(self):
    if self.num_draws < 1 or self.noise_scale < 0:
      raise ValueError(f"need num_draws >= 1 and noise_scale >= 0: {self}")


def _check_switches(decoder: TrainedDecoder, switches, num_examples):
  if decoder.unpooling != "switch":
    return None
  if switches is None:
    raise ValueError("a 'switch' unpooling decoder needs the encoder's "
                     "switches of the original inputs (model.apply(..., "
                     "with_switches=True)); pass switches=")
  pools = sorted(s.pool_layer for s in decoder.module.stages if s.pool_layer)
  missing = [p for p in pools if p not in switches]
  if missing:
    raise ValueError(f"switches for pool layers {missing} are missing")
  for p in pools:
    if np.shape(switches[p])[0] != num_examples:
      raise ValueError(f"switches of layer {p} hold {np.shape(switches[p])[0]}"
                       f" examples, targets hold {num_examples}")
  return {p: jnp.asarray(switches[p], jnp.int32) for p in pools}


def reconstruct_by_decoder(decoder: TrainedDecoder, model: phone_cnn.PhoneCNN,
                           encoder_params, layer: int, targets,
                           key: jax.Array,
                           config: DecoderConfig = DecoderConfig(),
                           switches=None):
  """X = D_n(Y*_n + noise), K draws averaged.

  Args:
    decoder: a TrainedDecoder for (model, encoder_params, layer).
    model, encoder_params: the encoder (checked against the decoder, and used
      for the summary's E).
    layer: n.
    targets: Y*_n (N, *activation).
    key: PRNG key of the noise draws.
    config: DecoderConfig.
    switches: 'switch' decoders only: {pool layer: (N, L_out, C)} of the
      original inputs.

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary {'energy': E of
     each run (N, K)}).
  """
  check_decoder_matches(decoder, model, encoder_params, layer)
  objective.check_targets(model, layer, targets, decoder.input_shape)
  targets = jnp.asarray(targets, jnp.float32)
  n, k = targets.shape[0], config.num_draws
  switches = _check_switches(decoder, switches, n)
  runs = _decode_draws(decoder.module, decoder.params, targets, switches, key,
                       k, config.noise_scale, config.relative_noise)
  energy = objective.make_runs_energy(model, layer, config.weight_decay)(
      encoder_params, runs, targets)
  return runs.mean(axis=1), runs, {"energy": energy}


@functools.partial(jax.jit, static_argnums=(0, 5, 7))
def _decode_draws(module, params, targets, switches, key, num_draws,
                  noise_scale, relative):
  n = targets.shape[0]
  noise = jax.random.normal(key, (num_draws,) + targets.shape)
  if relative:
    rms = jnp.sqrt(jnp.mean(targets.reshape((n, -1))**2, axis=-1))
    noise = noise * rms.reshape((1, n) + (1,) * (targets.ndim - 1))
  noisy = targets[None] + noise_scale * noise  # (K, N, *act)

  def one(y):
    return module.apply({"params": params}, y, switches)
  return jnp.swapaxes(jax.lax.map(one, noisy), 0, 1)


def reconstruct_by_decoder_then_backprop(
    decoder: TrainedDecoder, model: phone_cnn.PhoneCNN, encoder_params,
    layer: int, targets, key: jax.Array,
    decoder_config: DecoderConfig = DecoderConfig(),
    backprop_config: backprop.BackpropConfig = backprop.BackpropConfig(),
    switches=None):
  """X = B(X*, D_n(Y*_n)) (thesis 6.6): backprop started at each decoding.

  The K = decoder_config.num_draws noisy decodings start K backprop runs
  (backprop_config.num_starts is overridden by K), averaged.

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary: backprop's
     {steps, energy, bold, converged} plus 'decoder_energy', E of the
     decodings the runs started from).
  """
  k_dec, k_bp = jax.random.split(key)
  _, starts, dec_summary = reconstruct_by_decoder(
      decoder, model, encoder_params, layer, targets, k_dec, decoder_config,
      switches)
  config = dataclasses.replace(backprop_config,
                               num_starts=decoder_config.num_draws)
  rec, runs, summary = backprop.reconstruct_by_backprop(
      model, encoder_params, layer, targets, k_bp, config, init=starts,
      input_shape=decoder.input_shape)
  return rec, runs, {**summary, "decoder_energy": dec_summary["energy"]}


# ------------------------------------------------------- mangled network


def mangle(decoder: TrainedDecoder, stage_name: str | None = None):
  """Parameters with one transposed conv's kernel and bias set to 0.

  stage_name None: the innermost conv stage (the first decoding conv layer
  the activations meet, the thesis's "first decoding convolutional layer").
  """
  convs = [s.name for s in decoder.module.stages if s.kind == "conv"]
  name = convs[0] if stage_name is None else stage_name
  if name not in convs:
    raise ValueError(f"no conv stage {name!r} in this decoder ({convs})")
  params = dict(decoder.params)
  params[name] = jax.tree.map(jnp.zeros_like, params[name])
  return params, name


def mangled_decoder_check(decoder: TrainedDecoder, model: phone_cnn.PhoneCNN,
                          encoder_params, x, stage_name: str | None = None
                          ) -> dict:
  """Does the decoder reconstruct X without its first decoding conv layer?

  Zeroes the weights and bias of one transposed conv (default the innermost)
  and decodes the originals x (N, F, T), N >= 2. With 'switch' unpooling the
  outer stages' biases, unpooled at the switches of x, still draw x: the
  switches leak the input. With 'blind' unpooling the mangled output is the
  same for every input. For the leak to be visible, a conv stage with a bias
  and then an unpooling must follow the zeroed one (for the default network:
  decoders from layer 9 up), and with stage_relu that bias must be positive
  in some channel to pass the ReLU (in the switch decoder 'leak' and
  'mangled_spread' are then > 0; in the blind one both are 0 for any
  parameters).

  Returns:
    dict of floats: 'intact_mxcorr2', 'mangled_mxcorr2' (mean mxcorr2 of the
    decodings with their own originals), 'mangled_mxcorr2_shuffled' (with
    another example's original: the level an input-independent output
    reaches), 'leak' = mangled_mxcorr2 - mangled_mxcorr2_shuffled,
    'mangled_spread' (mean over pixels of the std over examples of the
    mangled output, relative to that of x; 0 = input-independent),
    and 'stage' (the zeroed stage, as a string under key 'stage').
  """
  from recon_jax import metrics  # pylint: disable=g-import-not-at-top
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 3 or x.shape[0] < 2:
    raise ValueError(f"need originals (N >= 2, F, T), got {x.shape}")
  check_decoder_matches(decoder, model, encoder_params)
  views, switches = encoder_views(model, encoder_params, x, [], decoder.layer)
  y = views[decoder.layer]
  mangled_params, name = mangle(decoder, stage_name)
  apply = jax.jit(lambda p: decoder.module.apply({"params": p}, y, switches))
  intact = apply(decoder.params)
  mangled = apply(mangled_params)
  shuffled = jnp.roll(x, 1, axis=0)
  spread = float(jnp.mean(jnp.std(mangled, axis=0))
                 / jnp.maximum(jnp.mean(jnp.std(x, axis=0)), 1e-12))
  own = float(jnp.mean(metrics.spectrogram_mxcorr(x, mangled)))
  other = float(jnp.mean(metrics.spectrogram_mxcorr(shuffled, mangled)))
  return {"stage": name,
          "intact_mxcorr2": float(jnp.mean(metrics.spectrogram_mxcorr(
              x, intact))),
          "mangled_mxcorr2": own, "mangled_mxcorr2_shuffled": other,
          "leak": own - other, "mangled_spread": spread}
