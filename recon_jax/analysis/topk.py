"""Top-k maximally activating clips of every feature map (docs/methods.md, B4).

For each feature map (channel) c of a CNN12 block l, the k clips of a data
set (k = 3 in the paper) whose block output activates it most, ranked as
the authors' deconvnet ranks maps ("most active"): by the mean over time of
|activation| of the block output, the deconvnet's start point (blocks 1-8:
the pooled ReLU output, 9-11: the ReLU output; `CNN12Trace.outputs`).
activation='pre_pool' ranks by the ReLU output before pooling
(`CNN12Trace.activations`), as the authors' top-k notebook does (its
`act<l>` features; it keeps k = 9).

`top_k_clips(model, params, clips, layers, k=3)` streams the data set in
batches: one forward pass per batch to the deepest layer asked, and a
jitted step that merges each batch's scores into a running (C, k) top-k per
layer, so no more than one batch of activations is ever held. Ties are
broken deterministically: the lower clip index first (clips numbered by
their position in the stream from 0), whatever the batch size.
"""
import functools
import operator
from typing import Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from recon_jax.models import cnn12
from recon_jax.ops import checks

# Index of an empty slot of the running top-k (sorts after every clip).
_NO_CLIP = np.iinfo(np.int32).max


class TopK(NamedTuple):
  """The top-k clips of every feature map of one layer.

  indices: int64 (C, k), clip indices per feature map (channel c = feature
    map c + 1 in the paper's numbering), most active first.
  scores: float32 (C, k), their mean |activation| over time.
  """
  indices: np.ndarray
  scores: np.ndarray


def check_layers(model: cnn12.CNN12, layers) -> tuple[int, ...]:
  """An int or a sequence of block numbers -> sorted distinct ints 1..11."""
  if isinstance(layers, (int, np.integer)) and not isinstance(
      layers, (bool, np.bool_)):
    layers = (layers,)
  if not isinstance(layers, Sequence) or isinstance(layers, str) or not len(
      layers):
    raise ValueError(f"layers must be a block number or a non-empty sequence "
                     f"of them (1..{cnn12.NUM_BLOCKS}), got {layers!r}")
  return tuple(sorted({model.check_block(l).number for l in layers}))


def _check_k(k):
  try:
    ok = not isinstance(k, (bool, np.bool_)) and operator.index(k) >= 1
  except TypeError:
    ok = False
  if not ok:
    raise ValueError(f"k must be an integer >= 1, got {k!r}")
  return int(k)


def _batch(x, what):
  """A batch as float32 (B, T), with CNN12's shape checks and a NaN check."""
  shape = np.shape(x)
  if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] != 1):
    raise ValueError(f"{what} must be clips (B, T) or (B, T, 1) of one "
                     f"length, got shape {shape}")
  if shape[1] < cnn12.MIN_INPUT_LENGTH:
    raise ValueError(f"{what}: clips of {shape[1]} samples are shorter than "
                     f"CNN12's receptive field of {cnn12.MIN_INPUT_LENGTH}")
  x = np.asarray(x, np.float32).reshape(shape[:2])
  checks.check_finite(x, what)
  return x


def _initial_state(model, layers, k):
  widths = model.conv_widths
  return tuple((jnp.full((widths[l - 1], k), -jnp.inf, jnp.float32),
                jnp.full((widths[l - 1], k), _NO_CLIP, jnp.int32))
               for l in layers)


ACTIVATIONS = ("output", "pre_pool")


@functools.partial(jax.jit, static_argnames=("model", "layers", "k",
                                             "activation"))
