"""CNN12, the raw-waveform encoder of the sonification paper (Fig. A.1).

Eleven blocks conv -> ReLU (-> max-pool 2/2 for blocks 1-8), then the mean
over time, dropout 0.4 and Dense(2048 -> 512). Convolutions are stride 1,
no padding ('VALID'); pooling is floor mode. Blocks are numbered 1..11 as in
the paper. Channels-last: a batch of waveforms is (N, T, 1) (or (N, T)).

Parameter names follow the PyTorch module of Fig. A.1 ('conv1'..'conv11',
'fc10'), see `torch_interop`. Initialisation follows the authors' code:
convolutions Kaiming-normal with fan-in and linear gain (std 1/sqrt(fan_in)),
fc10 N(0, 0.01), biases zero.

The output of a block, the point where a deconvnet starts, is its ReLU
output after the pool when the block pools (1-8) and the ReLU output for
9-11 (docs/methods.md, B3). `apply(..., block=l)` returns a `CNN12Trace` of
blocks 1..l: every block's output, its ReLU output before pooling, every pool's
switches and the pre-pool lengths, from one forward pass.
"""
import dataclasses
import functools
import operator
from typing import Any, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from recon_jax import ops
from recon_jax.models import invertible
from recon_jax.ops import checks

KERNELS = (7, 7, 5, 5, 5, 3, 3, 3, 3, 3, 3)
WIDTHS = (64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024, 2048)
NUM_BLOCKS = len(KERNELS)
NUM_POOLED_BLOCKS = 8
POOL = 2  # window and stride of every pool
EMBEDDING_DIM = 512
DROPOUT_RATE = 0.4
# Pool window (= stride) of each block, None where the block does not pool.
POOLS = (POOL,) * NUM_POOLED_BLOCKS + (None,) * (NUM_BLOCKS - NUM_POOLED_BLOCKS)

_CONV_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
_FC_INIT = nn.initializers.normal(0.01)


@dataclasses.dataclass(frozen=True)
class ConvBlock:
  """One conv -> ReLU (-> pool) block.

  number: paper block number (1..11). name: its parameter collection name
  ('conv<number>'). kernel: conv kernel length. in_features / features:
  input and output channels. pool: window (= stride) of its max-pool, or
  None if the block does not pool.
  """
  number: int
  name: str
  kernel: int
  in_features: int
  features: int
  pool: int | None


def min_input_length(kernels: Sequence[int] = KERNELS,
                     pools: Sequence[int | None] = POOLS) -> int:
  """Shortest input giving one output sample after the last block.

  Walks back from length 1: a VALID conv of kernel k needs L + k - 1 input
  samples for L outputs, a floor-mode pool (window = stride = p) needs p*L.
  For CNN12 this is 2,370, which is also the receptive field of one unit of
  block 11 (`receptive_field`).
  """
  length = 1
  for kernel, pool in reversed(list(zip(kernels, pools))):
    if pool:
      length = (length - 1) * pool + pool
    length += kernel - 1
  return length


def receptive_field(kernels: Sequence[int] = KERNELS,
                    pools: Sequence[int | None] = POOLS) -> int:
  """Input samples that one unit of the last block sees.

  r grows by (k - 1) * j for a conv and by (p - 1) * j for a pool, where j is
  the product of the strides before it.
  """
  r, jump = 1, 1
  for kernel, pool in zip(kernels, pools):
    r += (kernel - 1) * jump
    if pool:
      r += (pool - 1) * jump
      jump *= pool
  return r


MIN_INPUT_LENGTH = min_input_length()  # 2370


def block_output_lengths(length: int) -> tuple[int, ...]:
  """Time lengths of the 11 block outputs for an input of `length` samples."""
  out = []
  for kernel, pool in zip(KERNELS, POOLS):
    length = length - kernel + 1
    if pool:
      length = (length - pool) // pool + 1
    out.append(length)
  return tuple(out)


