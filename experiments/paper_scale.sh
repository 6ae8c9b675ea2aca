#!/usr/bin/env bash
# Both papers at full size: configs/mission.py:paper (the thesis's step
# counts, full-width CNN12, the recipes' paper epochs) on the generated data.
#   bash experiments/paper_scale.sh [RUNS_DIR]
# With real corpora, run the halves on them instead (set the folders):
#   TIMIT=/data/TIMIT FSD50K=/data/FSD50K SPEECH_COMMANDS=/data/sc_v2 \
#       AUDIOSET=/data/audioset bash experiments/paper_scale.sh runs
# AUDIOSET (the real layout: segment CSVs + clips) is packed once, then the
# paper's SimCLR streams it (as the paper: SimCLR on AudioSet), mixing in
# the background clips of the folder BACKGROUND.
# On a Cloud TPU VM, launch any of these commands with ../launch_tpu.sh.
set -euo pipefail
R="${1:-runs}"
if [ -z "${TIMIT:-}${FSD50K:-}${SPEECH_COMMANDS:-}${AUDIOSET:-}" ]; then
  recon-jax --config=configs/mission.py:paper --workdir="$R/mission_paper"
  exit 0
fi
if [ -n "${TIMIT:-}" ]; then
  recon-jax --config=configs/thesis.py --workdir="$R/thesis_timit" \
      --config.corpus.timit_dir="$TIMIT"
fi
if [ -n "${FSD50K:-}" ]; then
  recon-jax --config=configs/cnn12_events.py:paper --workdir="$R/cnn12_fsd50k" \
      --config.data.dir="$FSD50K"
  recon-jax --config=configs/cnn12_simclr.py:paper --workdir="$R/simclr_fsd50k" \
      --config.data.source=fsd50k --config.data.dir="$FSD50K" \
      --config.background.dir="$FSD50K/FSD50K.dev_audio"
  recon-jax --config=configs/cnn12_probe.py:paper,events \
      --workdir="$R/probe_fsd50k" --config.data.dir="$FSD50K" \
      --config.encoder.workdir="$R/simclr_fsd50k"
  recon-jax --config=configs/sonification.py --workdir="$R/sonification_fsd50k" \
      --config.supervised="$R/cnn12_fsd50k" --config.contrastive="$R/simclr_fsd50k" \
      --config.probe="$R/probe_fsd50k" --config.data.source=fsd50k \
      --config.data.dir="$FSD50K" --config.layer_importance.probe.model.width_divisor=1
fi
if [ -n "${SPEECH_COMMANDS:-}" ]; then
  recon-jax --config=configs/cnn12_keywords.py:paper --workdir="$R/cnn12_sc" \
      --config.data.dir="$SPEECH_COMMANDS"
fi
if [ -n "${AUDIOSET:-}" ]; then
  recon-jax --config=configs/pack.py:audioset --workdir="$R/audioset_packed" \
      --config.source.dir="$AUDIOSET"
  recon-jax --config=configs/cnn12_simclr.py:paper --workdir="$R/simclr_audioset" \
      --config.data.source=packed --config.data.dir="$R/audioset_packed" \
      --config.background.dir="${BACKGROUND:?set BACKGROUND to a folder of background clips}"
fi
