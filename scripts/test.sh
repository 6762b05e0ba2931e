#!/usr/bin/env bash
# The whole test suite: set-up, types, Python unit + kernel tests of the Salt content, then the
# TypeScript unit tests and the real-stack tests (real kube-apiserver/etcd, salt-master/api/minions
# in network namespaces, real packets). Usage: bash scripts/test.sh [node --test file globs...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. scripts/env.sh

echo "== typecheck"
tsc --noEmit -p tsconfig.json

echo "== monitoring: Prometheus config and alert rules (promtool; one test case per alert)"
promtool check config deploy/monitoring/prometheus/prometheus.example.yml
promtool test rules deploy/monitoring/prometheus/kube-salt-bridge.rules.test.yml

echo "== salt content (pytest)"
pytest -q -p no:cacheprovider test/salt

echo "== bridge: unit and real-stack tests (node --test)"
if [ $# -gt 0 ]; then files=("$@"); else files=('test/unit/**/*.test.ts' 'test/e2e/**/*.test.ts'); fi
# One file at a time: real-stack files each start their own kube-apiserver and Salt.
node --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 "${files[@]}"
