"""Primitives: max-pooling with switches, unpooling, STFT and Griffin-Lim."""
from recon_jax.ops.pooling import blind_unpool
from recon_jax.ops.pooling import max_pool_switch_offsets
from recon_jax.ops.pooling import max_pool_with_argmax
from recon_jax.ops.pooling import max_unpool
from recon_jax.ops.pooling import pooled_length
from recon_jax.ops.pooling import unpool_at_offsets
from recon_jax.ops.spectral import check_stft_settings
from recon_jax.ops.spectral import griffin_lim
from recon_jax.ops.spectral import istft
from recon_jax.ops.spectral import spectral_convergence
from recon_jax.ops.spectral import stft
from recon_jax.ops.spectral import stft_num_frames
from recon_jax.ops.spectral import stft_window
