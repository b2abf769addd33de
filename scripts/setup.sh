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
# Debian packages some tests need a program from, unpacked into .cache/tools (never installed:
# no service is started). unpack PACKAGE DIR BIN [SYSTEM_BIN] WHY
unpack() {
  local pkg=$1 dir=$2 bin=$3 system=${4:-} why=$5
  { [ -n "$system" ] && [ -x "$system" ]; } && return 0
  [ -x ".cache/tools/$dir/$bin" ] && return 0
  command -v apt-get >/dev/null || return 0
  echo "setup: unpacking $pkg into .cache/tools ($why)" >&2
  local tmp; tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) \
    || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null && ( cd "$tmp" && apt-get download "$pkg" >/dev/null ); } || true
  if ls "$tmp"/"$pkg"_*.deb >/dev/null 2>&1; then
    mkdir -p ".cache/tools/$dir" && dpkg -x "$tmp"/"$pkg"_*.deb ".cache/tools/$dir"
  fi
  rm -rf "$tmp"
}
# The GitOps tests run an ssh server of their own on loopback.
unpack openssh-server openssh usr/sbin/sshd /usr/sbin/sshd "for the tests' own loopback git server"
# The swarm tests serve their images from Debian's docker-registry on a lab bridge (never a
# registry outside), as real users distribute images to a swarm.
unpack docker-registry registry usr/bin/docker-registry /usr/bin/docker-registry "for the swarm tests' lab registry"
# The gVisor tests register Debian's runsc with a lab engine of their own (never the host's).
unpack runsc runsc usr/bin/runsc /usr/bin/runsc "for the gVisor tests' lab engine"
bash scripts/build-images.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
