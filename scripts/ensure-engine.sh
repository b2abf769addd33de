#!/usr/bin/env bash
# Make sure a Docker Engine answers. Uses DOCKER_HOST or the default socket when one answers;
# otherwise, as root on Debian, installs docker.io + iptables and starts dockerd in the
# background. Idempotent and fast when an engine already answers.
set -euo pipefail

log() { echo "ensure-engine: $*" >&2; }

sock_from_host() {
  case "${DOCKER_HOST:-}" in
    unix://*) echo "${DOCKER_HOST#unix://}" ;;
    "") echo /var/run/docker.sock ;;
    *) echo "" ;;
  esac
}

answers() {
  local sock; sock=$(sock_from_host)
  if [ -n "$sock" ] && command -v curl >/dev/null 2>&1; then
    [ -S "$sock" ] && curl -fsS --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
  elif [ -n "$sock" ]; then
    [ -S "$sock" ] && timeout 5 docker -H "unix://$sock" version >/dev/null 2>&1
  else
    # tcp:// or other: let the client decide
    docker version >/dev/null 2>&1
  fi
}

if answers; then exit 0; fi

if [ -n "${DOCKER_HOST:-}" ] && [ "$(sock_from_host)" != /var/run/docker.sock ]; then
  log "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
  exit 1
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  log "no Docker Engine answers at /var/run/docker.sock and this is not root on Debian:"
  log "start Docker yourself (or set DOCKER_HOST) and run this again"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io and iptables from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/bottled-dockerd.log)"
  nohup dockerd >/var/log/bottled-dockerd.log 2>&1 </dev/null &
  disown || true
fi

for _ in $(seq 1 120); do
  if answers; then log "engine is up"; exit 0; fi
  sleep 0.5
done
log "dockerd did not answer within 60s; see /var/log/bottled-dockerd.log"
exit 1
