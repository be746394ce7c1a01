#!/usr/bin/env bash
# gcp-storage-emulator (Google Cloud Storage JSON API) on a free loopback port.
# Exports KITARU_TEST_GCS_URL (what STORAGE_EMULATOR_HOST should be set to).
source "$(dirname "$0")/lib.sh"
NAME=gcs
GCS_EMULATOR_VERSION=2026.7.19
DIR="$(service_dir "$NAME")"
PIDFILE="$DIR/pid"

answering() { curl -fsS -o /dev/null "http://127.0.0.1:$1/storage/v1/b?project=test"; }

up() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answering "$(cat "$DIR/port")" 2>/dev/null; then
    write_env "$NAME" "export KITARU_TEST_GCS_URL=http://127.0.0.1:$(cat "$DIR/port")"
    log "gcs emulator already up on port $(cat "$DIR/port")"; return 0
  fi
  stop_pidfile "$PIDFILE"
  local venv
  exec 9>"$KITARU_SERVICES_CACHE/venv-$NAME.lock"; flock 9
  venv="$(cached_venv "gcs-$GCS_EMULATOR_VERSION" "gcp-storage-emulator==$GCS_EMULATOR_VERSION")"
  flock -u 9
  local port; port="$(free_port)"
  echo "$port" > "$DIR/port"
  # Objects on disk, not in the emulator's memory: the tests write values of hundreds of MB.
  rm -rf "$DIR/data"; mkdir -p "$DIR/data"
  setsid "$venv/bin/gcp-storage-emulator" -d "$DIR/data" start -q --host 127.0.0.1 --port "$port" \
    > "$DIR/gcs.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_for 60 answering "$port"; then
    tail -30 "$DIR/gcs.log" >&2; stop_pidfile "$PIDFILE"; return 1
  fi
  write_env "$NAME" "export KITARU_TEST_GCS_URL=http://127.0.0.1:$port"
  log "gcs emulator up on http://127.0.0.1:$port"
}

case "${1:-}" in
  up) up ;;
  down) stop_pidfile "$PIDFILE"; rm -f "$KITARU_SERVICES_DIR/$NAME.env" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
