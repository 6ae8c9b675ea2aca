"""Flax (linen) models: the thesis's phone CNN, CNN12 (the sonification
paper's raw-waveform encoder) and its heads, and CNN12 weights to and from
PyTorch state dicts; `invertible`, the protocol through which the inversion
code reads a network (PhoneCNN and CNN12 implement it; DeclaredNet is a
user's 1-D conv net declared as a list of operations)."""
from recon_jax.models import invertible
from recon_jax.models.invertible import DeclaredNet
from recon_jax.models.invertible import InvertibleNet
from recon_jax.models.phone_cnn import activation_shape
from recon_jax.models.phone_cnn import Layer
from recon_jax.models.phone_cnn import network_layers
from recon_jax.models.phone_cnn import phone_cnn_from_config
from recon_jax.models.phone_cnn import PhoneCNN
from recon_jax.models.cnn12 import CNN12
from recon_jax.models.cnn12 import CNN12Trace
from recon_jax.models.cnn12 import ConvBlock
from recon_jax.models.cnn12 import MIN_INPUT_LENGTH as CNN12_MIN_INPUT_LENGTH
from recon_jax.models.heads import ClassifierHead
from recon_jax.models.heads import l2_normalize
from recon_jax.models.heads import ProjectionHead
from recon_jax.models.torch_interop import cnn12_params_from_torch
from recon_jax.models.torch_interop import cnn12_params_to_torch
