"""One entry point for the thesis's four reconstruction methods (SPEC A3).

    rec, runs, summary = reconstruct(method, model, params, layer, targets,
                                     key, config, decoder=..., switches=...)

method is one of METHODS; config a ReconstructionConfig holding every
method's settings (each a frozen dataclass, so an ml_collections config
maps onto it with `ReconstructionConfig.from_dict`). All methods return
(reconstructions (N, F, T), runs (N, K, F, T), summary: dict of (N, K)
arrays, always with 'energy', E of each run's result).
"""
import dataclasses

import jax

from recon_jax.inversion import annealing
from recon_jax.inversion import backprop
from recon_jax.inversion import decoder as decoder_lib
from recon_jax.inversion import objective
from recon_jax.models import phone_cnn

AnnealingConfig = annealing.AnnealingConfig
BackpropConfig = backprop.BackpropConfig
DecoderConfig = decoder_lib.DecoderConfig

METHODS = ("annealing", "backprop", "decoder", "decoder_backprop")


@dataclasses.dataclass(frozen=True)
class ReconstructionConfig:
  """Settings of every method (see each config's docstring)."""
  annealing: AnnealingConfig = AnnealingConfig()
  backprop: BackpropConfig = BackpropConfig()
  decoder: DecoderConfig = DecoderConfig()

  @classmethod
  def from_dict(cls, d) -> "ReconstructionConfig":
    """From a mapping {'annealing': {...}, 'backprop': {...}, 'decoder':
    {...}} (missing sections and fields keep their defaults)."""
    d = dict(d)
    unknown = set(d) - {"annealing", "backprop", "decoder"}
    if unknown:
      raise ValueError(f"unknown reconstruction config sections {unknown}")
    return cls(
        annealing=annealing.AnnealingConfig(**dict(d.get("annealing", {}))),
        backprop=backprop.BackpropConfig(**dict(d.get("backprop", {}))),
        decoder=decoder_lib.DecoderConfig(**dict(d.get("decoder", {}))))


def reconstruct(method: str, model: phone_cnn.PhoneCNN, params, layer: int,
                targets, key: jax.Array,
                config: ReconstructionConfig = ReconstructionConfig(), *,
                decoder: decoder_lib.TrainedDecoder | None = None,
                switches=None, input_shape=objective.INPUT_SHAPE,
                input_scale=None):
  """Reconstructs inputs (N, F, T) from layer `layer`'s activations.

  Args:
    method: 'annealing', 'backprop', 'decoder' or 'decoder_backprop'.
    model, params: the encoder whose activations `targets` are.
    layer: thesis layer number n.
    targets: Y*_n (N, *activation of layer n).
    key: PRNG key of the method's randomness (starts, noise).
    config: ReconstructionConfig.
    decoder: the TrainedDecoder for (model, params, layer); the decoder
      methods only.
    switches: the encoder's switches of the originals, for a 'switch'
      unpooling decoder only.
    input_scale: annealing only: the inputs' RMS, the unit of the neighbour
      radius (None: estimated from the targets).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary dict).

  Raises:
    ValueError: an unknown method, a missing or mismatched decoder, or bad
      targets (see each method).
  """
  if method not in METHODS:
    raise ValueError(f"unknown reconstruction method {method!r}; one of "
                     f"{METHODS}")
  if method in ("decoder", "decoder_backprop"):
    if decoder is None:
      raise ValueError(f"method {method!r} needs a trained decoder "
                       "(decoder=TrainedDecoder, see train_decoder / "
                       "load_decoder)")
    if tuple(decoder.input_shape) != tuple(input_shape):
      raise ValueError(f"decoder was trained for inputs {decoder.input_shape}"
                       f", not {tuple(input_shape)}")
  if method == "annealing":
    return annealing.reconstruct_by_annealing(
        model, params, layer, targets, key, config.annealing,
        input_shape=input_shape, input_scale=input_scale)
  if method == "backprop":
    return backprop.reconstruct_by_backprop(
        model, params, layer, targets, key, config.backprop,
        input_shape=input_shape)
  if method == "decoder":
    return decoder_lib.reconstruct_by_decoder(
        decoder, model, params, layer, targets, key, config.decoder, switches)
  return decoder_lib.reconstruct_by_decoder_then_backprop(
      decoder, model, params, layer, targets, key, config.decoder,
      config.backprop, switches)
