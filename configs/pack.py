"""Config of the `pack` experiment: any CNN12 data source -> sharded
ArrayRecord files that training streams per host (recon_jax.data.pack).

  recon-jax --config=configs/pack.py:audioset --workdir=/data/audioset_packed \
      --config.source.dir=/data/audioset
  recon-jax --config=configs/cnn12_simclr.py:paper --workdir=runs/simclr \
      --config.data.source=packed --config.data.dir=/data/audioset_packed

Variants name the source: default (the generated event set), tiny (its tiny
size), speech_commands, fsd50k, audioset, labelled_folder (also set
source.csv), tfds_speech_commands (needs the `tfds` extra). --workdir is the
packed folder; generated sources are made under <workdir>/data/ first. A
killed pack resumes at its first unfinished shard when rerun; a finished
one is reused; one packed from another source or with other settings is
refused.

Fields:
  source: the data block of a CNN12 config (recon_jax.train.cnn12_data.
    data_config): source, dir, csv, size, seed, peak, skip_bad (leave out
    bad clips, listed in report.json, instead of stopping at the first),
    audioset_naming.
  encoding: 'int16' (raw 16-bit PCM, fastest to read) or 'flac' (lossless,
    about half the disk, more CPU per clip).
  records_per_shard: clips per shard file (1024 10-s clips at 8 kHz as
    int16: ~160 MB).
  sample_rate: the network's rate (CNN12: 8000).
  num_workers: processes decoding clips (0: every core of this host).
"""
import ml_collections

from recon_jax.train import cnn12_data

SOURCES = ("speech_commands", "fsd50k", "audioset", "labelled_folder",
           "tfds_speech_commands")


def get_config(variant: str = "default"):
  variant = variant or "default"
  if variant not in ("default", "tiny") + SOURCES:
    raise ValueError(f"config variant {variant!r}: want default, tiny or a "
                     f"source: {', '.join(SOURCES)}")
  c = ml_collections.ConfigDict()
  c.experiment = "pack"
  if variant in ("default", "tiny"):
    c.source = cnn12_data.data_config("generated_events", variant)
  else:
    c.source = cnn12_data.data_config(variant)
  c.encoding = "int16"
  c.records_per_shard = 1024
  c.sample_rate = 8000
  c.num_workers = 0
  if variant == "tiny":
    c.records_per_shard = 16
    c.num_workers = 1
  c.lock()
  return c
