"""Using a Kitaru server instead of a direct journal and artifact store.

With `KITARU_SERVER_URL` and `KITARU_API_TOKEN` set, `current_journal()` is an
`HttpJournal` and the server's artifact store is reached through its API: flows, the
CLI and `KitaruClient` work unchanged, and a container needs no database or bucket
credentials. A client needs nothing beyond `pip install kitaru` (the standard
library's HTTP client); the server itself needs `pip install "kitaru[server]"`.

This package names the server client; its parts live under what uses them, so that
no lower layer imports a higher one: the connection in kitaru/_connection.py (below
configuration's question "which store does the server keep?"), the journal over the
API in kitaru/journal/_http.py (a backend beside SQLite and PostgreSQL, chosen by URL),
the artifact store over the API in kitaru/artifacts/_http.py.
"""

from __future__ import annotations

from kitaru._connection import Connection, connect, reset_for_tests, server_artifact_store
from kitaru.artifacts._http import HttpArtifactStore, proxied_store
from kitaru.journal._http import HttpJournal

__all__ = [
    "Connection",
    "HttpArtifactStore",
    "HttpJournal",
    "connect",
    "proxied_store",
    "reset_for_tests",
    "server_artifact_store",
]
