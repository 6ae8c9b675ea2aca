"""Trains and evaluates CNN12 (SPEC B1, B2): supervised, contrastive
(SimCLR), linear probe or fine-tuning, over the config's seeds.

  python experiments/train_cnn12.py --config=configs/cnn12_keywords.py \
      --workdir=runs/cnn12_keywords
  python experiments/train_cnn12.py --config=configs/cnn12_simclr.py:tiny \
      --workdir=/tmp/simclr
  python experiments/train_cnn12.py --config=configs/cnn12_probe.py \
      --workdir=runs/probe --config.encoder.workdir=runs/cnn12_simclr

Makes the generated data set if the config names one and it is absent,
trains each seed in --workdir/seed_<s> (checkpointed, resumable after a
kill: the same command continues), evaluates on whole clips, writes
--workdir/summary.json and prints each metric's mean and 95% interval over
the seeds (with chance levels).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import provenance  # noqa: E402
from recon_jax.experiments import cli  # noqa: E402
from recon_jax.train import cnn12_data  # noqa: E402
from recon_jax.train import cnn12_eval  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "CNN12 config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  workdir = provenance.check_workdir(_WORKDIR.value)
  cnn12_eval.check_config(config)  # Every field, before any data work.
  data = cnn12_data.load_data(config.data, workdir)
  logging.info("Data %s: %d train, %d validation, %d test clips, %d classes",
               config.data.source, *(len(data.split(s)) for s in (
                   "train", "validation", "test")), len(data.class_names))
  summary = cnn12_eval.run_recipe(config, workdir, data)
  print(f"{config.recipe} CNN12 on {config.data.source}, "
        f"{len(data.class_names)} classes; results in "
        f"{os.path.join(workdir, cnn12_eval.SUMMARY_JSON)}")
  for line in cnn12_eval.format_summary(summary):
    print(line)


if __name__ == "__main__":
  cli.run(main)
