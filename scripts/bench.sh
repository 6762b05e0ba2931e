#!/usr/bin/env bash
# The benchmark (`npm run bench [-- options]`): speed, memory and latency measured on this machine,
# written to bench/results.json and bench/RESULTS.md. Does the set-up first (so the project's
# Node 22 is used even when the machine's node is older), then runs bench/run.ts with --expose-gc.
# Options: --no-e2e, --e2e-iterations N, --pulls N, --probe stream|harness, --min-interval-ms N,
# --max-delay-ms N, --no-write (see bench/run.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
. scripts/env.sh
exec node --expose-gc bench/run.ts "$@"
