#!/usr/bin/env bash
# Run the whole test suite: start every local service the tests need, run pytest, stop them.
# Extra arguments go to pytest. pytest's exit code is ours: 5 (no tests collected) fails
# the run like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services/lib.sh

services=()
for f in scripts/services/*.sh; do
  name="$(basename "$f" .sh)"
  [ "$name" = lib ] && continue
  services+=("$name")
done

stop_all() {
  for name in "${services[@]}"; do
    bash "scripts/services/$name.sh" down >/dev/null 2>&1 || true
  done
}
trap stop_all EXIT

if [ "${#services[@]}" -gt 0 ]; then
  log "starting: ${services[*]}"
  pids=()
  for name in "${services[@]}"; do
    bash "scripts/services/$name.sh" up > "$KITARU_SERVICES_DIR/$name.up.log" 2>&1 &
    pids+=("$!")
  done
  failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      log "${services[$i]} failed to start:"; tail -40 "$KITARU_SERVICES_DIR/${services[$i]}.up.log" >&2
      failed=1
    fi
  done
  [ "$failed" = 0 ] || exit 1
  for name in "${services[@]}"; do
    # shellcheck disable=SC1090
    [ -f "$KITARU_SERVICES_DIR/$name.env" ] && source "$KITARU_SERVICES_DIR/$name.env"
  done
  export KITARU_TEST_SERVICES="${services[*]}"
fi

# The engine is this run's own: its stopped containers go after each module (tests/conftest.py).
export KITARU_TIDY_TEST_ENGINE=1
free_space() { log "free space: $(df -h --output=avail "$KITARU_SERVICES_DIR" . /tmp | tail -n +2 | tr -s ' \n' ' ')(services, checkout, /tmp)"; }
free_space
status=0
.venv/bin/python -m pytest "$@" || status=$?
# A full disk makes unrelated tests fail in odd ways: say how much was left.
[ "$status" = 0 ] || free_space
exit "$status"
