#!/usr/bin/env bash
# Runs one recon_jax experiment on every worker of a Cloud TPU VM.
#
#   ./launch_tpu.sh --project=my-project --zone=europe-west4-a --name=cnn12 \
#       --accelerator=v3-8 -- \
#       --config=configs/cnn12_simclr.py:paper \
#       --workdir=/home/$USER/runs/simclr
#
# Creates the TPU VM if it does not exist (or reuses it), ships this
# checkout's git HEAD to ~/recon_jax_code/<commit> on every worker (a new
# folder per commit; nothing on the workers is ever deleted), makes a venv
# there with python3 -m venv, installs jax[tpu] at the version installed
# here (else setup.py's range) and the package, and runs
# `python -m recon_jax <the flags after -->` on all workers at once with
# RECON_JAX_DISTRIBUTED=1 (recon_jax then calls jax.distributed.initialize(),
# which finds the other hosts of a multi-host slice by itself). Every
# worker's output is streamed back. Re-running the same command resumes the
# run from the checkpoints in its work dir.
#
# --workdir must be an absolute path outside ~/recon_jax_code (recon_jax
# refuses gs:// URLs). One host (v2-8, v3-8, v4-8, v5litepod-8, v5p-8,
# v6e-8) needs nothing more. A multi-host slice (more than 8 in the type's
# number, e.g. v3-32) needs one shared directory: --bucket=B mounts gs://B
# with gcsfuse (installed if missing) at --mount (default /mnt/recon_jax) on
# every worker; put --workdir under it.
#
# --config is a path inside this checkout (it runs from the code folder).
# The config file, configs/, recon_jax/ and setup.py must be committed: HEAD
# is what runs. --ship-working-tree ships the working tree instead (tracked
# and untracked files that git does not ignore).
#
# Flags:
#   --project=P --zone=Z --name=N    required
#   --accelerator=TYPE               default v3-8 (also v4-8, v5litepod-8,
#                                    v5p-8, v6e-8, ...)
#   --runtime=VERSION                default from the accelerator:
#                                    v2/v3/v4 tpu-ubuntu2204-base,
#                                    v5litepod v2-alpha-tpuv5-lite,
#                                    v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
#   --spot                           create the VM as a Spot VM
#   --no-create                      fail instead of creating a missing VM
#   --bucket=B [--mount=DIR]         mount gs://B on every worker
#   --ship-working-tree              ship uncommitted changes too
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

project="" zone="" name="" accelerator="v3-8" runtime="" spot=0
create=1 bucket="" mount="/mnt/recon_jax" ship_working_tree=0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --project=*) project="${1#*=}" ;;
    --zone=*) zone="${1#*=}" ;;
    --name=*) name="${1#*=}" ;;
    --accelerator=*) accelerator="${1#*=}" ;;
    --runtime=*) runtime="${1#*=}" ;;
    --spot) spot=1 ;;
    --no-create) create=0 ;;
    --bucket=*) bucket="${1#*=}"; bucket="${bucket#gs://}"; bucket="${bucket%/}" ;;
    --mount=*) mount="${1#*=}"; mount="${mount%/}" ;;
    --ship-working-tree) ship_working_tree=1 ;;
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
[[ "$accelerator" =~ ^v[0-9]+[a-z]*-([0-9]+)$ ]] ||
  die "--accelerator='$accelerator' is not a TPU type such as v3-8"
size="${BASH_REMATCH[1]}"
if [ -z "$runtime" ]; then
  case "$accelerator" in
    v2-*|v3-*|v4-*) runtime="tpu-ubuntu2204-base" ;;
    v5litepod-*) runtime="v2-alpha-tpuv5-lite" ;;
    v5p-*) runtime="v2-alpha-tpuv5" ;;
    v6e-*) runtime="v2-alpha-tpuv6e" ;;
    v5e-*) die "--accelerator='$accelerator': Cloud TPU names v5e slices v5litepod-N (e.g. v5litepod-8)" ;;
    *) die "--accelerator='$accelerator': no default runtime known; pass --runtime=VERSION" ;;
  esac
