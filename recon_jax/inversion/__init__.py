"""Reconstructing a network's input from one layer's activations
(docs/methods.md, A3).

The thesis's four methods, each batched over examples (N) and over the K
runs averaged per example (vmap), jitted, each returning
(reconstructions (N, F, T), runs (N, K, F, T), summary dict of (N, K) arrays
with at least 'energy' (E of each run's result) and 'run_diverged', plus the
per-example 'diverged' (N,): every run of that example went NaN/Inf; its
reconstruction is then zeros and must not be scored). Diverged runs are left
out of an example's average and never count as converged.
  reconstruct_by_annealing(model, params, layer, targets, key, AnnealingConfig,
                           init=None, input_shape=..., input_scale=None)
  reconstruct_by_backprop(model, params, layer, targets, key, BackpropConfig,
                          init=None, input_shape=...)
  reconstruct_by_decoder(decoder, model, params, layer, targets, key,
                         DecoderConfig, switches=None, input_shape=None)
  reconstruct_by_decoder_then_backprop(decoder, model, params, layer,
                                       targets, key, DecoderConfig,
                                       BackpropConfig, switches=None,
                                       input_shape=None)
or one entry point: reconstruct(method, model, params, layer, targets, key,
ReconstructionConfig, decoder=..., switches=..., input_shape=...), method in
METHODS. The input shape (F, T) comes from the data (inputs.shape[1:]), a
decoder or a start, never from a constant.
Networks: the code reads a model only through the inversion protocol
(recon_jax.models.invertible): annealing and backprop (and layer_targets,
make_energy) take a PhoneCNN (examples (F, T)), a CNN12 (waveforms (T,):
reconstructions (N, T), runs (N, K, T)) or a user's DeclaredNet /
InvertibleNet; so do the stacked decoders (train_decoder builds one stage
per conv or dense unit of the network's description).
Settings: frozen dataclasses that refuse impossible values when built;
`config_from_dict(cls, mapping)` makes any of them from a config mapping,
refusing unknown fields.
Decoders: train_decoder (stacked, through recon_jax.train.fit; batches from
array_batches) / load_decoder / decoder_exists -> TrainedDecoder;
mangled_decoder_check for the switch-unpooling leak.
`layer_targets` computes Y*_n from originals; `make_energy` is E.
Sonification (the sonification paper's deconvnet, deconvnet.py;
docs/methods.md, B3):
sonify(model, params, x, layer, feature_map=None, chunk_size=None) for any
network of the inversion protocol (recon_jax.models.invertible: CNN12 on
waveforms x (T,) or (N, T), the phone CNN on spectrograms (F, T) or
(N, F, T), a user's DeclaredNet / InvertibleNet); the result has the
input's shape; sonify_pairs (one map per example, (N, *example));
silent_maps (maps with zero activation) and map_activity (mean |activation|,
the 'most active' ranking) of a layer.
"""
from recon_jax.inversion.annealing import AnnealingConfig
from recon_jax.inversion.annealing import estimate_input_rms
from recon_jax.inversion.annealing import reconstruct_by_annealing
from recon_jax.inversion.backprop import BackpropConfig
from recon_jax.inversion.backprop import reconstruct_by_backprop
from recon_jax.inversion.config import config_from_dict
from recon_jax.inversion.decoder_io import check_decoder_matches
from recon_jax.inversion.decoder_io import decoder_exists
from recon_jax.inversion.decoder_io import load_decoder
from recon_jax.inversion.decoder_io import save_decoder
from recon_jax.inversion.decoder_io import TrainedDecoder
from recon_jax.inversion.decoder_methods import DecoderConfig
from recon_jax.inversion.decoder_methods import reconstruct_by_decoder
from recon_jax.inversion.decoder_methods import reconstruct_by_decoder_then_backprop
from recon_jax.inversion.decoder_model import make_decoder
from recon_jax.inversion.decoder_train import array_batches
from recon_jax.inversion.decoder_train import DecoderTrainConfig
from recon_jax.inversion.decoder_train import train_decoder
from recon_jax.inversion.mangled import mangled_decoder_check
from recon_jax.inversion.methods import METHODS
from recon_jax.inversion.methods import reconstruct
from recon_jax.inversion.methods import ReconstructionConfig
from recon_jax.inversion.objective import check_targets
from recon_jax.inversion.objective import curvature
from recon_jax.inversion.objective import layer_targets
from recon_jax.inversion.objective import make_energy
from recon_jax.inversion.deconvnet import map_activity
from recon_jax.inversion.deconvnet import silent_maps
from recon_jax.inversion.deconvnet import sonify
from recon_jax.inversion.deconvnet import sonify_pairs
