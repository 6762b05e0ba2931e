#!/usr/bin/env bash
# The benchmark (`npm run bench [-- options]`): speed, memory and latency measured on this machine,
# written to bench/results/<YYYY-MM-DD>.json and .md (machine, versions, command, load average per
# part; bench/RESULTS.md is the analysis that links them). Does the set-up first (so the project's
# Node 22 is used even when the machine's node is older), then runs bench/run.ts with --expose-gc.
# The peer side by side (stone/k8s-node-external-ip-watcher) runs when PEER_BIN names its binary:
# `PEER_BIN=$(bash scripts/build-peer.sh) npm run bench`; without it: "no peer binary given:
# skipping the peer". `--quick` runs small sizes, fails unless every figure was produced and writes
# to a temporary directory only (CI runs it). Options: --quick, --no-e2e, --e2e-iterations N,
# --pulls N, --idle-s S, --schedule-intervals S,S|none, --schedule-trials N,N, --probe stream|harness,
# --min-interval-ms N, --max-delay-ms N, --resync-s N, --burst-nodes N,
# --peer-bin PATH, --peer-sizes N,N, --peer-runs R, --peer-changes N, --peer-heartbeats N,
# --bridge-entry dist|src, --bridge-root DIR, --bridge-commit C, --no-fanout, --results-dir DIR,
# --no-write (see bench/run.ts). Run it under flock /tmp/ksb-realstack.lock (it starts real stacks).
# `npm run bench -- scale [--nodes N] [--runs R] [--idle-ms MS] [--baseline-root DIR] [--no-write]`
# runs only the scale part instead (bench/scale.ts: the bridge process against N realistic Nodes on
# a real kube-apiserver, RSS and time to the first full output, optionally against an older
# checkout; section 5 of RESULTS.md). Heavy at 5,000 nodes: run it under flock /tmp/ksb-realstack.lock.
# `npm run bench -- fanout [--quick] [--minions N] [--trials T] [--cpu-sizes A,B,C] [--cpu-trials K]
# [--bytes-nodes N] [--parts fanout,cpu,bytes] [--minion-threads] [--no-write]` runs only the fan-out part (bench/fanout.ts:
# N minions in netns, join latency until every minion accepts, minion CPU per apply per backend, bytes
# per minion per change; bench/fanout.json). Heavy: run it under flock /tmp/ksb-realstack.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
. scripts/env.sh
if [ "${1:-}" = scale ]; then
  shift
  exec node bench/scale.ts "$@"
fi
if [ "${1:-}" = fanout ]; then
  shift
  exec node bench/fanout.ts "$@"
fi
exec node --expose-gc bench/run.ts "$@"
