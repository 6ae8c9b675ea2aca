#!/usr/bin/env bash
# Runs one recon_jax experiment on every worker of a Cloud TPU VM.
#
#   ./launch_tpu.sh --project=my-project --zone=europe-west4-a --name=cnn12 \
#       --accelerator=v3-8 -- \
#       --config=configs/cnn12_simclr.py:paper \
#       --workdir=/home/$USER/runs/simclr
#
# Creates the TPU VM if it does not exist (or reuses it), copies this
# checkout (git HEAD) to every worker, installs the package with jax[tpu],
# and runs `python -m recon_jax <the flags after -->` on all workers at once
# with RECON_JAX_DISTRIBUTED=1 (recon_jax then calls
# jax.distributed.initialize(), which finds the other hosts of a multi-host
# slice by itself). Every worker's output is
# streamed back. Re-running the same command resumes the run from its
# checkpoints.
#
# Work dirs are local paths (recon_jax refuses gs:// URLs). One host (v2-8,
# v3-8, v4-8) needs nothing more. A multi-host slice needs one shared
# directory: --bucket=B mounts gs://B with gcsfuse at --mount (default
# /mnt/recon_jax) on every worker; put --workdir under it.
#
# Flags:
#   --project=P --zone=Z --name=N    required
#   --accelerator=TYPE               default v3-8
#   --runtime=VERSION                default tpu-ubuntu2204-base
#   --no-create                      fail instead of creating a missing VM
#   --bucket=B [--mount=DIR]         mount gs://B on every worker
#   --dry-run                        print every gcloud command, run none
#   -h, --help                       this text
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "launch_tpu.sh: $*" >&2
  echo "run launch_tpu.sh --help for the flags" >&2
  exit 2
}

project="" zone="" name="" accelerator="v3-8"
runtime="tpu-ubuntu2204-base" create=1 bucket="" mount="/mnt/recon_jax"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --project=*) project="${1#*=}" ;;
    --zone=*) zone="${1#*=}" ;;
    --name=*) name="${1#*=}" ;;
    --accelerator=*) accelerator="${1#*=}" ;;
    --runtime=*) runtime="${1#*=}" ;;
    --no-create) create=0 ;;
    --bucket=*) bucket="${1#*=}" ;;
    --mount=*) mount="${1#*=}" ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown argument '$1' (the experiment goes after --)" ;;
  esac
  shift
done

[ -n "$project" ] || die "--project is required"
[ -n "$zone" ] || die "--zone is required"
[ -n "$name" ] || die "--name is required"
[[ "$accelerator" =~ ^v[0-9]+[a-z]*-[0-9]+$ ]] ||
  die "--accelerator='$accelerator' is not a TPU type such as v3-8"
[[ "$name" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] ||
  die "--name='$name' must be lower-case letters, digits and dashes"
[ $# -ge 1 ] || die "no experiment given: add -- --config=configs/FILE.py --workdir=DIR ..."
config=""
for arg in "$@"; do
  case "$arg" in
    --workdir=*://*) die "'$arg': use a local path (or a --bucket mount), not a URL" ;;
    --config=*) config="${arg#--config=}"; config="${config%%:*}" ;;
  esac
done
[ -n "$config" ] || die "no --config=configs/FILE.py after --"
[ -f "$config" ] || die "config '$config' is not a file of this checkout"
if [ -n "$bucket" ] && [[ ! "$mount" =~ ^/ ]]; then
  die "--mount='$mount' must be an absolute path"
fi

run() {
  if [ "$dry_run" = 1 ]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

gcloud_tpu=(gcloud compute tpus tpu-vm)
where=(--project="$project" --zone="$zone")
here="$(cd "$(dirname "$0")" && pwd)"

if [ "$dry_run" = 1 ]; then
  echo "# if '${gcloud_tpu[*]} describe $name ${where[*]}' finds no VM:"
  run "${gcloud_tpu[@]}" create "$name" --accelerator-type="$accelerator" \
      --version="$runtime" "${where[@]}"
elif ! "${gcloud_tpu[@]}" describe "$name" "${where[@]}" >/dev/null 2>&1; then
  [ "$create" = 1 ] || die "TPU VM '$name' not found in $zone (--no-create)"
  run "${gcloud_tpu[@]}" create "$name" --accelerator-type="$accelerator" \
      --version="$runtime" "${where[@]}"
fi

archive="$(mktemp -d)/recon_jax.tar.gz"
git -C "$here" archive --format=tar.gz -o "$archive" HEAD
run "${gcloud_tpu[@]}" scp "$archive" "$name:recon_jax.tar.gz" --worker=all \
    "${where[@]}"

quoted_cmd="$(printf '%q ' "$@")"
mount_cmd=""
if [ -n "$bucket" ]; then
  mount_cmd="sudo mkdir -p $mount && sudo chown \$USER $mount && \
(mountpoint -q $mount || gcsfuse --implicit-dirs $bucket $mount) && "
fi
remote_cmd="set -e; ${mount_cmd}rm -rf recon_jax && mkdir -p recon_jax && \
tar -xzf recon_jax.tar.gz -C recon_jax && cd recon_jax && \
pip install -q -U 'jax[tpu]' -e . && \
RECON_JAX_DISTRIBUTED=1 python -m recon_jax $quoted_cmd"
run "${gcloud_tpu[@]}" ssh "$name" --worker=all --command="$remote_cmd" \
    "${where[@]}"
