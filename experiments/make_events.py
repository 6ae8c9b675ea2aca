"""Writes an FSD50K-layout multi-label sound event data set (SPEC B1b).

  python experiments/make_events.py --config=configs/make_events.py \
      --workdir=/tmp/events

Procedural 5 s clips at 8 kHz mixing 1-4 events of 14 classes (tones,
chirps, noise bursts, click trains, AM/FM tones, harmonic stacks, spoken
words, knocks, sirens, dial tones, bells), with FSD50K's ground-truth CSVs.
Written into --workdir.partial and renamed to --workdir when complete; the
same command again on a finished data set of the same config does nothing
(another config is an error naming the differing fields). Read it with
`recon_jax.data.audio_folder.load_fsd50k(workdir)`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import provenance  # noqa: E402
from recon_jax.data import events  # noqa: E402
from recon_jax.experiments import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/make_events.py", "Event data set config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory to write into.",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  workdir = provenance.check_workdir(_WORKDIR.value)
  config = _CONFIG.value
  events.check_config(config)  # Before any work.
  start = time.time()
  summary = events.generate_events(workdir, config)
  if summary is None:
    print(f"{workdir} already holds the complete event data set of this "
          "config; nothing to do")
    return
  for split in events.SPLITS:
    s = summary[split]
    counts = s["class_counts"]
    rarest = min(counts, key=counts.get)
    print(f"{split}: {s['clips']} clips, {s['events']} events "
          f"({summary['classes']} classes; fewest: {counts[rarest]} of "
          f"{rarest})")
  print(f"wrote {workdir} in {time.time() - start:.1f} s")


if __name__ == "__main__":
  cli.run(main)
