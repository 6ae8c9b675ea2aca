"""Writes an offline TIMIT-layout corpus spoken by espeak-ng (SPEC A0).

  python experiments/make_corpus.py --config=configs/make_corpus.py \
      --workdir=/tmp/timit_espeak

The corpus goes to --workdir (which must not already hold TRAIN/ or TEST/).
Read it back with `recon_jax.data.load_phone_data(workdir)`.
"""
import time

from absl import app
from absl import flags
from ml_collections import config_flags

from recon_jax.data import corpus

_CONFIG = config_flags.DEFINE_config_file("config", "configs/make_corpus.py",
                                          "Corpus config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory to write into.",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  start = time.time()
  summary = corpus.make_timit_corpus(_WORKDIR.value, config, config.seed)
  seconds = time.time() - start
  for split, s in summary.items():
    counts = s["class_counts"]
    rarest = min(counts, key=counts.get)
    print(f"{split}: {s['speakers']} speakers, {s['utterances']} SX/SI "
          f"utterances, {s['phones']} phones (48 classes; fewest: "
          f"{counts[rarest]} of {rarest})")
  print(f"wrote {_WORKDIR.value} in {seconds:.1f} s")


if __name__ == "__main__":
  app.run(main)
