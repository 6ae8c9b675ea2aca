"""The thesis experiment end to end (SPEC A): README command 1 runs this.

  python experiments/thesis.py --config=configs/thesis_quick.py \
      --workdir=runs/thesis_quick

Stages, each resumable: corpus (generated unless corpus.timit_dir is set) ->
phone features -> the phone CNN classifier and the padded encoder ->
decoders -> reconstructions by 4 methods x layers -> figures, tables, WAVs.
The driver is recon_jax.experiments.thesis; this file only parses flags.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax.experiments import cli  # noqa: E402
from recon_jax.experiments import thesis  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  out = thesis.run(_CONFIG.value, _WORKDIR.value)
  print(json.dumps({k: v for k, v in out.items()
                    if k not in ("rows", "table")}, indent=1))
  print(out["table"])
  print(f"Figures, tables and WAVs: {out['report_dir']}")


if __name__ == "__main__":
  cli.run(main)
