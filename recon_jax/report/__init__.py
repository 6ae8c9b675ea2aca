"""Outputs a person uses: WAV files, figures, tables."""
from recon_jax.report.audio import write_wav
from recon_jax.report.figures import confusion_matrix_figure
from recon_jax.report.figures import histogram_grid
from recon_jax.report.figures import measure_curves
from recon_jax.report.figures import spectrogram_grid
