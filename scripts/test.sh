#!/usr/bin/env bash
# Run the test suite. Extra arguments go to pytest.
# pytest's exit code is ours: 5 (no tests collected) fails the run like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
