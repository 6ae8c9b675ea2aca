"""CNN12 trained contrastively (SimCLR, NT-Xent with tau = 0.1 over the
GLOBAL batch; paper Sec. 2 and A.2).

  python -m recon_jax --config=configs/cnn12_simclr.py \
      --workdir=runs/cnn12_simclr

Then evaluate the encoder with configs/cnn12_probe.py (fc-only) and
configs/cnn12_finetune.py (--config.encoder.workdir=runs/cnn12_simclr).

Variants (comma-separated, e.g. `:paper,x2`):
  default  pretrains on the generated event set (5 s clips; share one with
           --config.data.dir=DIR) with two 2.5 s views per clip, background
           clips from the generated keyword set's _background_noise_
           (--config.background.dir=DIR to share one), CNN12 at an eighth
           of the paper's widths (model.width_divisor=8), batch 64, 40
           epochs (10 of warm-up), 3 seeds (the findings compare models
           over seeds); a checkpoint kept at step 0 and every 100 steps for
           the feature-evolution analysis: about 10 minutes a seed on 2 CPU
           cores (plus making the data sets the first time).
  tiny     the tiny generated sets, 1/64 widths, 2 epochs, 1 seed (seconds;
           tests).
  paper    the paper's settings (A.2): full widths, global batch 2048 on a
           TPU v3-8 (256 per core), 100 epochs with 10 of warm-up (the paper
           gives no epoch count; 100 is the authors' tr_contrastive_v2.py
           default), on AudioSet as the paper: its real layout
           (--config.data.dir=/data/audioset: the segment CSVs,
           class_labels_indices.csv and the clips, named as
           --config.data.audioset_naming says), packed once into
           <workdir>/data/packed/ and streamed per host (or pack it first
           with configs/pack.py:audioset and pass --config.data.source=packed
           --config.data.dir=<that folder>, which a multi-host run needs),
           and a folder of background clips (--config.background.dir).
           ~1.9M clips x 100 epochs at 24.6 GFLOP per clip (two views; XLA's
           cost analysis, benchmarks/RESULTS.md): ~4.7 x 10^18 FLOP, about
           8 hours on a v3-8 at an assumed 40% of its 420 TFLOP/s bf16 peak
           (an estimate, not a measurement; the input needs ~2 host cores
           with int16 shards, benchmarks/bench_pipeline.py).
  x2       CNN12_x2 (model.width_multiplier=2); ~4x the FLOPs and time.
  authors  the authors' code's choices where they differ from the text:
           negatives per device (contrastive.negatives='per_device'), coupled
           L2 through Adam with weight decay 1e-5, and their augmentation
           chain: gain -> noise -> background -> peak -> masks, gain with
           p 0.25, their background-mix formula, peak normalisation only
           above 1, time masks on every example.
"""
import ml_collections

from recon_jax.data import augment
from recon_jax.train import cnn12_contrastive as con
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_supervised as sup


def get_config(variant: str = "default"):
  size, options = sup.parse_variant(variant)
  c = ml_collections.ConfigDict()
  c.experiment = "cnn12"
  c.recipe = "contrastive"
  c.seeds = (0, 1, 2)
  c.data = cnn12_data.data_config("generated_events")
  c.model = sup.model_config(width_divisor=8)
  c.train = sup.train_config()
  c.train.num_epochs = 40
  c.train.warmup_epochs = 10
  c.train.keep_period = 100
  c.train.eval_every_epochs = 5
  c.augment = augment.augment_config()
  c.contrastive = con.contrastive_config()
  c.background = con.background_config("generated_keywords")
  if size == "tiny":
    c.seeds = (0,)
    c.data.size = "tiny"
    c.background.size = "tiny"
    c.model.width_divisor = 64
    c.train.batch_size = 8
    c.train.num_epochs = 2
    c.train.warmup_epochs = 1
    c.train.eval_batch_size = 16
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every = 2
    c.train.keep_period = 2
    c.train.log_every = 1
  elif size == "paper":
    c.seeds = (0,)  # One pretraining run, as the paper.
    c.data.source = "audioset"
    c.background.source = "wav_folder"
    c.model.width_divisor = 1
    c.train.batch_size = 2048
    c.train.num_epochs = 100
    c.train.warmup_epochs = 10
    c.train.eval_batch_size = 256
    c.train.checkpoint_every = 1000
    c.train.keep_period = 1000
    c.train.log_every = 50
  if "x2" in options:
    c.model.width_multiplier = 2
  if "authors" in options:
    c.contrastive.negatives = "per_device"
    c.train.weight_decay_mode = "coupled"
    c.train.weight_decay = 1e-5
    c.data.peak = "louder_than_one"
    # Their simple_raw_contrastive_transforms_v3 (augment.AUTHORS_ORDER).
    c.augment.order = ("gain", "noise", "background", "peak", "mask")
    c.augment.gain_p = 0.25  # UseWithProb(0.5) around Gain(p=0.5).
    c.augment.noise_p = 0.5
    c.augment.background_p = 0.5
    c.augment.background_formula = "authors"
    c.augment.peak = "louder_than_one"
    c.augment.mask_p = 1.0
  c.lock()
  return c
