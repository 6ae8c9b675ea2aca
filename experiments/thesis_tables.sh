#!/usr/bin/env bash
# The README's thesis tables (README "Results on the generated corpus").
#   bash experiments/thesis_tables.sh [RUNS_DIR]
set -euo pipefail
R="${1:-runs}"
# The main table: every method x layer, phones vs chirps.
recon-jax --config=configs/thesis_quick.py --workdir="$R/thesis_quick"
# The curvature-scaled backprop step on the same (retrained, identical) nets.
recon-jax --config=configs/thesis_quick.py --workdir="$R/thesis_curvature" \
    --config.reconstruction.backprop.step_scale=curvature \
    --config.reconstruction.methods="('backprop',)"
# The README's thesis tables and findings are quoted from these runs.
python -m recon_jax.report.readme_quote --thesis="$R"
echo "tables: $R/thesis_quick/reconstruction/results.md, $R/thesis_curvature/reconstruction/results.md"
