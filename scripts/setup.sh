#!/usr/bin/env bash
# Everything bottled needs on a fresh machine: a Docker Engine, the local images, the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-engine.sh
bash scripts/build-images.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
