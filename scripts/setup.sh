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
# The GitOps tests run an ssh server of their own on loopback. Without a system sshd, Debian's
# openssh-server package is unpacked into .cache/ (never installed: no service is started).
if [ ! -x /usr/sbin/sshd ] && [ ! -x .cache/tools/openssh/usr/sbin/sshd ] && command -v apt-get >/dev/null; then
  echo "setup: unpacking openssh-server into .cache/tools (for the tests' own loopback git server)" >&2
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download openssh-server >/dev/null 2>&1 ) \
    || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null && ( cd "$tmp" && apt-get download openssh-server >/dev/null ); } || true
  if ls "$tmp"/openssh-server_*.deb >/dev/null 2>&1; then
    mkdir -p .cache/tools/openssh && dpkg -x "$tmp"/openssh-server_*.deb .cache/tools/openssh
  fi
  rm -rf "$tmp"
fi
# The swarm tests serve their images from Debian's docker-registry on a lab bridge (never a
# registry outside): unpacked into .cache/ the same way, no service installed.
if [ ! -x /usr/bin/docker-registry ] && [ ! -x .cache/tools/registry/usr/bin/docker-registry ] && command -v apt-get >/dev/null; then
  echo "setup: unpacking docker-registry into .cache/tools (for the swarm tests' lab registry)" >&2
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download docker-registry >/dev/null 2>&1 ) \
    || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null && ( cd "$tmp" && apt-get download docker-registry >/dev/null ); } || true
  if ls "$tmp"/docker-registry_*.deb >/dev/null 2>&1; then
    mkdir -p .cache/tools/registry && dpkg -x "$tmp"/docker-registry_*.deb .cache/tools/registry
  fi
  rm -rf "$tmp"
fi
bash scripts/build-images.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
