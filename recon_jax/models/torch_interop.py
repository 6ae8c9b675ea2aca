"""CNN12 weights to and from the PyTorch names of Fig. A.1.

PyTorch (the paper's Encoder)            CNN12 params
  features.conv<b>.weight (out, in, k)   conv<b>/kernel (k, in, out)
  features.conv<b>.bias   (out,)         conv<b>/bias   (out,)
  fc1.fc10.weight (512, 2048*wm)         fc10/kernel    (2048*wm, 512)
  fc1.fc10.bias   (512,)                 fc10/bias      (512,)
Both nn.Conv1d and flax's Conv are cross-correlations, so kernels are only
transposed, never flipped. torch is not imported: tensors are read through
`.detach().cpu().numpy()`.
"""
from typing import Any, Mapping

import numpy as np

from recon_jax.models import cnn12 as cnn12_lib


def _torch_shapes(model: cnn12_lib.CNN12) -> dict[str, tuple[int, ...]]:
  """Every PyTorch entry name of `model` and its shape, in state_dict order."""
  shapes = {}
  for b in model.blocks:
    shapes[f"features.{b.name}.weight"] = (b.features, b.in_features, b.kernel)
    shapes[f"features.{b.name}.bias"] = (b.features,)
  last = model.blocks[-1].features
  shapes["fc1.fc10.weight"] = (model.embedding_dim, last)
  shapes["fc1.fc10.bias"] = (model.embedding_dim,)
  return shapes


def _to_numpy(value, name: str) -> np.ndarray:
  """A NumPy copy of a NumPy array or a (duck-typed) torch tensor."""
  if hasattr(value, "detach"):
    value = value.detach().cpu()
    try:
      value = value.numpy()
    except TypeError:  # bfloat16 and other dtypes NumPy lacks
      value = value.float().numpy()
  arr = np.array(value)
  if not np.issubdtype(arr.dtype, np.floating):
    raise ValueError(f"torch weight {name!r} must be floating point, got "
                     f"dtype {arr.dtype}")
  return arr


def cnn12_params_from_torch(state_dict: Mapping[str, Any],
                            width_multiplier: int = 1, *,
                            widths=None, embedding_dim: int = 512,
                            prefix: str = "") -> dict:
  """CNN12 params from a PyTorch state dict with the names of Fig. A.1.

  Args:
    state_dict: name -> NumPy array or torch tensor.
    width_multiplier, widths, embedding_dim: the CNN12 the weights are for
      (fields of CNN12); every shape is checked against it.
    prefix: read only the entries whose names start with it (e.g.
      'feature_extractor.' in the authors' contrastive checkpoints) and drop
      it; the others are ignored. With '' (default) every entry must be a
      CNN12 weight.

  Returns:
    The params dict for `CNN12(...).apply({"params": params}, x)` (NumPy
    arrays, dtypes kept).

  Raises:
    ValueError naming a missing, unexpected or wrong-shaped entry.
  """
  model = cnn12_lib.CNN12(width_multiplier=width_multiplier, widths=widths,
                          embedding_dim=embedding_dim)
  expected = _torch_shapes(model)
  if not isinstance(state_dict, Mapping):
    raise ValueError(f"state_dict must be a mapping of names to weights, got "
                     f"{type(state_dict).__name__}")
  entries = {k[len(prefix):]: v for k, v in state_dict.items()
             if k.startswith(prefix)}
  missing = [prefix + k for k in expected if k not in entries]
  if missing:
    raise ValueError(f"torch state dict lacks {missing} (expected shapes "
                     f"{[expected[k[len(prefix):]] for k in missing]}) for "
                     f"CNN12 with widths {model.conv_widths}")
  unexpected = [prefix + k for k in entries if k not in expected]
  if unexpected:
    raise ValueError(f"torch state dict has unexpected entries {unexpected}; "
                     f"CNN12 has only {list(expected)}")
  arrays = {}
  for name, shape in expected.items():
    arr = _to_numpy(entries[name], prefix + name)
    if arr.shape != shape:
      raise ValueError(f"torch weight {prefix + name!r} has shape {arr.shape}, "
                       f"expected {shape} for CNN12 with widths "
                       f"{model.conv_widths}")
    arrays[name] = arr
  params = {}
  for b in model.blocks:
    params[b.name] = {
        "kernel": np.ascontiguousarray(
            arrays[f"features.{b.name}.weight"].transpose(2, 1, 0)),
        "bias": arrays[f"features.{b.name}.bias"],
    }
  params["fc10"] = {
      "kernel": np.ascontiguousarray(arrays["fc1.fc10.weight"].T),
      "bias": arrays["fc1.fc10.bias"],
  }
  return params


