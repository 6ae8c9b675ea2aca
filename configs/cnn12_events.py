"""CNN12 trained supervised on sound events (AudioSet/FSD50K style,
multi-label; sigmoid binary cross-entropy; mAP, mAUC, d'; paper A.3.1-2).

  python -m recon_jax --config=configs/cnn12_events.py \
      --workdir=runs/cnn12_events

Variants (comma-separated, e.g. `:paper,x2`):
  default  the generated event set (14 procedural classes, 1000 train / 200
           validation / 400 test clips of 5 s, made under the workdir if
           absent; share one with --config.data.dir=DIR), random 2.5 s crops,
           evaluation on the whole 5 s clip, CNN12 at an eighth of the paper's
           widths (model.width_divisor=8), batch 32, 15 epochs (5 of warm-up,
           scaled down with the epochs), 3 seeds: about 10 minutes on 2 CPU
           cores.
  tiny     the tiny generated set (1 s clips), 1/64 widths, crops of 0.5 s,
           2 epochs, 1 seed (seconds; for tests).
  paper    FSD50K as the paper trains it (A.3.2): an FSD50K folder
           (--config.data.dir=/path/to/FSD50K), full widths, random 2.5 s
           crops, batch 64, whole-clip evaluation, 250 epochs with 10 of
           warm-up (the paper gives no epoch count; 250 is the authors'
           train_xla_v4.py default). About 10^7 crop-steps at ~12 GFLOP each
           (a 2.5 s crop's training step): roughly 3 hours on one TPU v3 core
           at an assumed 10 TFLOP/s, plus whole-clip evaluations (an
           estimate; benchmarks/bench_cnn12.py gives the compiled cost and
           peak memory per batch size).
  x2       CNN12_x2 (model.width_multiplier=2); ~4x the FLOPs and time.
  authors  the authors' code's choices where they differ from the text
           (coupled L2 through Adam, no weight decay, peak normalisation only
           above 1, ReLU before the classifier, their augmentation chain,
           mixup every batch; the best-validation checkpoint, clips shorter
           than 5 s evaluated padded to 5 s, centred, edges repeated: see
           cnn12_keywords.py).
"""
import ml_collections

from configs import cnn12_keywords
from recon_jax.data import augment
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_supervised as sup


def get_config(variant: str = "default"):
  size, options = sup.parse_variant(variant)
  c = ml_collections.ConfigDict()
  c.experiment = "cnn12"
  c.recipe = "supervised"
  c.seeds = (0, 1, 2)
  c.data = cnn12_data.data_config("generated_events")
  c.model = sup.model_config(width_divisor=8)
  c.train = sup.train_config()
  c.train.batch_size = 32
  c.train.num_epochs = 15
  c.train.warmup_epochs = 5
  c.train.crop_seconds = 2.5
  c.train.eval_batch_size = 32
  c.train.eval_every_epochs = 5
  c.augment = augment.augment_config()
  if size == "tiny":
    c.seeds = (0,)
    c.data.size = "tiny"
    c.model.width_divisor = 64
    c.train.batch_size = 8
    c.train.num_epochs = 2
    c.train.warmup_epochs = 1
    c.train.crop_seconds = 0.5
    c.train.eval_batch_size = 16
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every = 2
    c.train.log_every = 1
  elif size == "paper":
    c.data.source = "fsd50k"
    c.model.width_divisor = 1
    c.train.batch_size = 64
    c.train.num_epochs = 250
    c.train.warmup_epochs = 10
    c.train.eval_batch_size = 64
    c.train.checkpoint_every = 2000
    c.train.log_every = 100
  if "x2" in options:
    c.model.width_multiplier = 2
  if "authors" in options:
    cnn12_keywords.apply_authors(c, eval_seconds=5.0)
  c.lock()
  return c
