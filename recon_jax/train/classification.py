"""Supervised classification pieces: loss, optimiser, batched prediction, metrics."""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


def weight_decay_mask(params) -> Any:
  """True for weight matrices/kernels (L2-penalised), False for biases."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def adagrad_with_l2(learning_rate: float, l2: float,
                    initial_accumulator_value: float = 0.0,
                    eps: float = 1e-10) -> optax.GradientTransformation:
  """AdaGrad on loss + (l2 / 2) * ||W||^2 over the weights (thesis 5.2-5.3).

  The penalty's gradient l2 * W is added before AdaGrad's scaling, which is
  what adding the penalty to the loss does. The accumulator starts at 0 with
  a tiny epsilon, as MatConvNet's AdaGrad (the thesis's), so the step size
  does not depend on the gradients' scale (optax's default start of 0.1
  freezes a network whose gradients are small).
  """
  return optax.chain(
      optax.add_decayed_weights(l2, mask=weight_decay_mask),
      optax.adagrad(learning_rate, initial_accumulator_value, eps))


def softmax_classifier_loss(model: nn.Module, input_key: str = "inputs",
                            label_key: str = "labels"):
  """loss_fn(params, batch, key) for `fit`: mean softmax cross-entropy.

  Dropout is on (the key is split for it); also reports batch accuracy.
  """

  def loss_fn(params, batch, key):
    logits = model.apply({"params": params}, batch[input_key], train=True,
                         rngs={"dropout": key})
    labels = batch[label_key]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, {"accuracy": accuracy}

  return loss_fn


@functools.partial(jax.jit, static_argnames=("model",))
def _logits(model, params, x):
  return model.apply({"params": params}, x, train=False)


def predict_logits(model: nn.Module, params, inputs: np.ndarray,
                   batch_size: int = 512) -> np.ndarray:
  """Logits for every input, in fixed-size batches (one compiled shape).

  Args:
    inputs: (N, ...) array.

  Returns:
    (N, num_classes) float32 numpy array.
  """
  n = inputs.shape[0]
  out = []
  for start in range(0, n, batch_size):
    chunk = inputs[start:start + batch_size]
    pad = batch_size - chunk.shape[0] if n > batch_size else 0
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:],
                                              chunk.dtype)])
    logits = np.asarray(_logits(model, params, jnp.asarray(chunk)))
    out.append(logits[:logits.shape[0] - pad])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int) -> np.ndarray:
  """(num_classes, num_classes) counts, rows true class, columns predicted."""
  flat = (np.asarray(labels, np.int64) * num_classes +
          np.asarray(predictions, np.int64))
  return np.bincount(flat, minlength=num_classes**2).reshape(
      num_classes, num_classes)


def folded_accuracy(labels: np.ndarray, predictions: np.ndarray,
                    fold: np.ndarray | None = None) -> float:
  """Accuracy after mapping classes through `fold` (e.g. 48 -> 39)."""
  if fold is not None:
    labels, predictions = fold[labels], fold[predictions]
  return float(np.mean(labels == predictions)) if len(labels) else float("nan")
