#!/usr/bin/env bash
# The README's CNN12 table and sonification findings ("The sonification half
# on generated data"): the default generated sets, CNN12 at an eighth of the
# paper's widths, 3 seeds where the config says so.
#   bash experiments/cnn12_tables.sh [RUNS_DIR]
set -euo pipefail
R="${1:-runs}"
recon-jax --config=configs/make_events.py --workdir="$R/data/events"
recon-jax --config=configs/make_keywords.py --workdir="$R/data/keywords"
recon-jax --config=configs/cnn12_events.py --workdir="$R/cnn12_events" \
    --config.data.dir="$R/data/events"
recon-jax --config=configs/cnn12_simclr.py --workdir="$R/cnn12_simclr" \
    --config.data.dir="$R/data/events" --config.background.dir="$R/data/keywords"
for recipe in probe finetune; do
  recon-jax --config="configs/cnn12_$recipe.py:events" \
      --workdir="$R/cnn12_${recipe}_events" --config.data.dir="$R/data/events" \
      --config.encoder.workdir="$R/cnn12_simclr"
  recon-jax --config="configs/cnn12_$recipe.py" \
      --workdir="$R/cnn12_${recipe}_keywords" --config.data.dir="$R/data/keywords" \
      --config.encoder.workdir="$R/cnn12_simclr"
done
recon-jax --config=configs/cnn12_keywords.py --workdir="$R/cnn12_keywords" \
    --config.data.dir="$R/data/keywords"
recon-jax --config=configs/sonification.py --workdir="$R/sonification" \
    --config.supervised="$R/cnn12_events" --config.contrastive="$R/cnn12_simclr" \
    --config.probe="$R/cnn12_probe_events" \
    --config.finetune="$R/cnn12_finetune_events" --config.data.dir="$R/data/events"
# The README's CNN12 table and findings are quoted from these runs' results
# (saved into docs/results/; see recon_jax/report/readme_quote.py).
python -m recon_jax.report.readme_quote --runs="$R"
echo "summaries: $R/cnn12_*/summary.json; findings: $R/sonification/summary.md;" \
     "page: $R/sonification/sonification_page/index.html"
