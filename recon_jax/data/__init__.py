"""Data: the TIMIT-layout corpus (generated offline or real) and its features.

Make a corpus:   make_timit_corpus(out_dir, config, seed), or
                 prepare.generate_corpus(root, config) (atomic, resumable)
Read features:   load_phone_data(root) -> PhoneData (201 x 16 spectrograms,
                 .fingerprint identifies them, stft_settings(data) their STFT)
Epoch sampling:  balanced_indices / epoch_batches (thesis 3.3)
Controls:        make_chirps (at the phones' level: rms=, see signal_rms)
"""
from recon_jax.data.chirps import make_chirps
from recon_jax.data.chirps import signal_rms
from recon_jax.data.corpus import get_config as corpus_config
from recon_jax.data.corpus import make_timit_corpus
from recon_jax.data.errors import CorpusError
from recon_jax.data.features import load_phone_data
from recon_jax.data.features import network_inputs
from recon_jax.data.features import PhoneData
from recon_jax.data.features import PhoneSplit
from recon_jax.data.features import stft_magnitudes
from recon_jax.data.features import stft_settings
from recon_jax.data.phones import fold_48_to_39
from recon_jax.data.phones import fold_61_to_48
from recon_jax.data.phones import phones39
from recon_jax.data.phones import phones48
from recon_jax.data.phones import read_phn
from recon_jax.data.phones import timit61
from recon_jax.data.phones import write_phn
from recon_jax.data.sampling import balanced_indices
from recon_jax.data.sampling import epoch_batches
from recon_jax.data.sphere import read_audio
from recon_jax.data.sphere import read_sphere
from recon_jax.data.sphere import write_sphere
from recon_jax.data.timit import list_utterances
from recon_jax.data.timit import read_phones
