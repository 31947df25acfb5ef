#!/usr/bin/env bash
# ensure-dynalite.sh DIR — install dynalite (the DynamoDB implementation the tests and
# `make run PORTICO_STORE=dynamodb` use) into DIR/node_modules at the versions pinned by
# tools/dynalite/package-lock.json, with the machine's npm. Installs Debian's nodejs and
# npm first when npm is missing (apt-get, as root or with sudo). No install script runs:
# dynalite runs in memory, which needs no native module. DIR/run.js (from tools/dynalite)
# is what runs it.
set -euo pipefail

dir=${1:?usage: ensure-dynalite.sh DIR}
src=$(cd "$(dirname "$0")/../tools/dynalite" && pwd)

if [[ -f $dir/node_modules/dynalite/cli.js ]] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  cp "$src/run.js" "$dir/run.js"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "dynalite: installing Debian's nodejs and npm"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q nodejs npm >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q nodejs npm >/dev/null
  }
fi

mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
echo "dynalite: npm ci into $dir"
npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null
cp "$src/run.js" "$dir/run.js"
test -f "$dir/node_modules/dynalite/cli.js"
