#!/usr/bin/env bash
# moto's server: S3, IAM, STS, ECR (API only), Batch, Logs, ... on a free loopback port.
# Exports KITARU_TEST_MOTO_URL. Batch jobs submitted to it run as containers on the Docker
# engine at DOCKER_HOST, read when moto starts; scripts/services/docker.sh starts that
# engine (in parallel, so the socket may appear after moto is up - moto only dials it
# when a job is submitted).
source "$(dirname "$0")/lib.sh"
NAME=moto
MOTO_VERSION=5.2.5
DIR="$(service_dir "$NAME")"
PIDFILE="$DIR/pid"

answering() { curl -fsS -o /dev/null "http://127.0.0.1:$1/moto-api/data.json"; }

up() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answering "$(cat "$DIR/port")" 2>/dev/null; then
    write_env "$NAME" "export KITARU_TEST_MOTO_URL=http://127.0.0.1:$(cat "$DIR/port")"
    log "moto already up on port $(cat "$DIR/port")"; return 0
  fi
  stop_pidfile "$PIDFILE"
  local venv lock
  lock="$KITARU_SERVICES_CACHE/venv-$NAME.lock"
  exec 9>"$lock"; flock 9
  venv="$(cached_venv "moto-$MOTO_VERSION" "moto[server]==$MOTO_VERSION" docker)"
  flock -u 9
  local port; port="$(free_port)"
  echo "$port" > "$DIR/port"
  # MOTO_PORT is what moto tells Batch job containers to call back on; it must match.
  # MOTO_DOCKER_NETWORK_MODE=host: the local engine has no bridge network, so job
  # containers only reach moto (and registries) through the host's network.
  DOCKER_HOST="${DOCKER_HOST:-unix://$KITARU_SERVICES_DIR/docker/dockerd.sock}" \
  MOTO_PORT="$port" MOTO_DOCKER_NETWORK_MODE=host \
    setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$DIR/moto.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_for 60 answering "$port"; then
    tail -30 "$DIR/moto.log" >&2; stop_pidfile "$PIDFILE"; return 1
  fi
  write_env "$NAME" "export KITARU_TEST_MOTO_URL=http://127.0.0.1:$port"
  log "moto up on http://127.0.0.1:$port"
}

case "${1:-}" in
  up) up ;;
  down) stop_pidfile "$PIDFILE"; rm -f "$KITARU_SERVICES_DIR/$NAME.env" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
