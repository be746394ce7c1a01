#!/usr/bin/env bash
# Azurite's Blob service (the npm package) on a free loopback port.
# Exports KITARU_TEST_AZURITE_CONNECTION_STRING and KITARU_TEST_AZURITE_URL (the blob
# endpoint of the emulator's well-known development account).
source "$(dirname "$0")/lib.sh"
NAME=azurite
AZURITE_VERSION=3.37.0
DIR="$(service_dir "$NAME")"
PIDFILE="$DIR/pid"
# Azurite's fixed development account; the key is public and only valid for the emulator.
ACCOUNT=devstoreaccount1
ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

answering() {
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/$ACCOUNT?comp=list" | grep -qE '^[2-4][0-9][0-9]$'
}

export_env() {
  local url="http://127.0.0.1:$1/$ACCOUNT"
  write_env "$NAME" \
    "export KITARU_TEST_AZURITE_URL=$url" \
    "export KITARU_TEST_AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$ACCOUNT_KEY;BlobEndpoint=$url;'"
}

up() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answering "$(cat "$DIR/port")" 2>/dev/null; then
    export_env "$(cat "$DIR/port")"
    log "azurite already up on port $(cat "$DIR/port")"; return 0
  fi
  stop_pidfile "$PIDFILE"
  local pkg="$KITARU_SERVICES_CACHE/npm/azurite-$AZURITE_VERSION"
  exec 9>"$KITARU_SERVICES_CACHE/npm-$NAME.lock"; flock 9
  if [ ! -x "$pkg/node_modules/.bin/azurite-blob" ]; then
    rm -rf "$pkg"; mkdir -p "$pkg"
    echo '{"private":true}' > "$pkg/package.json"
    (cd "$pkg" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION") >&2
  fi
  flock -u 9
  local port; port="$(free_port)"
  echo "$port" > "$DIR/port"
  rm -rf "$DIR/data"; mkdir -p "$DIR/data"
  # --skipApiVersionCheck: newer azure-storage-blob releases send x-ms-version values this
  # Azurite does not know yet. --loose: ignore headers it does not implement.
  setsid "$pkg/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --location "$DIR/data" --skipApiVersionCheck --loose --disableProductStyleUrl \
    > "$DIR/azurite.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_for 60 answering "$port"; then
    tail -30 "$DIR/azurite.log" >&2; stop_pidfile "$PIDFILE"; return 1
  fi
  export_env "$port"
  log "azurite up on http://127.0.0.1:$port/$ACCOUNT"
}

case "${1:-}" in
  up) up ;;
  down) stop_pidfile "$PIDFILE"; rm -f "$KITARU_SERVICES_DIR/$NAME.env" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