fi
[[ "$name" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] ||
  die "--name='$name' must be lower-case letters, digits and dashes"
if [ -n "$bucket" ]; then
  [[ "$bucket" =~ ^[a-z0-9][-a-z0-9_.]*[a-z0-9]$ ]] ||
    die "--bucket='$bucket' is not a bucket name such as my-bucket"
  [[ "$mount" =~ ^/ ]] || die "--mount='$mount' must be an absolute path"
  [[ "$mount" =~ ^[-A-Za-z0-9_./]+$ ]] ||
    die "--mount='$mount': use letters, digits and - _ . / only"
fi
[ $# -ge 1 ] || die "no experiment given: add -- --config=configs/FILE.py --workdir=DIR ..."

config="" workdir=""
for arg in "$@"; do
  case "$arg" in
    --workdir=*://*) die "'$arg': use a local path (or a --bucket mount), not a URL" ;;
    --workdir=*) workdir="${arg#--workdir=}" ;;
    --config=*) config="${arg#--config=}"; config="${config%%:*}" ;;
    --workdir|-workdir|--config|-config|-workdir=*|-config=*)
      die "'$arg': write --workdir=DIR and --config=FILE (two dashes, with =)" ;;
  esac
done
[ -n "$config" ] || die "no --config=configs/FILE.py after --"
[ -n "$workdir" ] || die "no --workdir=/absolute/path after --"

# The code runs from ~/recon_jax_code/<version> on the workers, so a relative
# work dir would land inside the code folder; it must be absolute and
# outside it, and the code folder is never deleted either.
code_root="recon_jax_code"
[[ "$workdir" =~ ^/ ]] ||
  die "--workdir='$workdir' is relative: give an absolute path outside ~/$code_root (e.g. /home/\$USER/runs/NAME)"
case "/$workdir/" in
  */"$code_root"/*) die "--workdir='$workdir' is inside the code folder ~/$code_root: use another absolute path" ;;
  */../*|*/./*) die "--workdir='$workdir': write the path without . or .. parts" ;;
esac
if [ "$size" -gt 8 ]; then
  case "$workdir/" in
    "$mount"/*) [ -n "$bucket" ] ||
        die "$accelerator is a multi-host slice: add --bucket=B so $mount is shared by all workers" ;;
    *) die "$accelerator is a multi-host slice: its work dir must be shared; add --bucket=B and put --workdir under --mount ($mount)" ;;
  esac
fi

here="$(cd "$(dirname "$0")" && pwd)"
git -C "$here" rev-parse --git-dir >/dev/null 2>&1 ||
  die "$here is not a git checkout (launch_tpu.sh ships git HEAD)"
case "$config" in
  /*) die "--config='$config': give the path inside this checkout (e.g. configs/FILE.py)" ;;
esac
[ -f "$here/$config" ] || die "config '$config' is not a file of this checkout"

# Ship exactly what runs: HEAD, unless the working tree is asked for.
if [ "$ship_working_tree" = 0 ]; then
  dirty="$(git -C "$here" status --porcelain --untracked-files=all -- \
      "$config" configs recon_jax setup.py)"
  if [ -n "$dirty" ]; then
    echo "launch_tpu.sh: uncommitted changes would not run on the TPU (HEAD is shipped):" >&2
    printf '  %s\n' "${dirty//$'\n'/$'\n'  }" >&2
    die "commit them, or add --ship-working-tree to ship the working tree"
  fi
fi

# The jax the package is tested with: the one installed here, else setup.py's
# range.
jax_version=""
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then
    jax_version="$("$py" -c 'import importlib.metadata as m; print(m.version("jax"))' 2>/dev/null)" || jax_version=""
    [ -n "$jax_version" ] && break
  fi
done
if [[ "$jax_version" =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
  jax_spec="jax[tpu]==$jax_version"
else
  jax_range="$(sed -n 's/.*"jax\([<>=!~][^"]*\)".*/\1/p' "$here/setup.py" | head -n 1)"
  [ -n "$jax_range" ] ||
    die "no jax installed here and no jax version range in setup.py"
  jax_spec="jax[tpu]$jax_range"
fi
min_python="$(sed -n 's/.*python_requires *= *">=\([0-9]*\.[0-9]*\)".*/\1/p' "$here/setup.py" | head -n 1)"
[[ "$min_python" =~ ^[0-9]+\.[0-9]+$ ]] || min_python="3.10"

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
create_cmd=("${gcloud_tpu[@]}" create "$name" --accelerator-type="$accelerator"
            --version="$runtime")
if [ "$spot" = 1 ]; then create_cmd+=(--spot); fi
create_cmd+=("${where[@]}")

if [ "$dry_run" = 1 ]; then
  echo "# if '${gcloud_tpu[*]} describe $name ${where[*]}' finds no VM:"
  run "${create_cmd[@]}"
elif state="$("${gcloud_tpu[@]}" describe "$name" "${where[@]}" \
              --format='value(state)' 2>/dev/null)"; then
  case "$state" in
    PREEMPTED|TERMINATED)
      die "TPU VM '$name' is $state; delete it ('${gcloud_tpu[*]} delete $name ${where[*]}') and rerun this command (work dirs under --bucket survive; the VM's own disk does not)" ;;
  esac
