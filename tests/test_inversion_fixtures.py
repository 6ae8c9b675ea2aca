"""Shared helpers of the inversion tests (no tests here).

Spectrogram-like inputs without a corpus: harmonic tones with a random
fundamental, a few formant-like peaks and an envelope, 2554 samples at 16 kHz
through the thesis's STFT (201 x 16), minus their mean spectrogram.
"""
import jax.numpy as jnp
import numpy as np

from recon_jax import ops

LENGTH = 2554
RATE = 16000


def synthetic_waveforms(n: int, seed: int = 0) -> np.ndarray:
  """(n, 2554) float32 phone-like waveforms (harmonic, enveloped, noisy)."""
  rng = np.random.default_rng(seed)
  t = np.arange(LENGTH) / RATE
  out = np.zeros((n, LENGTH), np.float64)
  for i in range(n):
    f0 = rng.uniform(90, 250)
    formants = rng.uniform(300, 3500, size=3)
    for h in range(1, int(4000 // f0)):
      f = h * f0
      gain = sum(np.exp(-((f - fm) / 150.0)**2) for fm in formants) + 0.02
      out[i] += gain * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    voiced = rng.integers(600, LENGTH)
    out[i, voiced:] = 0.0
    out[i] += 0.01 * rng.normal(size=LENGTH)
    out[i] *= np.hanning(LENGTH) ** 0.5 * 0.3
  return out.astype(np.float32)


def synthetic_spectrograms(n: int, seed: int = 0, unit_scale: bool = False):
  """(waveforms (n, L), inputs (n, 201, 16) mean-subtracted, mean (201, 16)).

  unit_scale: divide inputs and mean by the inputs' std (for the inversion
  tests, whose step sizes then need no tuning to the STFT's scale).
  """
  waves = synthetic_waveforms(n, seed)
  mags = np.asarray(jnp.abs(ops.stft(waves)))
  mean = mags.mean(axis=0)
  inputs = mags - mean
  scale = inputs.std() if unit_scale else 1.0
  return (waves, (inputs / scale).astype(np.float32),
          (mean / scale).astype(np.float32))


def numpy_params(model, input_shape=(201, 16), seed: int = 0):
  """Random parameters for `model` without compiling its init.

  XLA:CPU takes seconds to compile a PhoneCNN's init; the shapes come from
  jax.eval_shape and the values from NumPy: LeCun-normal kernels (as flax's
  default) and small random biases (so that biases matter, unlike flax's
  zeros).
  """
  import jax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1,) + tuple(input_shape)))["params"]

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if "kernel" in name:
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.normal(0, fan_in**-0.5, leaf.shape).astype(np.float32)
    return rng.normal(0, 0.01, leaf.shape).astype(np.float32)
  return jax.tree_util.tree_map_with_path(fill, shapes)
