#!/usr/bin/env bash
# The tests that need no service (top-level tests/test_*.py, `-m "not services"`: flows,
# checkpoints, parallel steps, replay, waits, recovery, the CLI, the adapters, the runnable
# docs) on every newer Python this machine has: 3.12, 3.13, 3.14. `make test` runs the
# whole suite on the project's 3.11 first; this adds each other supported version, with
# the workspace and every extra installed in its own .venv-pyXY. A version that is absent
# is skipped with a notice. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(command -v uv 2>/dev/null || echo "python3 -m uv")"
export UV_COMPILE_BYTECODE=1

# A working interpreter for X.Y: a pyenv install, then python3.Y on PATH, then uv's own
# finder (without downloading one). pyenv shims that point nowhere are skipped.
find_python() {
  local version="$1" candidate
  local root; root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in $(ls -d "$root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V -r) \
    "$(command -v "python$version" 2>/dev/null || true)" \
    "$($UV python find --no-python-downloads "$version" 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1 &&
      [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$version" ]; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

status=0
for version in 3.12 3.13 3.14; do
  python="$(find_python "$version")" || { echo "[pythons] Python $version: not on this machine, skipped"; continue; }
  venv=".venv-py${version/./}"
  echo "[pythons] Python $version ($python): service-free tests in $venv"
  UV_PROJECT_ENVIRONMENT="$venv" $UV sync --quiet --locked --all-packages --all-extras --python "$python"
  started=$SECONDS
  # Services that a caller exported are not used here: these tests must need none.
  env -u KITARU_TEST_SERVICES "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -m "not services" tests/test_*.py "$@" || status=$?
  echo "[pythons] Python $version: $((SECONDS - started)) s"
done
exit "$status"
