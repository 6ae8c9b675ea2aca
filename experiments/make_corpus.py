"""Writes an offline TIMIT-layout corpus spoken by espeak-ng (SPEC A0).

  python experiments/make_corpus.py --config=configs/make_corpus.py \
      --workdir=/tmp/timit_espeak

The corpus is written into --workdir.partial and renamed to --workdir when
every file is there, so a killed run never leaves a corpus that looks
complete; running the same command again restarts it cleanly, and on a
finished corpus made with the same config it does nothing. --workdir must
be absent, empty, or such a corpus. Read it back with
`recon_jax.data.load_phone_data(workdir)`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from recon_jax import provenance  # noqa: E402
from recon_jax.data import corpus  # noqa: E402
from recon_jax.data import prepare  # noqa: E402
from recon_jax.experiments import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/make_corpus.py",
                                          "Corpus config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory to write into.",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  workdir = provenance.check_workdir(_WORKDIR.value)
  config = _CONFIG.value
  corpus.check_config(config)  # Before any work.
  start = time.time()
  summary = prepare.generate_corpus(workdir, config)
  if summary is None:
    print(f"{workdir} already holds the complete corpus of this config; "
          "nothing to do")
    return
  seconds = time.time() - start
  for split, s in summary.items():
    counts = s["class_counts"]
    rarest = min(counts, key=counts.get)
    print(f"{split}: {s['speakers']} speakers, {s['utterances']} SX/SI "
          f"utterances, {s['phones']} phones (48 classes; fewest: "
          f"{counts[rarest]} of {rarest})")
  print(f"wrote {workdir} in {seconds:.1f} s")


if __name__ == "__main__":
  cli.run(main)
