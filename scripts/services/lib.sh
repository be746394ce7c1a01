# Shared helpers for scripts/services/<name>.sh. Source it; do not run it.
#
# Convention: `scripts/services/<name>.sh up` starts the service if it is not running
# (idempotent), on a free loopback port, and writes `export VAR=...` lines to
# $KITARU_SERVICES_DIR/<name>.env; `down` stops what `up` started. Services keep their state
# and logs under $KITARU_SERVICES_DIR/<name>/. Installs go to the shared cache dir
# ($KITARU_SERVICES_CACHE) so that a second `make test` reuses them.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KITARU_SERVICES_DIR="${KITARU_SERVICES_DIR:-$REPO_ROOT/.test-services}"
KITARU_SERVICES_CACHE="${KITARU_SERVICES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kitaru-test-services}"
mkdir -p "$KITARU_SERVICES_DIR" "$KITARU_SERVICES_CACHE"

# A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race is accepted).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
  local seconds="$1"; shift
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

# service_dir NAME: the state directory of a service (created).
service_dir() { mkdir -p "$KITARU_SERVICES_DIR/$1"; echo "$KITARU_SERVICES_DIR/$1"; }

# write_env NAME "export A=1" "export B=2" ...
write_env() {
  local name="$1"; shift
  printf '%s\n' "$@" > "$KITARU_SERVICES_DIR/$name.env"
}

# stop_pidfile FILE: stop the process group whose leader's pid is in FILE.
stop_pidfile() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# A Python virtual environment in the cache with the given packages (uv if present).
cached_venv() {
  local name="$1"; shift
  local venv="$KITARU_SERVICES_CACHE/venvs/$name"
  local stamp="$venv/.kitaru-packages"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$*" ]; then
    rm -rf "$venv"
    if command -v uv >/dev/null 2>&1; then
      uv venv -q --python "${VENV_PYTHON:-python3}" "$venv"
      uv pip install -q --python "$venv/bin/python" "$@"
    else
      "${VENV_PYTHON:-python3}" -m venv "$venv"
      "$venv/bin/pip" install -q "$@"
    fi
    echo "$*" > "$stamp"
  fi
  echo "$venv"
}

log() { echo "[services] $*" >&2; }
