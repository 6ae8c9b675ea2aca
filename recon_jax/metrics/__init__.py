"""Measures: reconstruction similarity and classification metrics."""
from recon_jax.metrics.xcorr import max_xcorr
from recon_jax.metrics.reconstruction import euclidean_error, reconstruction_measures, spectrogram_mxcorr, spectrogram_to_waveform, stft_round_trip_mxcorr, waveform_mxcorr, waveform_mxcorr_threshold
from recon_jax.metrics.classification import accuracy
from recon_jax.metrics.classification import auc_per_class
from recon_jax.metrics.classification import average_precision_per_class
from recon_jax.metrics.classification import confidence_interval_95
from recon_jax.metrics.classification import d_prime
from recon_jax.metrics.classification import mean_auc
from recon_jax.metrics.classification import mean_average_precision
from recon_jax.metrics.classification import multilabel_metrics
from recon_jax.metrics.classification import resampled_mean_average_precision
from recon_jax.metrics.coherence import mean_top_peaks_coherence
from recon_jax.metrics.coherence import mean_topk_coherence
from recon_jax.metrics.coherence import mean_topk_coherence_batch
from recon_jax.metrics.coherence import UndefinedCoherenceError
