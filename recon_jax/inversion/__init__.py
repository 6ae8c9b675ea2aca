"""Reconstructing a network's input from one layer's activations (SPEC A3).

The thesis's four methods, each batched over examples (N) and over the K
runs averaged per example (vmap), jitted, each returning
(reconstructions (N, F, T), runs (N, K, F, T), summary dict of (N, K) arrays
with at least 'energy', E of each run's result):
  reconstruct_by_annealing(model, params, layer, targets, key, AnnealingConfig)
  reconstruct_by_backprop(model, params, layer, targets, key, BackpropConfig,
                          init=None)
  reconstruct_by_decoder(decoder, model, params, layer, targets, key,
                         DecoderConfig, switches=None)
  reconstruct_by_decoder_then_backprop(decoder, model, params, layer,
                                       targets, key, DecoderConfig,
                                       BackpropConfig, switches=None)
or one entry point: reconstruct(method, model, params, layer, targets, key,
ReconstructionConfig, decoder=..., switches=...), method in METHODS.
Decoders: train_decoder (stacked, through recon_jax.train.fit) / load_decoder
-> TrainedDecoder; mangled_decoder_check for the switch-unpooling leak.
`layer_targets` computes Y*_n from originals; `make_energy` is E.
"""
from recon_jax.inversion.annealing import AnnealingConfig
from recon_jax.inversion.annealing import estimate_input_rms
from recon_jax.inversion.annealing import reconstruct_by_annealing
from recon_jax.inversion.backprop import BackpropConfig
from recon_jax.inversion.backprop import reconstruct_by_backprop
from recon_jax.inversion.objective import check_targets
from recon_jax.inversion.objective import INPUT_SHAPE
from recon_jax.inversion.objective import layer_targets
from recon_jax.inversion.objective import make_energy
from recon_jax.inversion.decoder import check_decoder_matches
from recon_jax.inversion.decoder import DecoderConfig
from recon_jax.inversion.decoder import DecoderTrainConfig
from recon_jax.inversion.decoder import load_decoder
from recon_jax.inversion.decoder import make_decoder
from recon_jax.inversion.decoder import mangled_decoder_check
from recon_jax.inversion.decoder import reconstruct_by_decoder
from recon_jax.inversion.decoder import reconstruct_by_decoder_then_backprop
from recon_jax.inversion.decoder import save_decoder
from recon_jax.inversion.decoder import train_decoder
from recon_jax.inversion.decoder import TrainedDecoder
from recon_jax.inversion.methods import METHODS
from recon_jax.inversion.methods import reconstruct
from recon_jax.inversion.methods import ReconstructionConfig
