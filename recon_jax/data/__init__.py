"""Data: the TIMIT-layout corpus (generated offline or real) and its features.

Make a corpus:   make_timit_corpus(out_dir, config, seed), or
                 prepare.generate_corpus(root, config) (atomic, resumable)
Read features:   load_phone_data(root) -> PhoneData (201 x 16 spectrograms,
                 .fingerprint identifies them, stft_settings(data) their STFT)
Epoch sampling:  balanced_indices / epoch_batches (thesis 3.3)
Controls:        make_chirps (at the phones' level: rms=, see signal_rms)

Sonification half (8 kHz waveforms; docs/methods.md, B1b):
Make data sets:  generate_keywords (Speech Commands layout, espeak-ng),
                 generate_events (FSD50K layout, procedural events)
Read them (or real copies): load_speech_commands -> KeywordData,
                 load_fsd50k / load_labelled_folder -> EventData,
                 load_tfds_speech_commands (TFDS, 12 labels)
Augmentation:    augment (jitted, keyed: gain, noise, background, masks,
                 mixup, crops, contrastive views)
"""
from recon_jax.data import augment
from recon_jax.data.audio_folder import EventData
from recon_jax.data.audio_folder import EventSplit
from recon_jax.data.audio_folder import KeywordData
from recon_jax.data.audio_folder import KeywordSplit
from recon_jax.data.audio_folder import load_fsd50k
from recon_jax.data.audio_folder import load_labelled_folder
from recon_jax.data.audio_folder import load_speech_commands
from recon_jax.data.audio_folder import pad_clips
from recon_jax.data.audio_io import AudioError
from recon_jax.data.audio_io import CNN12_RECEPTIVE_FIELD
from recon_jax.data.audio_io import load_clip
from recon_jax.data.events import generate_events
from recon_jax.data.keywords import generate_keywords
from recon_jax.data.tfds_source import load_tfds_speech_commands
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
