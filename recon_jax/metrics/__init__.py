"""Measures: reconstruction similarity and classification metrics."""
from recon_jax.metrics.xcorr import max_xcorr
from recon_jax.metrics.reconstruction import euclidean_error, reconstruction_measures, spectrogram_mxcorr, spectrogram_to_waveform, stft_round_trip_mxcorr, waveform_mxcorr, waveform_mxcorr_threshold
