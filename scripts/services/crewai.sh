#!/usr/bin/env bash
# Not a server: a Python environment with CrewAI, for tests/test_examples_harnesses.py.
# CrewAI cannot share the project venv (it pins openai<3 and mcp<2; see the `crewai`
# dependency group in pyproject.toml), so its locked versions go into a cached venv of
# their own, with the core dependencies of kitaru. Tests run it with PYTHONPATH=<repo>
# so that it imports this checkout's kitaru.
# Exports KITARU_CREWAI_PYTHON.
source "$(dirname "$0")/lib.sh"

UV_BIN="$(command -v uv || true)"

case "${1:-}" in
  up)
    req_tmp="$(mktemp)"
    if [ -n "$UV_BIN" ]; then
      (cd "$REPO_ROOT" && "$UV_BIN" export --frozen --no-default-groups --group crewai --no-hashes --no-emit-workspace --no-header -q) > "$req_tmp"
    else
      (cd "$REPO_ROOT" && python3 -m uv export --frozen --no-default-groups --group crewai --no-hashes --no-emit-workspace --no-header -q) > "$req_tmp"
    fi
    digest="$(sha256sum "$req_tmp" | cut -c1-12)"
    # Keyed by the locked versions, so every checkout (and CI's clone) shares one venv.
    req="$KITARU_SERVICES_CACHE/crewai-$digest.txt"
    mv "$req_tmp" "$req"
    venv="$(cached_venv "crewai-$digest" -r "$req")"
    write_env crewai "export KITARU_CREWAI_PYTHON=$venv/bin/python"
    log "crewai venv ready: $venv"
    ;;
  down)
    rm -f "$KITARU_SERVICES_DIR/crewai.env"
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
