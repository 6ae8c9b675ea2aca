"""The "mangled network" check: switch unpooling leaks the input
(docs/methods.md, A3.3).

Zero the weights and bias of a decoder's first decoding conv layer and
decode anyway: with 'switch' unpooling the outer stages, unpooled at the
switches of the original input, still draw that input; with 'blind'
unpooling the output is the same for every input.
"""
import functools

import jax
import jax.numpy as jnp

from recon_jax import metrics
from recon_jax.inversion import decoder_io
from recon_jax.inversion import decoder_model
from recon_jax.inversion import objective


def mangle(decoder: decoder_io.TrainedDecoder, stage_name: str | None = None):
  """Parameters with one transposed conv's kernel and bias set to 0.

  stage_name None: the innermost conv stage (the first decoding conv layer
  the activations meet, the thesis's "first decoding convolutional layer").

  Returns:
    (mangled parameters, the zeroed stage's name).
  """
  convs = [s.name for s in decoder.module.stages if s.kind == "conv"]
  name = convs[0] if stage_name is None and convs else stage_name
  if name not in convs:
    raise ValueError(f"no conv stage {name!r} in this decoder ({convs})")
  params = dict(decoder.params)
  params[name] = jax.tree.map(jnp.zeros_like, params[name])
  return params, name


def mangled_decoder_check(decoder: decoder_io.TrainedDecoder,
                          model, encoder_params, x,
                          stage_name: str | None = None) -> dict:
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

  Raises:
    ValueError: x not (N >= 2, F, T) of the decoder's input shape or holding
      NaN/Inf, a decoder for another encoder, or no such conv stage.
  """
  rank = objective.example_rank(model)
  if jnp.ndim(x) != rank + 1 or jnp.shape(x)[0] < 2:
    raise ValueError(f"need originals (N >= 2, "
                     f"{'F, T' if rank == 2 else 'T'}), got {jnp.shape(x)}")
  objective.check_input_batch(x, jnp.shape(x)[0], decoder.input_shape,
                              "originals")
  x = jnp.asarray(x, jnp.float32)
  decoder_io.check_decoder_matches(decoder, model, encoder_params)
  views, switches = decoder_model.encoder_views(model, encoder_params, x,
                                                decoder.layer)
  y = views[decoder.module.stages[0].source_layer]
  mangled_params, name = mangle(decoder, stage_name)
  apply = jax.jit(lambda p: decoder.module.apply({"params": p}, y, switches))
  intact = apply(decoder.params)
  mangled = apply(mangled_params)
  shuffled = jnp.roll(x, 1, axis=0)
  spread = float(jnp.mean(jnp.std(mangled, axis=0))
                 / jnp.maximum(jnp.mean(jnp.std(x, axis=0)), 1e-12))
  mxcorr = (metrics.spectrogram_mxcorr if rank == 2 else
            functools.partial(metrics.max_xcorr, batch_ndim=1))
  own = float(jnp.mean(mxcorr(x, mangled)))
  other = float(jnp.mean(mxcorr(shuffled, mangled)))
  return {"stage": name,
          "intact_mxcorr2": float(jnp.mean(mxcorr(x, intact))),
          "mangled_mxcorr2": own, "mangled_mxcorr2_shuffled": other,
          "leak": own - other, "mangled_spread": spread}
