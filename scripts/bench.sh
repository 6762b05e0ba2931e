#!/usr/bin/env bash
# The benchmark (`npm run bench [-- options]`): speed, memory and latency measured on this machine,
# written to bench/results.json and bench/RESULTS.md. Does the set-up first (so the project's
# Node 22 is used even when the machine's node is older), then runs bench/run.ts with --expose-gc.
# Options: --no-e2e, --e2e-iterations N, --pulls N, --probe stream|harness, --min-interval-ms N,
# --max-delay-ms N, --no-write (see bench/run.ts).
# `npm run bench -- scale [--nodes N] [--runs R] [--idle-ms MS] [--baseline-root DIR] [--no-write]`
# runs only the scale part instead (bench/scale.ts: the bridge process against N realistic Nodes on
# a real kube-apiserver, RSS and time to the first full output, optionally against an older
# checkout; section 5 of RESULTS.md). Heavy at 5,000 nodes: run it under flock /tmp/ksb-realstack.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
. scripts/env.sh
if [ "${1:-}" = scale ]; then
  shift
  exec node bench/scale.ts "$@"
fi
exec node --expose-gc bench/run.ts "$@"
