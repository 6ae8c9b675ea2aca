"""Outputs a person uses: WAV files, figures, tables."""
from recon_jax.report.audio import write_wav
from recon_jax.report.figures import confusion_matrix_figure
from recon_jax.report.figures import histogram_grid
from recon_jax.report.figures import measure_curves
from recon_jax.report.figures import spectrogram_grid
from recon_jax.report.sonification_media import log_spectrogram
from recon_jax.report.sonification_media import spectrogram_pairs_figure
from recon_jax.report.sonification_media import write_clip_media
from recon_jax.report.sonification_media import write_clip_wav
from recon_jax.report.sonification_media import write_spectrogram_thumbnail
from recon_jax.report.sonification_page import ManifestError
from recon_jax.report.sonification_page import screenshot_page
from recon_jax.report.sonification_page import validate_manifest
from recon_jax.report.sonification_page import write_page
