"""recon_jax: look inside audio CNNs by turning activations back into sound.

Subpackages: `ops` (pooling/unpooling with switches, STFT), `models`, `data`,
`inversion`, `train`, `metrics`, `report`.
"""
from recon_jax import metrics
from recon_jax import ops

__version__ = "0.1.0"
