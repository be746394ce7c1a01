"""Where Kitaru keeps its state, read from the environment.

| variable | meaning | default |
|---|---|---|
| `KITARU_HOME` | directory for the embedded journal, local artifacts and settings | `~/.kitaru` |
| `KITARU_JOURNAL_URL` | `sqlite:///path` or `postgresql://...` | `sqlite:///$KITARU_HOME/journal.db` |
| `KITARU_ARTIFACT_STORE` | artifact store URI for executions started here | `file://$KITARU_HOME/artifacts` |
| `KITARU_DURABILITY` | `process` (survives a killed process) or `fsync` (survives power loss) | `process` |
| `KITARU_SERVER_URL` | a Kitaru server to use instead of a direct journal (with `KITARU_API_TOKEN`) | unset |
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from kitaru._errors import ConfigurationError


class Durability(StrEnum):
    """How far a committed checkpoint survives.

    `process`: the commit is in the operating system's page cache before the call
    returns, so it survives the process being killed (SIGKILL, OOM, eviction) but
    not a power loss or kernel crash. `fsync`: every commit is flushed to the disk
    (SQLite `synchronous=FULL`, artifact files and their directories fsync'd), so it
    also survives power loss, at a cost of one or more disk flushes per checkpoint.
    """

    PROCESS = "process"
    FSYNC = "fsync"


def home() -> Path:
    """The Kitaru home directory, created on first use."""
    raw = os.environ.get("KITARU_HOME")
    path = Path(raw).expanduser() if raw else Path.home() / ".kitaru"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"KITARU_HOME={path} cannot be created ({exc.strerror}); "
            "set KITARU_HOME to a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"KITARU_HOME={path} is not writable; set KITARU_HOME to a writable directory"
        )
    return path


def durability() -> Durability:
    raw = os.environ.get("KITARU_DURABILITY", "process").strip().lower()
    try:
        return Durability(raw)
    except ValueError:
        raise ConfigurationError(
            f"KITARU_DURABILITY={raw!r} is not a durability mode; use 'process' or 'fsync'"
        ) from None


def journal_url() -> str:
    # A configured server stands in for the journal: executions, checkpoint calls and
    # waits go through its API, so this process needs no database credentials.
    server = os.environ.get("KITARU_SERVER_URL")
    if server:
        return server.rstrip("/")
    url = os.environ.get("KITARU_JOURNAL_URL")
    if url:
        return url
    return "sqlite:///" + str(home() / "journal.db")


def artifact_store_uri() -> str:
    uri = os.environ.get("KITARU_ARTIFACT_STORE")
    if uri:
        return uri
    if os.environ.get("KITARU_SERVER_URL"):
        # Artifacts go where the server keeps them, through its API.
        from kitaru.remote import server_artifact_store

        return server_artifact_store()
    return (home() / "artifacts").as_uri()
