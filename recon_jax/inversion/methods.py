"""One entry point for the thesis's four reconstruction methods
(docs/methods.md, A3).

    rec, runs, summary = reconstruct(method, model, params, layer, targets,
                                     key, config, decoder=..., switches=...,
                                     input_shape=inputs.shape[1:])

method is one of METHODS; config a ReconstructionConfig holding every
method's settings (each a frozen dataclass; an ml_collections config maps
onto it with `ReconstructionConfig.from_dict`, i.e. config_from_dict). All
methods return (reconstructions (N, F, T), runs (N, K, F, T), summary: dict
of (N, K) arrays, always with 'energy' (E of each run's result) and
'run_diverged', and the per-example 'diverged' (N,)).
"""
import dataclasses

import jax

from recon_jax.inversion import annealing
from recon_jax.inversion import backprop
from recon_jax.inversion import config as config_lib
from recon_jax.inversion import decoder_io
from recon_jax.inversion import decoder_methods

AnnealingConfig = annealing.AnnealingConfig
BackpropConfig = backprop.BackpropConfig
DecoderConfig = decoder_methods.DecoderConfig

METHODS = ("annealing", "backprop", "decoder", "decoder_backprop")
_SECTIONS = {"annealing": AnnealingConfig, "backprop": BackpropConfig,
             "decoder": DecoderConfig}


@dataclasses.dataclass(frozen=True)
class ReconstructionConfig(config_lib.Settings):
  """Settings of every method (see each config's docstring)."""
  annealing: AnnealingConfig = AnnealingConfig()
  backprop: BackpropConfig = BackpropConfig()
  decoder: DecoderConfig = DecoderConfig()

  def __post_init__(self):
    for name, cls in _SECTIONS.items():
      value = getattr(self, name)
      if not isinstance(value, cls):
        raise ValueError(f"ReconstructionConfig.{name} must be a "
                         f"{cls.__name__}, got {type(value).__name__}")

  @classmethod
  def from_dict(cls, d) -> "ReconstructionConfig":
    """From a mapping {'annealing': {...}, 'backprop': {...}, 'decoder':
    {...}} (missing sections and fields keep their defaults; unknown ones
    are refused, named). The same as config_from_dict(cls, d)."""
    return config_lib.config_from_dict(cls, d)


def reconstruct(method: str, model, params, layer: int,
                targets, key: jax.Array,
                config: ReconstructionConfig = ReconstructionConfig(), *,
                decoder: decoder_io.TrainedDecoder | None = None,
                switches=None, input_shape=None, input_scale=None):
  """Reconstructs inputs (N, F, T) from layer `layer`'s activations.

  Args:
    method: 'annealing', 'backprop', 'decoder' or 'decoder_backprop'.
    model, params: the encoder whose activations `targets` are: any network
      of the inversion protocol (a PhoneCNN, a CNN12 on waveforms, a
      DeclaredNet).
    layer: thesis layer number n.
    targets: Y*_n (N, *activation of layer n).
    key: PRNG key of the method's randomness (starts, noise).
    config: ReconstructionConfig.
    decoder: the TrainedDecoder for (model, params, layer); the decoder
      methods only.
    switches: the encoder's switches of the originals, for a 'switch'
      unpooling decoder only.
    input_shape: one example's shape, (F, T) ((T,) for waveforms): the
      originals' shape[1:].
      Needed by the search methods; the decoder methods may leave it out
      (then the decoder's), and if given it must equal the decoder's.
    input_scale: annealing only: the inputs' RMS, the unit of the neighbour
      radius (None: estimated from the targets).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary dict).

  Raises:
    ValueError: an unknown method, a missing or mismatched decoder, a
      missing or mismatched input shape, or bad targets (see each method).
  """
  if method not in METHODS:
    raise ValueError(f"unknown reconstruction method {method!r}; one of "
                     f"{METHODS}")
  if not isinstance(config, ReconstructionConfig):
    raise ValueError(f"config must be a ReconstructionConfig, got "
                     f"{type(config).__name__} (see "
                     "ReconstructionConfig.from_dict)")
  if method in ("decoder", "decoder_backprop") and decoder is None:
    raise ValueError(f"method {method!r} needs a trained decoder "
                     "(decoder=TrainedDecoder, see train_decoder / "
                     "load_decoder)")
  if method == "annealing":
    return annealing.reconstruct_by_annealing(
        model, params, layer, targets, key, config.annealing,
        input_shape=input_shape, input_scale=input_scale)
  if method == "backprop":
    return backprop.reconstruct_by_backprop(
        model, params, layer, targets, key, config.backprop,
        input_shape=input_shape)
  if method == "decoder":
    return decoder_methods.reconstruct_by_decoder(
        decoder, model, params, layer, targets, key, config.decoder, switches,
        input_shape)
  return decoder_methods.reconstruct_by_decoder_then_backprop(
      decoder, model, params, layer, targets, key, config.decoder,
      config.backprop, switches, input_shape)
