#!/usr/bin/env bash
# The live demo (README quick start). Does its own set-up, then runs scripts/demo.ts.
# Pass --keep to leave the stack running until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. scripts/env.sh
exec node scripts/demo.ts "$@"
