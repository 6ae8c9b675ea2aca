"""Linear probe ("fc-only") of a saved CNN12 encoder: only a new classifier
trains on the frozen encoder (paper A.3.3, Table A.6; Fig. 4).

  python -m recon_jax --config=configs/cnn12_probe.py \
      --workdir=runs/cnn12_probe --config.encoder.workdir=runs/cnn12_simclr

The encoder comes from a supervised or contrastive run's checkpoint
(encoder.workdir; encoder.seed: -1, the default, gives seed s of this
recipe the encoder of seed s, so the interval over seeds includes the
pretraining's spread; the paper variant uses seed 0, one pretraining run;
encoder.step: -1 the newest, or any step of the kept series); the model block must describe it (the same variant size
and x2 as the run that trained it; a mismatch is an error naming both).
Each run records the encoder checkpoint's fingerprint.

Variants (comma-separated, e.g. `:events,x2`):
  default  the generated keyword set (35 words), batch 64, 30 epochs (10 of
           warm-up), Adam at 1e-2 (see below), 3 seeds, encoder at an
           eighth of the paper's widths: about 5 minutes on 2 CPU cores.
  tiny     the tiny generated set, 1/64 widths, 2 epochs, 1 seed (tests).
  paper    a Speech Commands v2 folder (--config.data.dir), full widths,
           batch 128, 250 epochs (see cnn12_keywords.py). Only the classifier
           learns: roughly a third of the supervised run's time.
  events   the generated event set instead (2.5 s crops, whole-clip mAP,
           batch 32, 15 epochs; with paper: an FSD50K folder, batch 64).
  x2       the encoder is CNN12_x2 (model.width_multiplier=2).
  authors  the authors' code's choices (coupled L2, no weight decay, peak
           normalisation above 1, ReLU before the classifier).
"""
from configs import cnn12_events
from configs import cnn12_keywords
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup

RECIPE = "probe"


def get_config(variant: str = "default", recipe: str = RECIPE):
  size, options = sup.parse_variant(variant,
                                    options=("x2", "authors", "events"))
  base = cnn12_events if "events" in options else cnn12_keywords
  rest = [o for o in sorted(options) if o != "events"]
  c = base.get_config(",".join([size] + rest))
  c.unlock()
  c.recipe = recipe
  if recipe == RECIPE and size == "default":
    # The frozen features of a short run are small (std ~0.06): with Adam's
    # 1e-3 the linear head barely moves in 15-30 epochs (measured, the
    # default SimCLR encoder on the generated events: test mAP 0.196 at
    # 1e-3, chance 0.184; 0.287 at 1e-2). The paper variant keeps 1e-3.
    c.train.learning_rate = 1e-2
  c.encoder = cnn12_eval.encoder_config()
  if size == "paper":
    c.encoder.seed = 0  # One pretraining run (cnn12_simclr.py:paper).
  c.lock()
  return c
