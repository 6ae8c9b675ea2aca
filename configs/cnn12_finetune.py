"""Full fine-tuning of a saved CNN12 encoder: encoder and a new classifier
both train (paper A.3, Tables A.2, A.4, A.6 "full"; Fig. 4).

  python -m recon_jax --config=configs/cnn12_finetune.py \
      --workdir=runs/cnn12_finetune --config.encoder.workdir=runs/cnn12_simclr

Fields and variants as configs/cnn12_probe.py (default: the generated
keyword set, 30 epochs, 3 seeds, about 10 minutes on 2 CPU cores; tiny;
paper; events; x2; authors). The run records the fingerprint of the encoder
checkpoint it started from.
"""
from configs import cnn12_probe

RECIPE = "finetune"


def get_config(variant: str = "default"):
  return cnn12_probe.get_config(variant, recipe=RECIPE)
