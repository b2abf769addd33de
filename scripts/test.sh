#!/usr/bin/env bash
# Every test: unit tests, and integration tests against a real Docker Engine that this script
# makes sure of (CI starts from nothing). Files in test/serial (they restart the engine) run
# alone after the others. Extra arguments select test files instead.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
npx --no-install tsc -p . --noEmit || exit 1

pass=0 fail=0 code=0
run() { # files...
  local out; out=$(mktemp)
  node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-3}" --test-timeout=900000 "$@" 2>&1 | tee "$out"
  local c=${PIPESTATUS[0]}
  [ "$c" -ne 0 ] && code=$c
  pass=$((pass + $(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)))
  fail=$((fail + $(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)))
  rm -f "$out"
}

if [ $# -gt 0 ]; then
  run "$@"
else
  run test/unit/*.test.ts test/integration/*.test.ts
  run test/serial/*.test.ts
fi
if [ $((pass + fail)) -eq 0 ]; then echo "test.sh: no test ran" >&2; code=1; fi
echo "$pass passed, $fail failed"
exit "$code"
