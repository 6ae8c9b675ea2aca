#!/usr/bin/env bash
# Installs what the test suite needs (README command 2 runs this first):
# the package with its `test` extra, and from Debian's packages shellcheck
# (launch_tpu.sh's lint) and Chromium (the offline page's browser test).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pip install -q -e ".[test]"
