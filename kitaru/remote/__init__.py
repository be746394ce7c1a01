"""Using a Kitaru server instead of a direct journal and artifact store.

With `KITARU_SERVER_URL` and `KITARU_API_TOKEN` set, `current_journal()` is an
`HttpJournal` and the server's artifact store is reached through its API: flows, the
CLI and `KitaruClient` work unchanged, and a container needs no database or bucket
credentials. A client needs nothing beyond `pip install kitaru` (the standard
library's HTTP client); the server itself needs `pip install "kitaru[server]"`.
"""

from __future__ import annotations

from kitaru.artifacts import ArtifactStore
from kitaru.remote._connection import Connection, connect, reset_for_tests
from kitaru.remote._journal import HttpJournal
from kitaru.remote._store import HttpArtifactStore

__all__ = [
    "Connection",
    "HttpArtifactStore",
    "HttpJournal",
    "connect",
    "proxied_store",
    "reset_for_tests",
    "server_artifact_store",
]


def server_artifact_store() -> str:
    """The root URI of the store the server keeps artifacts in (its default store)."""
    return str(connect().info()["artifact_store"])


def proxied_store(uri: str) -> ArtifactStore | None:
    """An HTTP store for `uri` if the configured server serves that root, else None."""
    conn = connect()
    served = conn.info().get("artifact_stores") or [conn.info()["artifact_store"]]
    if uri.rstrip("/") in {str(s).rstrip("/") for s in served}:
        return HttpArtifactStore(conn, uri)
    return None