def _merge_batch(params, x, num_valid, offset, state, *, model, layers, k,
                 activation):
  """The running top-k with one more batch merged in.

  x: (B, T) clips numbered offset..offset+B-1; rows >= num_valid are
  padding. state: per layer (scores (C, k), indices (C, k)), best first.
  """
  trace = model.apply({"params": params}, x, block=max(layers))
  rows = jnp.arange(x.shape[0], dtype=jnp.int32)
  valid = rows < num_valid
  ids = jnp.where(valid, offset + rows, _NO_CLIP)
  merged = []
  for layer, (best, best_ids) in zip(layers, state):
    out = (trace.outputs if activation == "output"
           else trace.activations)[layer - 1]  # (B, L, C)
    score = jnp.mean(jnp.abs(out), axis=1, dtype=jnp.float32)  # (B, C)
    score = jnp.where(valid[:, None], score, -jnp.inf).T  # (C, B)
    cand = jnp.concatenate([best, score], axis=1)
    cand_ids = jnp.concatenate(
        [best_ids, jnp.broadcast_to(ids, score.shape)], axis=1)
    # Lexicographic: highest score first, then the lower clip index.
    neg, order_ids = jax.lax.sort((-cand, cand_ids), dimension=1, num_keys=2)
    merged.append((-neg[:, :k], order_ids[:, :k]))
  return tuple(merged)


def top_k_clips(model: cnn12.CNN12, params, clips, layers, k: int = 3, *,
                batch_size: int = 32,
                activation: str = "output") -> dict[int, TopK]:
  """The k most activating clips of every feature map of each layer.

  Args:
    model: the CNN12 (any widths).
    params: its parameters (blocks 1..max(layers) are used).
    clips: the data set, either one array (N, T) or (N, T, 1) of clips of
      one length, cut into batches of `batch_size` (the last one padded, so
      one shape compiles), or an iterable of such arrays, each a batch whose
      clips share a length (batches may differ in length and size; each
      distinct shape compiles once). Clips of different lengths must be
      batched by length by the caller (e.g. cnn12_data.eval_groups);
      indices count clips in the order they come, from 0.
    layers: a block number 1..11 or a sequence of them; all are ranked in
      one pass over the data, one forward pass to the deepest.
    k: clips kept per feature map (3 in the paper).
    batch_size: batch size when `clips` is one array.
    activation: 'output' (the deconvnet's start point, the default) or
      'pre_pool' (the ReLU output before pooling, the authors' notebook).

  Returns:
    {layer: TopK(indices (C, k), scores (C, k))}, most active first; equal
    scores ordered by lower clip index.

  Raises:
    ValueError: a layer outside 1..11, k < 1 or more than the number of
      clips, malformed or non-finite clips, no clips.
  """
  layers = check_layers(model, layers)
  k = _check_k(k)
  if activation not in ACTIVATIONS:
    raise ValueError(f"activation={activation!r}: want one of {ACTIVATIONS}")
  if isinstance(clips, (np.ndarray, jax.Array)):
    if np.ndim(clips) < 1 or not len(clips):
      raise ValueError("top_k_clips got no clips")
    if k > len(clips):
      raise ValueError(f"k={k} is more than the {len(clips)} clips")
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(
        batch_size, (int, np.integer)) or batch_size < 1:
      raise ValueError(f"batch_size must be an integer >= 1, got "
                       f"{batch_size!r}")
    batches = (clips[i:i + batch_size]
               for i in range(0, len(clips), batch_size))
    pad_to = min(batch_size, len(clips))
  elif isinstance(clips, Iterable):
    batches, pad_to = clips, None
  else:
    raise ValueError(f"clips must be an array (N, T) or an iterable of "
                     f"batches, got {type(clips).__name__}")
  state = _initial_state(model, layers, k)
  count = 0
  for number, batch in enumerate(batches):
    x = _batch(batch, f"clips batch {number}")
    n = x.shape[0]
    if pad_to is not None and n < pad_to:
      x = np.concatenate([x, np.zeros((pad_to - n,) + x.shape[1:], x.dtype)])
    if n:
      state = _merge_batch(params, x, np.int32(n), np.int32(count), state,
                           model=model, layers=layers, k=k,
                           activation=activation)
    count += n
  if count == 0:
    raise ValueError("top_k_clips got no clips")
  if k > count:
    raise ValueError(f"k={k} is more than the {count} clips")
  return {layer: TopK(np.asarray(ids).astype(np.int64),
                      np.asarray(scores))
          for layer, (scores, ids) in zip(layers, state)}
