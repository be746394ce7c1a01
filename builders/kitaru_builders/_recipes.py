"""What an image runs: the last lines of its Dockerfile.

A `flow` image runs whatever command the orchestrator gives each run. A `server` image
starts the Kitaru server as an unprivileged user, the uid the Helm chart's pod security
context names (infra/helm/kitaru-server); its arguments are the image's CMD, so
`docker run IMAGE --port 9000` and the chart's `args` replace them and keep the rest.
"""

from __future__ import annotations

import json

from kitaru_builders._lock import BuildError

SERVER_PORT = 8080
SERVER_UID = 10001
# The only place the server writes; the chart mounts an emptyDir here.
SERVER_HOME = "/tmp/kitaru"
SERVER_ENTRYPOINT = ("python", "-m", "kitaru", "server", "start")
SERVER_ARGS = ("--host", "0.0.0.0", "--port", str(SERVER_PORT))
RECIPES = ("flow", "server")


def recipe_lines(recipe: str) -> str:
    if recipe == "flow":
        return f"CMD {_exec(('python', '-m', 'kitaru', '--help'))}\n"
    if recipe == "server":
        uid = SERVER_UID
        # Images without useradd (no shadow utilities) get the passwd line written
        # directly: some libraries look the user up and fail for a uid without one.
        return f"""RUN set -e; \\
    if command -v useradd >/dev/null; then \\
      useradd --uid {uid} --user-group --no-create-home --home-dir {SERVER_HOME} \\
        --shell /usr/sbin/nologin kitaru; \\
    else echo "kitaru:x:{uid}:{uid}::{SERVER_HOME}:/usr/sbin/nologin" >> /etc/passwd; fi; \\
    install -d -o {uid} -g {uid} {SERVER_HOME}
USER {uid}:{uid}
ENV HOME={SERVER_HOME} KITARU_HOME={SERVER_HOME}
EXPOSE {SERVER_PORT}
ENTRYPOINT {_exec(SERVER_ENTRYPOINT)}
CMD {_exec(SERVER_ARGS)}
"""
    raise BuildError(f"unknown image recipe {recipe!r}; the docker builder knows: flow, server")


def _exec(words: tuple[str, ...]) -> str:
    return json.dumps(list(words))
