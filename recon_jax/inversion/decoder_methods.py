"""Reconstruction by a trained decoder, and decoder-then-backprop
(docs/methods.md, A3.3-4; thesis 6.5-6.7)."""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from recon_jax.inversion import backprop
from recon_jax.inversion import config as config_lib
from recon_jax.inversion import decoder_io
from recon_jax.inversion import decoder_model
from recon_jax.inversion import objective


@dataclasses.dataclass(frozen=True)
class DecoderConfig(config_lib.Settings):
  """Decoding Y*_n with K noisy draws (thesis 6.7).

  num_draws: K decodings averaged per example, >= 1.
  noise_scale: std of the Gaussian noise added to Y*_n, >= 0, relative to
    each example's RMS activation if relative_noise else absolute. Draws
    with noise_scale 0 are all the same, plain decoding.
  relative_noise: see noise_scale.
  weight_decay: lambda of the E reported in the summary, >= 0.
  """
  num_draws: int = 4
  noise_scale: float = 0.01
  relative_noise: bool = True
  weight_decay: float = 1e-3

  def __post_init__(self):
    self.check_int("num_draws", 1)
    self.check_float("noise_scale", 0.0)
    self.check_bool("relative_noise")
    self.check_float("weight_decay", 0.0)


def reconstruct_by_decoder(decoder: decoder_io.TrainedDecoder,
                           model, encoder_params,
                           layer: int, targets, key: jax.Array,
                           config: DecoderConfig = DecoderConfig(),
                           switches=None, input_shape=None):
  """X = D_n(Y*_n + noise), K draws averaged.

  Args:
    decoder: a TrainedDecoder for (model, encoder_params, layer).
    model, encoder_params: the encoder (checked against the decoder, and used
      for the summary's E).
    layer: n.
    targets: Y*_n (N, *activation).
    key: PRNG key of the noise draws.
    config: DecoderConfig.
    switches: 'switch' decoders only: {pool layer: int (N, L_out, C)} of the
      original inputs.
    input_shape: (F, T); None takes the decoder's. Given, it must equal the
      decoder's.

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary {'energy': E of
     each draw (N, K), 'run_diverged' (N, K): the decoding holds NaN/Inf,
     'diverged' (N,): every draw of the example did (reconstruction zeros)}).

  Raises:
    ValueError: a decoder for another encoder, layer or input shape, bad
      targets, or missing or bad switches.
  """
  input_shape = objective.resolve_input_shape(
      input_shape, decoder_shape=decoder.input_shape,
      rank=objective.example_rank(model))
  decoder_io.check_decoder_matches(decoder, model, encoder_params, layer)
  targets = objective.check_problem(model, encoder_params, layer, targets,
                                    input_shape)
  n, k = targets.shape[0], config.num_draws
  switches = decoder_model.check_switches(decoder.module, switches, n)
  runs = _decode_draws(decoder.module, decoder.params, targets, switches, key,
                       k, config.noise_scale, config.relative_noise)
  energy = objective.make_runs_energy(model, layer, config.weight_decay)(
      encoder_params, runs, targets)
  run_diverged = ~objective.runs_finite(runs) | ~jnp.isfinite(energy)
  return objective.run_summary({"energy": energy}, run_diverged, runs)


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
    decoder: decoder_io.TrainedDecoder, model,
    encoder_params, layer: int, targets, key: jax.Array,
    decoder_config: DecoderConfig = DecoderConfig(),
    backprop_config: backprop.BackpropConfig = backprop.BackpropConfig(),
    switches=None, input_shape=None):
  """X = B(X*, D_n(Y*_n)) (thesis 6.6): backprop started at each decoding.

  The K = decoder_config.num_draws noisy decodings start K backprop runs
  (backprop_config.num_starts is overridden by K), averaged over the runs
  that did not diverge. A decoding that holds NaN/Inf gives a diverged run
  (it is not an error: the decoder, not the caller, made it).

  Returns:
    (reconstructions (N, F, T), runs (N, K, F, T), summary: backprop's
     (N, K) {steps, energy, bold, eta, converged, run_diverged} plus
     'decoder_energy', E of the decodings the runs started from, and
     'diverged' (N,)).
  """
  k_dec, _ = jax.random.split(key)
  _, starts, dec_summary = reconstruct_by_decoder(
      decoder, model, encoder_params, layer, targets, k_dec, decoder_config,
      switches, input_shape)
  targets = jnp.asarray(targets, jnp.float32)
  config = backprop_config.replace(num_starts=decoder_config.num_draws)
  _, runs, summary = backprop.run_backprop(model, encoder_params, layer,
                                           targets, starts, config)
  run_diverged = summary["run_diverged"] | dec_summary["run_diverged"]
  summary = {**summary, "converged": summary["converged"] & ~run_diverged,
             "decoder_energy": dec_summary["energy"]}
  return objective.run_summary(summary, run_diverged, runs)
