#!/usr/bin/env bash
# Build the local images that the examples and tests use, from Debian's busybox-static with
# `docker import` (no registry is needed or reachable). Idempotent: an image whose recipe
# label matches is kept.
#   bottled/busybox:local  plain image; CMD sleeps forever and exits on SIGTERM
#   bottled/sidecar:local  PID 1 script that serves HTTP on $LISTEN_PORTS and records each
#                          SIGHUP/SIGUSR1 (with the content of $WATCH_FILE at that moment)
#                          to $SIGNAL_LOG (default /tmp/signals.log)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

bb=""
for c in /bin/busybox /usr/bin/busybox; do
  if [ -x "$c" ] && file -L "$c" 2>/dev/null | grep -q 'statically linked'; then bb=$c; break; fi
done
if [ -z "$bb" ] && dpkg -s busybox-static >/dev/null 2>&1; then bb=/bin/busybox; fi
if [ -z "$bb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build-images: installing busybox-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends busybox-static >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
    bb=/bin/busybox
  else
    echo "build-images: need a static busybox (apt-get install busybox-static)" >&2; exit 1
  fi
fi

sidecar_script=$(cat "$here/images/sidecar.sh")
recipe=$( { sha256sum "$bb" | cut -d' ' -f1; cat "$here/images/sidecar.sh" "$0"; } | sha256sum | cut -c1-16)

build() { # name cmd-json [extra docker import --change]
  local name=$1 cmd=$2 extra=${3:-}
  if [ "$(docker image inspect -f '{{index .Config.Labels "bottled.image-recipe"}}' "$name" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/www" "$root/etc" "$root/records"
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  echo ok > "$root/www/index.html"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnode:x:1000:\n' > "$root/etc/group"
  mkdir -p "$root/home/node" && chown 1000:1000 "$root/home/node"
  chmod 1777 "$root/tmp"
  printf '%s\n' "$sidecar_script" > "$root/bin/sidecar"; chmod 755 "$root/bin/sidecar"
  tar -C "$root" -cf - . | docker import \
    -c "CMD $cmd" -c 'ENV PATH=/bin' -c "LABEL bottled.image-recipe=$recipe" ${extra:+-c "$extra"} - "$name" >/dev/null
  rm -rf "$root"
  echo "build-images: built $name" >&2
}

build bottled/busybox:local '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
build bottled/sidecar:local '["/bin/sidecar"]'
# An agent image that runs as a named non-root user (USER node, uid 1000), as real agent images do.
build bottled/busybox-node:local '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' 'USER node'