else
  [ "$create" = 1 ] || die "TPU VM '$name' not found in $zone (--no-create)"
  run "${create_cmd[@]}"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
commit="$(git -C "$here" rev-parse --short=12 HEAD)"
if [ "$ship_working_tree" = 0 ]; then
  version="$commit"
  git -C "$here" archive --format=tar.gz -o "$tmp/code.tar.gz" HEAD
else
  # Tracked files that still exist plus untracked files git does not ignore;
  # the folder's name is a hash of their paths and contents.
  git -C "$here" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -f "$here/$f" ] || [ -L "$here/$f" ]; then printf '%s\0' "$f"; fi
    done | sort -zu > "$tmp/files"
  tree_hash="$(cd "$here" && tr '\0' '\n' < "$tmp/files" |
    git hash-object --stdin-paths | paste -d ' ' - <(tr '\0' '\n' < "$tmp/files") |
    git hash-object --stdin | cut -c1-12)"
  version="$commit-wt-$tree_hash"
  tar -czf "$tmp/code.tar.gz" -C "$here" --null -T "$tmp/files"
fi
code="$code_root/$version"
remote_archive="$code_root-$version.tar.gz"
echo "# ships $([ "$ship_working_tree" = 1 ] && echo "the working tree" || echo "HEAD") to ~/$code on every worker; $jax_spec"
run "${gcloud_tpu[@]}" scp "$tmp/code.tar.gz" "$name:$remote_archive" \
    --worker=all "${where[@]}"

# The command each worker runs (one line; every value quoted with %q).
q() { printf '%q' "$1"; }
min_tuple="${min_python/./, }"
gcsfuse_install="export GCSFUSE_REPO=gcsfuse-\$(lsb_release -c -s) && \
echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt \$GCSFUSE_REPO main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null && \
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null && \
sudo apt-get update -q && sudo apt-get install -y -q gcsfuse"
steps=(
  "set -euo pipefail"
  "host=\$(hostname)"
  "python3 -c 'import sys; sys.exit(sys.version_info < ($min_tuple))' || { echo \"launch_tpu.sh: \$host: the TPU image's python3 is \$(python3 -V 2>&1); recon_jax needs python >= $min_python: choose a newer --runtime\" >&2; exit 3; }"
  "code=\$HOME/$(q "$code")"
  "workdir=$(q "$workdir")"
  "case \"\$(realpath -m -- \"\$workdir\")/\" in \"\$HOME/$code_root/\"*) echo \"launch_tpu.sh: \$host: --workdir=\$workdir is inside ~/$code_root\" >&2; exit 2;; esac"
)
if [ -n "$bucket" ]; then
  steps+=(
    "command -v gcsfuse >/dev/null || { echo \"launch_tpu.sh: \$host: installing gcsfuse\" && $gcsfuse_install; } || { echo \"launch_tpu.sh: \$host: could not install gcsfuse; install it by hand (https://cloud.google.com/storage/docs/cloud-storage-fuse/install) and rerun\" >&2; exit 4; }"
    "mountpoint -q $(q "$mount") || { sudo mkdir -p $(q "$mount") && sudo chown \"\$USER\" $(q "$mount") && gcsfuse --implicit-dirs $(q "$bucket") $(q "$mount"); }"
  )
fi
steps+=(
  "mkdir -p \"\$code\" && tar -xzf $(q "$remote_archive") -C \"\$code\" && rm -f $(q "$remote_archive")"
  "[ -x \"\$code/.venv/bin/pip\" ] || python3 -m venv --clear \"\$code/.venv\" || { sudo apt-get update -q && sudo apt-get install -y -q python3-venv && python3 -m venv --clear \"\$code/.venv\"; }"
  "\"\$code/.venv/bin/pip\" install -q $(q "$jax_spec") -f https://storage.googleapis.com/jax-releases/libtpu_releases.html -e \"\$code\""
  "cd \"\$code\""
  "RECON_JAX_DISTRIBUTED=1 exec .venv/bin/python -m recon_jax $(printf '%q ' "$@")"
)
remote_cmd=""
for step in "${steps[@]}"; do
  remote_cmd+="${remote_cmd:+; }$step"
done
if [ "$dry_run" = 1 ]; then
  echo "# on every worker, the --command below:"
  printf '#   %s\n' "${steps[@]}"
fi
run "${gcloud_tpu[@]}" ssh "$name" --worker=all --command="$remote_cmd" \
    "${where[@]}"
