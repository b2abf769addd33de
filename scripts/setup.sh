#!/usr/bin/env bash
# Everything bottled needs on a fresh machine: a Docker Engine, the local images, the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-engine.sh
# The engine-restart tests start throwaway engines in network namespaces (ip, nsenter).
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing iproute2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null; }
fi
bash scripts/build-images.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
