"""Flax (linen) models: the thesis's phone CNN (and, later, CNN12)."""
from recon_jax.models.phone_cnn import activation_shape
from recon_jax.models.phone_cnn import Layer
from recon_jax.models.phone_cnn import network_layers
from recon_jax.models.phone_cnn import phone_cnn_from_config
from recon_jax.models.phone_cnn import PhoneCNN
