#!/usr/bin/env bash
# Runs a recon_jax training job on every worker of a Cloud TPU VM.
#
#   TPU_NAME=my-tpu ZONE=us-central2-b ./launch_tpu.sh \
#       experiments/train_phone_cnn.py --config=configs/phone_cnn.py \
#       --workdir=gs://my-bucket/runs/phone_cnn
#
# Creates the TPU VM if it does not exist (ACCELERATOR, default v4-8, and
# RUNTIME), copies this checkout to every worker, installs the package with
# jax[tpu], and starts the entry point on all workers at once (JAX's
# multi-host runtime finds its peers on a TPU VM by itself). The job's
# output is in its --workdir: use a gs:// path so all hosts share it
# (orbax writes checkpoints there atomically; a re-run resumes).
# Set CREATE=0 to require an existing VM, DRY_RUN=1 to print the commands.
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME}"
: "${ZONE:?set ZONE}"
ACCELERATOR="${ACCELERATOR:-v4-8}"
RUNTIME="${RUNTIME:-tpu-ubuntu2204-base}"
CREATE="${CREATE:-1}"
REMOTE_DIR="${REMOTE_DIR:-recon_jax}"
if [ $# -lt 1 ]; then
  echo "usage: $0 ENTRY_POINT.py [--flags ...]" >&2
  exit 2
fi

run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

here="$(cd "$(dirname "$0")" && pwd)"
if ! gcloud compute tpus tpu-vm describe "$TPU_NAME" --zone "$ZONE" \
    >/dev/null 2>&1; then
  if [ "$CREATE" != 1 ]; then
    echo "TPU VM $TPU_NAME not found in $ZONE (CREATE=0)" >&2
    exit 1
  fi
  run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" \
      --accelerator-type "$ACCELERATOR" --version "$RUNTIME"
fi

archive="$(mktemp -d)/recon_jax.tar.gz"
git -C "$here" archive --format=tar.gz -o "$archive" HEAD
run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:~/recon_jax.tar.gz" \
    --zone "$ZONE" --worker=all
remote_cmd="set -e; rm -rf $REMOTE_DIR; mkdir -p $REMOTE_DIR; \
tar -xzf ~/recon_jax.tar.gz -C $REMOTE_DIR; cd $REMOTE_DIR; \
pip install -q -U 'jax[tpu]' -e .; python $(printf '%q ' "$@")"
run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all \
    --command "$remote_cmd"
