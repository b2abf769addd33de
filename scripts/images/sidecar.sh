#!/bin/sh
# Test sidecar: serves HTTP on each port of $LISTEN_PORTS (default 8888) and appends one line
# per SIGHUP / SIGUSR1 to $SIGNAL_LOG: "<SIGNAL> <content of $WATCH_FILE, newlines as |>".
# `wait` is interruptible, so a trap runs at once instead of after the next sleep.
LOG=${SIGNAL_LOG:-/tmp/signals.log}
record() {
  content=""
  [ -n "${WATCH_FILE:-}" ] && content=$(tr '\n' '|' < "$WATCH_FILE" 2>/dev/null)
  echo "$1 $content" >> "$LOG"
}
trap 'record SIGHUP' HUP
trap 'record SIGUSR1' USR1
trap 'exit 0' TERM INT
for p in ${LISTEN_PORTS:-8888}; do httpd -p "$p" -h /www; done
: >> "$LOG"
while :; do sleep 3600 & wait $!; done
