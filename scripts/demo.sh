#!/usr/bin/env bash
# The main job on the shipped examples: converge examples/bottles.d, then show the status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
state=${BOTTLED_STATE_DIR:-$PWD/.state/demo}
set +e
./bin/bottled reconcile --once --dir examples/bottles.d --state-dir "$state" "$@"
code=$?
set -e
./bin/bottled status --state-dir "$state"
exit $code