def cnn12_params_to_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The inverse of cnn12_params_from_torch: a state dict of NumPy arrays.

  Args:
    params: CNN12 params ({'conv1': {'kernel', 'bias'}, ..., 'fc10': ...}),
      or the variables dict {'params': ...} holding them.

  Returns:
    name -> NumPy array, in the encoder's state_dict order; load it with
    `module.load_state_dict({k: torch.from_numpy(v) for k, v in d.items()})`.

  Raises:
    ValueError naming a missing, unexpected or wrong-shaped entry.
  """
  if isinstance(params, Mapping) and set(params) == {"params"}:
    params = params["params"]
  if not isinstance(params, Mapping):
    raise ValueError(f"params must be a mapping, got {type(params).__name__}")
  names = [f"conv{i + 1}" for i in range(cnn12_lib.NUM_BLOCKS)] + ["fc10"]
  missing = [n for n in names if n not in params]
  if missing:
    raise ValueError(f"CNN12 params lack {missing}")
  unexpected = [n for n in params if n not in names]
  if unexpected:
    raise ValueError(f"CNN12 params have unexpected entries {unexpected}; "
                     f"expected {names}")
  arrays = {}
  for n in names:
    entry = params[n]
    if not isinstance(entry, Mapping) or set(entry) != {"kernel", "bias"}:
      got = sorted(entry) if isinstance(entry, Mapping) else repr(entry)
      raise ValueError(f"CNN12 params[{n!r}] must hold exactly 'kernel' and "
                       f"'bias', got {got}")
    arrays[n] = {k: _to_numpy(v, f"{n}/{k}") for k, v in entry.items()}
  # The widths are read from the kernels, then every shape is checked.
  widths = []
  for i in range(cnn12_lib.NUM_BLOCKS):
    kernel = arrays[f"conv{i + 1}"]["kernel"]
    if kernel.ndim != 3:
      raise ValueError(f"CNN12 params['conv{i + 1}']['kernel'] must be "
                       f"(k, in, out), got shape {kernel.shape}")
    widths.append(kernel.shape[-1])
  fc = arrays["fc10"]["kernel"]
  if fc.ndim != 2:
    raise ValueError(f"CNN12 params['fc10']['kernel'] must be (in, out), got "
                     f"shape {fc.shape}")
  model = cnn12_lib.CNN12(widths=widths, embedding_dim=fc.shape[1])
  expected = {}
  for b in model.blocks:
    expected[(b.name, "kernel")] = (b.kernel, b.in_features, b.features)
    expected[(b.name, "bias")] = (b.features,)
  expected[("fc10", "kernel")] = (widths[-1], model.embedding_dim)
  expected[("fc10", "bias")] = (model.embedding_dim,)
  for (n, k), shape in expected.items():
    if arrays[n][k].shape != shape:
      raise ValueError(f"CNN12 params[{n!r}][{k!r}] has shape "
                       f"{arrays[n][k].shape}, expected {shape}")
  out = {}
  for b in model.blocks:
    out[f"features.{b.name}.weight"] = np.ascontiguousarray(
        arrays[b.name]["kernel"].transpose(2, 1, 0))
    out[f"features.{b.name}.bias"] = arrays[b.name]["bias"]
  out["fc1.fc10.weight"] = np.ascontiguousarray(arrays["fc10"]["kernel"].T)
  out["fc1.fc10.bias"] = arrays["fc10"]["bias"]
  return out
