#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a free loopback port: its own data directory, trust
# authentication, no fsync. Exports KITARU_TEST_POSTGRES_URL (database `kitaru`).
# initdb and postgres refuse to run as root, so both run as the `postgres` OS user.
source "$(dirname "$0")/lib.sh"
NAME=postgres
DB=kitaru
DIR="$(service_dir "$NAME")"

pgbin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ]; then
    apt-get install -y -q -o DPkg::Lock::Timeout=600 postgresql >/dev/null
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  echo "$bin"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up() {
  local bin port
  bin="$(pgbin)"
  if [ -f "$DIR/port" ] && as_pg "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    port="$(cat "$DIR/port")"
  else
    if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
    chmod 700 "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >/dev/null
    fi
    port="$(free_port)"
    echo "$port" > "$DIR/port"
    # Test cluster: durability off (fsync, synchronous_commit) buys speed, nothing here
    # must survive a power loss.
    as_pg "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 start -o \
      "-p $port -c listen_addresses=127.0.0.1 -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || { tail -20 "$DIR/postgres.log" >&2; return 1; }
  fi
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
    || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB"
  write_env "$NAME" "export KITARU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/$DB"
  log "postgres up on 127.0.0.1:$port (database $DB)"
}

down() {
  local bin; bin="$(pgbin)"
  if [ -f "$DIR/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null 2>&1 || true
  fi
  rm -f "$KITARU_SERVICES_DIR/$NAME.env"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
