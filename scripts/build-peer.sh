#!/usr/bin/env bash
# Builds the peer the benchmark compares the bridge with: stone/k8s-node-external-ip-watcher
# (Go; a client-go Node informer → text/template → output file → command), at a pinned commit.
# Its source is not part of this repository and nothing of it is committed here.
#
#   bash scripts/build-peer.sh [SOURCE] [OUT]
#
# SOURCE: a git directory holding the pinned commit (a clone, or a bare mirror); default: a
#         clone from GitHub into .cache/peer/src (network needed once).
# OUT:    where the binary goes; default .cache/peer/k8s-node-external-ip-watcher (gitignored).
#         Then: PEER_BIN=<OUT> npm run bench.
#
# Their go.mod at that commit lacks the github.com/prometheus/client_golang require that main.go
# imports (it does not build as published); the build adds it with `go get` in a temporary copy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PEER_REPO=https://github.com/stone/k8s-node-external-ip-watcher
PEER_COMMIT=3f8967e6f4a404d9dc76a15d3038d587854ae698
PROM_VERSION=v1.23.2
src=${1:-}
out=${2:-$PWD/.cache/peer/k8s-node-external-ip-watcher}
command -v go >/dev/null || { echo "build-peer: go is not on PATH" >&2; exit 2; }
if [ -z "$src" ]; then
  src=$PWD/.cache/peer/src
  [ -d "$src" ] || git clone --quiet "$PEER_REPO" "$src"
fi
git -C "$src" cat-file -e "$PEER_COMMIT^{commit}" 2>/dev/null ||
  { echo "build-peer: $src does not hold commit $PEER_COMMIT" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$src" archive "$PEER_COMMIT" | tar -x -C "$tmp"
mkdir -p "$(dirname "$out")"
(
  cd "$tmp"
  go get "github.com/prometheus/client_golang/prometheus@$PROM_VERSION" "github.com/prometheus/client_golang/prometheus/promhttp@$PROM_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X main.version=${PEER_COMMIT:0:12}" -o "$tmp/peer" .
)
mv "$tmp/peer" "$out"
echo "$out"
