#!/usr/bin/env bash
# fuzz.sh [FUZZTIME] — run every native fuzz target of every module for FUZZTIME each
# (default 30s). Targets are discovered with `go test -list`, never listed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
for mod in $(find . -name go.mod -not -path './bin/*' -not -path './.git/*' -exec dirname {} \; | sort); do
  for pkg in $(cd "$mod" && go list ./...); do
    for target in $(cd "$mod" && go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "== $pkg $target ($fuzztime)"
      (cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg")
    done
  done
done
