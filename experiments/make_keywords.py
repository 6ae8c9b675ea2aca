"""Writes a Speech Commands v2-layout keyword data set (SPEC B1b).

  python experiments/make_keywords.py --config=configs/make_keywords.py \
      --workdir=/tmp/keywords

The 35 Speech Commands v2 words spoken by espeak-ng speakers, 1 s at 8 kHz,
speaker-disjoint splits (validation_list.txt, testing_list.txt) and
_background_noise_ clips. It is written into --workdir.partial and renamed
to --workdir when complete, so a killed run never leaves a data set that
looks complete; the same command again restarts it, and on a finished data
set made with the same config does nothing (another config is an error
naming the differing fields). Read it with
`recon_jax.data.audio_folder.load_speech_commands(workdir)`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import provenance  # noqa: E402
from recon_jax.data import keywords  # noqa: E402
from recon_jax.experiments import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/make_keywords.py", "Keyword data set config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory to write into.",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  workdir = provenance.check_workdir(_WORKDIR.value)
  config = _CONFIG.value
  keywords.check_config(config)  # Before any work.
  start = time.time()
  summary = keywords.generate_keywords(workdir, config)
  if summary is None:
    print(f"{workdir} already holds the complete keyword data set of this "
          "config; nothing to do")
    return
  for split in keywords.SPLITS:
    s = summary[split]
    print(f"{split}: {s['speakers']} speakers, {s['clips']} clips "
          f"({summary['words']} words)")
  print(f"background: {', '.join(summary['background'])}")
  print(f"wrote {workdir} in {time.time() - start:.1f} s")


if __name__ == "__main__":
  cli.run(main)
