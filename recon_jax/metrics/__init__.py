"""Measures: reconstruction similarity and classification metrics."""
from recon_jax.metrics.xcorr import max_xcorr
