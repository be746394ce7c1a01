#!/usr/bin/env bash
# Debian's Chromium for the web UI's browser tests (Playwright drives it; its own browser
# download cannot work here). Installs the package if missing and exports its path as
# KITARU_TEST_CHROMIUM. Nothing runs in the background: `down` only forgets the env file.
source "$(dirname "$0")/lib.sh"
NAME=chromium

find_chromium() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

up() {
  local bin
  bin="$(find_chromium)"
  if [ -z "$bin" ]; then
    log "installing chromium (apt)"
    if [ "$(id -u)" != 0 ]; then
      log "chromium is missing and this is not root: sudo apt-get install chromium"; return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium \
      >/dev/null 2>"$(service_dir "$NAME")/apt.log" || {
        # A stale package list is the usual cause: refresh it once and retry.
        apt-get update -q >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium \
          >/dev/null 2>>"$(service_dir "$NAME")/apt.log" || { tail -20 "$(service_dir "$NAME")/apt.log" >&2; return 1; }
      }
    bin="$(find_chromium)"
  fi
  "$bin" --version >/dev/null 2>&1 || { log "chromium at $bin does not run"; return 1; }
  write_env "$NAME" "export KITARU_TEST_CHROMIUM=$bin"
  log "chromium: $bin"
}

down() {
  rm -f "$KITARU_SERVICES_DIR/$NAME.env"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
