"""CNN12 trained supervised on keywords (Speech Commands style, 35 words;
softmax cross-entropy; paper Table A.6).

  python -m recon_jax --config=configs/cnn12_keywords.py \
      --workdir=runs/cnn12_keywords

Variants (comma-separated, e.g. `:paper,x2`):
  default  the generated keyword set (35 words spoken by espeak-ng, made under
           the workdir if absent; share one with --config.data.dir=DIR), CNN12
           at an eighth of the paper's widths (model.width_divisor=8:
           330,856 encoder parameters, 13.8M at full width), batch 64, 30 epochs (10 of warm-up), 3 seeds: about
           10 minutes on 2 CPU cores.
  tiny     the tiny generated set, 1/64 widths, 2 epochs, 1 seed (seconds;
           for tests).
  paper    the paper's settings: a Speech Commands v2 folder
           (--config.data.dir=/path/to/speech_commands_v0.02), full widths,
           batch 128, 1 s clips (no cropping), 250 epochs (the paper gives
           no epoch count; 250 is the default of the authors' train_xla_v4.py)
           with 10 of warm-up. About 2 x 10^7 clip-steps at ~4.5 GFLOP each
           (a 1-s clip's training step; forward 1.5 GFLOP): roughly 3 hours
           on one TPU v3 core at an assumed 10 TFLOP/s (an estimate, not a
           measurement; benchmarks/bench_cnn12.py gives the compiled cost and
           peak memory per batch size).
  x2       CNN12_x2: every width doubled (model.width_multiplier=2); ~4x the
           FLOPs, so ~4x the time.
  authors  where the authors' code differs from the paper's text:
           coupled L2 through Adam, no weight decay, peak normalisation only
           of clips louder than 1, a ReLU before the classifier, and their
           augmentation chain (gain -> noise -> peak -> masks, gain with
           p 0.25, time masks on every example, mixup every batch), and
           their evaluation: the best-validation checkpoint
           (train.checkpoint_choice) with clips padded to 1 s, centred,
           edges repeated (data.eval_min_seconds, data.eval_pad). Their
           notebooks load checkpoints of 50-100 epochs chosen this way; set
           train.num_epochs for that.

Every field is checked before any work; the config is locked, so a misspelt
override (--config.train.batchsize=32) is an error.
"""
import ml_collections

from recon_jax.data import augment
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_supervised as sup


def apply_authors(c, weight_decay: float = 0.0, eval_seconds: float = 1.0):
  """The authors' code's choices where they differ from the text.

  eval_seconds: their val_clip_size (1 s Speech Commands, 5 s FSD50K): a
  shorter clip is evaluated padded to it, centred, edges repeated.
  """
  c.train.weight_decay_mode = "coupled"
  # Their evaluation scripts: the best-validation checkpoint, and clips
  # padded to val_clip_size by PadToSize (torch 'replicate').
  c.train.checkpoint_choice = "best_validation"
  c.data.eval_min_seconds = eval_seconds
  c.data.eval_pad = "edge"
  c.train.weight_decay = weight_decay
  c.data.peak = "louder_than_one"
  c.model.head_relu_input = True
  # Their simple_supervised_transforms / _v3 chain (augment.AUTHORS_ORDER).
  c.augment.order = ("gain", "noise", "background", "peak", "mask")
  c.augment.gain_p = 0.25  # UseWithProb(0.5) around Gain(p=0.5).
  c.augment.noise_p = 0.5
  c.augment.background_p = 0.5
  c.augment.background_formula = "authors"
  c.augment.peak = "louder_than_one"
  c.augment.mask_p = 1.0
  c.augment.mixup_p = 1.0  # do_mixup on every batch.


def get_config(variant: str = "default"):
  size, options = sup.parse_variant(variant)
  c = ml_collections.ConfigDict()
  c.experiment = "cnn12"
  c.recipe = "supervised"
  c.seeds = (0, 1, 2)
  c.data = cnn12_data.data_config("generated_keywords")
  c.model = sup.model_config(width_divisor=8)
  c.train = sup.train_config()
  c.train.crop_seconds = 1.0  # The whole clip: no cropping (paper A.3.3).
  c.augment = augment.augment_config()
  if size == "tiny":
    c.seeds = (0,)
    c.data.size = "tiny"
    c.model.width_divisor = 64
    c.train.batch_size = 16
    c.train.num_epochs = 2
    c.train.warmup_epochs = 1
    c.train.eval_batch_size = 16
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every = 4
    c.train.log_every = 2
  elif size == "paper":
    c.data.source = "speech_commands"
    c.model.width_divisor = 1
    c.train.batch_size = 128
    c.train.num_epochs = 250
    c.train.eval_batch_size = 256
    c.train.checkpoint_every = 2000
    c.train.log_every = 100
  if "x2" in options:
    c.model.width_multiplier = 2
  if "authors" in options:
    apply_authors(c)
  c.lock()
  return c
