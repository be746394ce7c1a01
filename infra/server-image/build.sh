#!/usr/bin/env bash
# Build the server image from this checkout: build.sh [TAG] [EXTRAS]
# (the Helm chart's image.repository:image.tag). Needs uv and a Docker engine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${1:-kitaru-server:$(cd "$repo" && uv run --no-sync python -c 'import kitaru; print(kitaru.__version__)')}"
extras="${2:-server,postgres}"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$context/"
(cd "$repo" && uv build --wheel --out-dir "$context/wheels" >/dev/null)
docker build --build-arg "EXTRAS=$extras" ${BASE_IMAGE:+--build-arg "BASE_IMAGE=$BASE_IMAGE"} -t "$tag" "$context"
echo "built $tag"
