#!/usr/bin/env bash
# LocalStack community in host mode (the localstack-core package, no container image) on a
# free loopback port: S3, IAM, STS, ... Exports KITARU_TEST_LOCALSTACK_URL.
# localstack-core needs Python >= 3.12 (it uses PEP 695 syntax although its metadata says
# 3.10); set LOCALSTACK_PYTHON to choose the interpreter.
source "$(dirname "$0")/lib.sh"
NAME=localstack
LOCALSTACK_VERSION=2026.3.0
DIR="$(service_dir "$NAME")"
PIDFILE="$DIR/pid"

answering() { curl -fsS -o /dev/null "http://127.0.0.1:$1/_localstack/health"; }

find_python() {
  if [ -n "${LOCALSTACK_PYTHON:-}" ]; then echo "$LOCALSTACK_PYTHON"; return; fi
  local v c
  for v in 3.13 3.12; do
    c="$(pyenv prefix "$v" 2>/dev/null)/bin/python3" && [ -x "$c" ] && { echo "$c"; return; }
    c="$(command -v "python$v" || true)" && [ -n "$c" ] && { echo "$c"; return; }
  done
  echo "localstack-core needs Python >= 3.12: install one or set LOCALSTACK_PYTHON" >&2
  return 1
}

up() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answering "$(cat "$DIR/port")" 2>/dev/null; then
    write_env "$NAME" "export KITARU_TEST_LOCALSTACK_URL=http://127.0.0.1:$(cat "$DIR/port")"
    log "localstack already up on port $(cat "$DIR/port")"; return 0
  fi
  stop_pidfile "$PIDFILE"
  local py venv
  py="$(find_python)"
  exec 9>"$KITARU_SERVICES_CACHE/venv-$NAME.lock"; flock 9
  # Pins: cbor2 6 dropped cbor2._decoder, pyOpenSSL 26 dropped X509.add_extensions (both
  # used by this localstack release); service_identity is needed by its gateway.
  venv="$(VENV_PYTHON="$py" cached_venv "localstack-$LOCALSTACK_VERSION" \
    "localstack-core[runtime]==$LOCALSTACK_VERSION" "cbor2<6" "pyopenssl==25.3.0" \
    "cryptography>=45.0.7,<47" service_identity)"
  flock -u 9
  local port; port="$(free_port)"
  echo "$port" > "$DIR/port"
  rm -rf "$DIR/fs"; mkdir -p "$DIR/fs"
  # OVERRIDE_IN_DOCKER=0: this machine looks like a container to LocalStack, which would
  # then keep state in /var/lib/localstack; FILESYSTEM_ROOT keeps it in our directory.
  OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$DIR/fs" GATEWAY_LISTEN="127.0.0.1:$port" \
  DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    setsid "$venv/bin/python" -m localstack.runtime.main > "$DIR/localstack.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_for 120 answering "$port"; then
    tail -30 "$DIR/localstack.log" >&2; stop_pidfile "$PIDFILE"; return 1
  fi
  write_env "$NAME" "export KITARU_TEST_LOCALSTACK_URL=http://127.0.0.1:$port"
  log "localstack up on http://127.0.0.1:$port"
}

case "${1:-}" in
  up) up ;;
  down) stop_pidfile "$PIDFILE"; rm -f "$KITARU_SERVICES_DIR/$NAME.env" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
