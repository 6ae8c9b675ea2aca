"""recon_jax: look inside audio CNNs by turning activations back into sound.

Subpackages: `ops` (pooling/unpooling with switches, STFT), `models`, `data`,
`inversion`, `analysis`, `train`, `metrics`, `report`, `experiments`. `ops` and `metrics` are imported
with the package; the others on first use (`recon_jax.train.fit` works
after a plain `import recon_jax`), so importing the primitives stays light.
"""
import importlib as _importlib

from recon_jax import metrics
from recon_jax import ops

__version__ = "0.1.0"

_LAZY_SUBPACKAGES = ("analysis", "data", "experiments", "inversion", "models",
                     "report", "train")
__all__ = sorted(("metrics", "ops", "__version__") + _LAZY_SUBPACKAGES)


def __getattr__(name):
  if name in _LAZY_SUBPACKAGES:
    return _importlib.import_module(f"recon_jax.{name}")
  raise AttributeError(f"module 'recon_jax' has no attribute {name!r}")


def __dir__():
  """Every subpackage, imported or not (dir() and tab completion)."""
  return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
