"""A trained decoder and what it was trained against: save, load, check.

A decoder directory holds decoder.msgpack (the parameters) and decoder.json
(layer, unpooling, stage_relu, the encoder's config, a fingerprint of the
encoder's parameters, the input shape and the training settings). Both are
written atomically (temporary file + rename), the parameters first, so a
directory with a decoder.json holds a complete decoder. Loading checks the
decoder against the encoder it is meant for and raises ValueError naming
any mismatch.
"""
import dataclasses
import os
from typing import Any

import flax
import jax
import numpy as np

from recon_jax import provenance
from recon_jax.inversion import decoder_model
from recon_jax.inversion import objective
from recon_jax.models import invertible

PARAMS_FILE = "decoder.msgpack"
META_FILE = "decoder.json"
_META_FIELDS = ("layer", "unpooling", "stage_relu", "encoder",
                "encoder_fingerprint", "input_shape", "train_config")


def encoder_config(model) -> dict:
  """The fields of `model` that decide its activations (JSON-able).

  A Flax module whose settings are plain numbers, strings and sequences of
  them (the phone CNN, CNN12) gives those settings (as decoders saved
  before the inversion protocol recorded them); any other network (an
  InvertibleNet, a DeclaredNet) gives its description's ops and layers.
  """
  if dataclasses.is_dataclass(model) and not isinstance(
      model, invertible.InvertibleNet):
    config = {f.name: (list(v) if isinstance(v, (tuple, list)) else v)
              for f in dataclasses.fields(model)
              if f.name not in ("parent", "name", "dropout_rate")
              for v in [getattr(model, f.name)]}
    if all(_plain(v) for v in config.values()):
      return config
  net = invertible.describe(model)
  return {"network": net.name, "waveform": net.waveform,
          "layer_ends": list(net.layer_ends),
          "ops": [{k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(op).items()}
                  for op in net.ops]}


def _plain(value) -> bool:
  if isinstance(value, (list, tuple)):
    return all(_plain(v) for v in value)
  return value is None or isinstance(value, (bool, int, float, str))


def params_fingerprint(params) -> str:
  """provenance.fingerprint_arrays of a parameter tree as float32 NumPy in
  plain dicts (so a FrozenDict, a device array or a restored checkpoint of
  the same values give the same fingerprint)."""
  plain = flax.core.unfreeze(params)
  return provenance.fingerprint_arrays(
      jax.tree.map(lambda a: np.asarray(a, np.float32), plain))


@dataclasses.dataclass
class TrainedDecoder:
  """A decoder, its parameters and what it was trained against.

  train_config: the DecoderTrainConfig fields it was trained with (a dict;
  None when unknown).
  """
  module: decoder_model.Decoder
  params: Any
  layer: int
  unpooling: str
  encoder: dict  # encoder_config of the encoder
  encoder_fingerprint: str
  input_shape: tuple
  train_config: dict | None = None

  def metadata(self) -> dict:
    return {"layer": self.layer, "unpooling": self.unpooling,
            "stage_relu": self.module.stage_relu,
            "encoder": self.encoder,
            "encoder_fingerprint": self.encoder_fingerprint,
            "input_shape": list(self.input_shape),
            "train_config": self.train_config}


def check_decoder_matches(decoder: TrainedDecoder, model,
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


def decoder_exists(directory: str) -> bool:
  """True if `directory` holds a saved decoder (its decoder.json)."""
  return os.path.isfile(os.path.join(directory, META_FILE))


def save_decoder(directory: str, decoder: TrainedDecoder):
  """Writes decoder.msgpack (parameters) then decoder.json, each atomically."""
  params = jax.tree.map(np.asarray, flax.core.unfreeze(decoder.params))
  provenance.write_bytes_atomic(os.path.join(directory, PARAMS_FILE),
                                flax.serialization.msgpack_serialize(params))
  provenance.write_json_atomic(os.path.join(directory, META_FILE),
                               decoder.metadata())


def load_decoder(directory: str, model, encoder_params,
                 layer: int | None = None) -> TrainedDecoder:
  """Loads a saved decoder and checks it matches (model, encoder_params, layer).

  Raises:
    FileNotFoundError: no decoder there (no decoder.json), or its
      parameters file is missing.
    provenance.CorruptFileError: decoder.json or decoder.msgpack is damaged
      or incomplete (the file named).
    ValueError: it was trained for another layer, encoder config or encoder
      parameters (encoder_params None skips the parameter check).
  """
  meta_path = os.path.join(directory, META_FILE)
  params_path = os.path.join(directory, PARAMS_FILE)
  if not os.path.isfile(meta_path):
    raise FileNotFoundError(f"no decoder in {directory} (missing {META_FILE})")
  meta = provenance.read_json(meta_path)
  missing = [f for f in _META_FIELDS if not isinstance(meta, dict)
             or f not in meta]
  if missing:
    raise provenance.CorruptFileError(
        f"{meta_path} lacks {missing}; delete the directory to retrain the "
        "decoder")
  if not os.path.isfile(params_path):
    raise FileNotFoundError(f"decoder in {directory} has no {PARAMS_FILE}")
  try:
    with open(params_path, "rb") as f:
      params = flax.serialization.msgpack_restore(f.read())
  except Exception as e:  # msgpack raises several types on damaged bytes.
    raise provenance.CorruptFileError(
        f"{params_path} is damaged ({type(e).__name__}: {e}); delete the "
        "directory to retrain the decoder") from None
  input_shape = objective.check_input_shape(
      meta["input_shape"], f"{meta_path} input_shape",
      rank=objective.example_rank(model))
  decoder = TrainedDecoder(None, params, meta["layer"], meta["unpooling"],
                           meta["encoder"], meta["encoder_fingerprint"],
                           input_shape, meta["train_config"])
  check_decoder_matches(decoder, model, encoder_params, layer)
  decoder.module = decoder_model.make_decoder(
      model, meta["layer"], meta["unpooling"], input_shape,
      meta["stage_relu"])
  _check_params_shapes(decoder, model, params_path)
  return decoder


def _check_params_shapes(decoder: TrainedDecoder, model, params_path: str):
  want = decoder_model.param_shapes(decoder.module, model, decoder.layer,
                                    decoder.input_shape)
  got = objective.shapes_by_path(decoder.params)
  if got != want:
    diff = [f"{k}: has {got.get(k, 'nothing')}, needs {want.get(k, 'nothing')}"
            for k in sorted(set(want) | set(got)) if got.get(k) != want.get(k)]
    raise provenance.CorruptFileError(
        f"{params_path} does not hold this decoder's parameters "
        f"({'; '.join(diff[:4])}); delete the directory to retrain it")