@flax.struct.dataclass
class CNN12Trace:
  """What one forward pass through blocks 1..`block` records.

  outputs: tuple of the block outputs, (N, L_b, C_b) for b = 1..block: the
    ReLU output, pooled for blocks 1-8 (the deconvnet's start points).
  activations: tuple of the ReLU outputs before pooling, (N, L'_b, C_b); for
    blocks 9-11 the same arrays as `outputs`.
  switches: tuple, one per pooled block run (blocks 1..min(block, 8)): int32
    (N, L_b, C_b), the index into L'_b of each pooled maximum (first on ties).
  pre_pool_lengths: tuple of ints L'_b, one per entry of `switches` (static).
  input_length: T of the input (static).
  """
  outputs: tuple
  activations: tuple
  switches: tuple
  pre_pool_lengths: tuple = flax.struct.field(pytree_node=False)
  input_length: int = flax.struct.field(pytree_node=False)

  @property
  def block(self) -> int:
    """The last block recorded."""
    return len(self.outputs)

  @property
  def output(self):
    """Output of the last block recorded, (N, L, C)."""
    return self.outputs[-1]


class CNN12(nn.Module):
  """CNN12 (CNN12_x2 with width_multiplier=2), Fig. A.1 of the paper.

  width_multiplier: multiplies every conv width (positive integer).
  widths: optional 11 conv widths overriding WIDTHS * width_multiplier (for
    narrow test nets).
  embedding_dim: outputs of fc10 (512 in the paper).
  dropout_rate: dropout before fc10.
  dtype: computation dtype (None: from inputs and params); parameters are
    float32.
  """
  width_multiplier: int = 1
  widths: Sequence[int] | None = None
  embedding_dim: int = EMBEDDING_DIM
  dropout_rate: float = DROPOUT_RATE
  dtype: Any = None

  def __post_init__(self):
    wm = self.width_multiplier
    if isinstance(wm, (bool, np.bool_)) or not isinstance(
        wm, (int, np.integer)) or wm < 1:
      raise ValueError(f"CNN12 width_multiplier must be an integer >= 1, got "
                       f"{wm!r}")
    if self.widths is not None:
      widths = tuple(self.widths)
      if len(widths) != NUM_BLOCKS or any(
          isinstance(w, (bool, np.bool_)) or not isinstance(
              w, (int, np.integer)) or w < 1 for w in widths):
        raise ValueError(f"CNN12 widths must be {NUM_BLOCKS} integers >= 1, "
                         f"got {self.widths!r}")
      # A tuple keeps the module hashable (jit static arguments).
      object.__setattr__(self, "widths", tuple(int(w) for w in widths))
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"CNN12 dropout_rate must be in [0, 1), got "
                       f"{self.dropout_rate!r}")
    if self.embedding_dim < 1:
      raise ValueError(f"CNN12 embedding_dim must be >= 1, got "
                       f"{self.embedding_dim!r}")
    super().__post_init__()

  @property
  def conv_widths(self) -> tuple[int, ...]:
    if self.widths is not None:
      return tuple(int(w) for w in self.widths)
    return tuple(w * int(self.width_multiplier) for w in WIDTHS)

  @property
  def blocks(self) -> tuple[ConvBlock, ...]:
    """The 11 blocks, numbered from 1 as in the paper."""
    widths = self.conv_widths
    ins = (1,) + widths[:-1]
    return tuple(
        ConvBlock(i + 1, f"conv{i + 1}", KERNELS[i], ins[i], widths[i],
                  POOLS[i]) for i in range(NUM_BLOCKS))

  def check_block(self, block) -> ConvBlock:
    """The ConvBlock numbered `block`; ValueError naming 1..11 if none."""
    try:
      number = None if isinstance(block, (bool, np.bool_)) else operator.index(
          block)
    except TypeError:
      number = None
    if number is None or not 1 <= number <= NUM_BLOCKS:
      raise ValueError(f"block {block!r} does not exist: CNN12 has blocks "
                       f"1..{NUM_BLOCKS} (conv-relu-pool for 1..8, conv-relu "
                       f"for 9..11)")
    return self.blocks[number - 1]

  def invertible(self) -> invertible.InvertibleNet:
    """The network as the inversion protocol describes it
    (recon_jax.models.invertible): layers are the blocks 1..11 (a block's
    activation is its output: pooled for 1-8, the ReLU for 9-11); then the
    temporal mean and fc10 (the whole net, layer None). Waveform examples
    (T,). Dropout is left out (evaluation mode)."""
    return _describe(self)

  @nn.compact
  def __call__(self, x, *, train: bool = False, block: int | None = None):
    """Embeds waveforms, or runs blocks 1..`block` and records them.

    Args:
      x: (N, T) or (N, T, 1) waveforms (scaled to unit peak), T >= 2370.
      train: enables dropout (needs a 'dropout' rng).
      block: paper block number 1..11 to stop at; None runs to the embedding.

    Returns:
      The (N, embedding_dim) embedding, or with `block` a CNN12Trace of
      blocks 1..block.
    """
    stop = NUM_BLOCKS if block is None else self.check_block(block).number
    x = _check_input(x)
    outputs, activations, switches, lengths = [], [], [], []
    h = x
    for spec in self.blocks[:stop]:
      h = nn.Conv(spec.features, (spec.kernel,), padding="VALID",
                  kernel_init=_CONV_INIT, dtype=self.dtype, name=spec.name)(h)
      h = nn.relu(h)
      activations.append(h)
      if spec.pool:
        lengths.append(h.shape[-2])
        h, sw = ops.max_pool_with_argmax(h, spec.pool, spec.pool)
        switches.append(sw)
      outputs.append(h)
    if block is not None:
      return CNN12Trace(outputs=tuple(outputs), activations=tuple(activations),
                        switches=tuple(switches),
                        pre_pool_lengths=tuple(lengths),
                        input_length=x.shape[-2])
    h = jnp.mean(h, axis=-2, dtype=jnp.float32).astype(h.dtype)
    h = nn.Dropout(self.dropout_rate, deterministic=not train,
                   name="drop10")(h)
    return nn.Dense(self.embedding_dim, kernel_init=_FC_INIT, dtype=self.dtype,
                    name="fc10")(h)


