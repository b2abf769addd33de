#!/usr/bin/env bash
# Every test: unit tests, and integration tests against a real Docker Engine that this script
# makes sure of (CI starts from nothing). Extra arguments select test files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx --no-install tsc -p . --noEmit
if [ $# -gt 0 ]; then files=("$@"); else files=(test/unit/*.test.ts test/integration/*.test.ts); fi
out=$(mktemp)
set +e
node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-3}" --test-timeout=600000 "${files[@]}" 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
set -e
if grep -q '^# tests 0$' "$out"; then echo "test.sh: no test ran" >&2; code=1; fi
rm -f "$out"
exit "$code"