@functools.lru_cache(maxsize=64)
def _describe(model: CNN12) -> invertible.InvertibleNet:
  op_list, ends, names = [], [], []
  for spec in model.blocks:
    op_list += [invertible.conv(spec.features, spec.kernel, name=spec.name),
                invertible.relu(f"relu{spec.number}")]
    if spec.pool:
      op_list.append(invertible.max_pool(spec.pool, spec.pool,
                                         name=f"pool{spec.number}"))
    ends.append(len(op_list))
    names.append("-".join(op.name for op in op_list[ends[-2] if len(ends) > 1
                                                    else 0:]))
  op_list += [invertible.temporal_mean("mean"),
              invertible.dense(model.embedding_dim, name="fc10")]
  return invertible.InvertibleNet(tuple(op_list), layer_ends=tuple(ends),
                                  layer_names=tuple(names), name="CNN12",
                                  unit="block", waveform=True,
                                  dtype=model.dtype)


def _check_input(x):
  """(N, T) or (N, T, 1) float waveforms -> (N, T, 1); clear errors else."""
  shape = np.shape(x)
  if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] != 1):
    raise ValueError(f"CNN12 expects waveforms (N, T) or (N, T, 1), got shape "
                     f"{shape}")
  if shape[1] < MIN_INPUT_LENGTH:
    raise ValueError(f"CNN12 input of {shape[1]} samples is shorter than its "
                     f"receptive field of {MIN_INPUT_LENGTH} samples "
                     f"({MIN_INPUT_LENGTH / 8000:.4f} s at 8 kHz); pad or tile "
                     "the clip")
  checks.check_finite(x, "CNN12 input")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  return x.reshape(shape[:2] + (1,))


def num_params(model: CNN12) -> int:
  """Parameter count from shapes only (jax.eval_shape, nothing compiled)."""
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0),
                         jnp.zeros((1, MIN_INPUT_LENGTH), jnp.float32)))
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)))
