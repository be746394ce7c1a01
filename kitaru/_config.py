"""Where Kitaru keeps its state, read from the environment.

| variable | meaning | default |
|---|---|---|
| `KITARU_HOME` | directory for the embedded journal, local artifacts and settings | `~/.kitaru` |
| `KITARU_JOURNAL_URL` | `sqlite:///path` or `postgresql://...` | `sqlite:///$KITARU_HOME/journal.db` |
| `KITARU_ARTIFACT_STORE` | artifact store URI for executions started here | `file://$KITARU_HOME/artifacts` |
| `KITARU_DURABILITY` | `process` (survives a killed process) or `fsync` (survives power loss) | `process` |
| `KITARU_SERVER_URL` | a Kitaru server to use instead of a direct journal (with `KITARU_API_TOKEN`) | unset |
| `KITARU_JOURNAL_RETRY_SECONDS` | how long transient journal errors are retried (`kitaru/journal/_retry.py`) | `60` |
| `KITARU_QUIET` | `1`: flow runs say nothing on stderr; `0`: every line, even off a terminal (`kitaru/_speak.py`) | unset: all on a terminal, failures elsewhere |
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from kitaru._errors import InvalidConfigurationError


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
    """The Kitaru home directory, created on first use.

    It may be read-only (a mounted backup, another user's home): reading executions
    works there, and whatever would write says so when it tries."""
    seen = (os.environ.get("KITARU_HOME"), os.environ.get("HOME"))
    known = _homes.get(seen)
    if known is not None:
        return known
    path = home_path()
    if path.is_dir():
        _homes[seen] = path
        return path
    source = "KITARU_HOME" if os.environ.get("KITARU_HOME") else "the default KITARU_HOME"
    try:
        # No look before: another thread or process starting its first run may make
        # the directory between a look and this, which is no error.
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidConfigurationError(
            f"{source}={path} is a file, not a directory; set KITARU_HOME to a directory "
            "(it is created if missing)"
        ) from None
    except OSError as exc:
        raise InvalidConfigurationError(
            f"{source}={path} cannot be created ({_why_not(path, exc)}); set KITARU_HOME "
            "to a directory you can write"
        ) from None
    return path


# Homes found to be directories, by the variables that place them: every run asks for
# its home twice, and a home in use is not taken away under a running process.
_homes: dict[tuple[str | None, str | None], Path] = {}


def home_path() -> Path:
    """Where the Kitaru home directory is, whether or not it exists yet."""
    raw = os.environ.get("KITARU_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".kitaru"


def _why_not(path: Path, exc: OSError) -> str:
    """Name the ancestor that stops a directory from being made: the usual case is a
    file where a directory should be, which `mkdir` reports only as "Not a directory"."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file"
            break
    return exc.strerror or str(exc)


def writable(path: Path) -> bool:
    """Whether this process may create files in the directory `path`."""
    return os.access(path, os.W_OK | os.X_OK)


def durability() -> Durability:
    raw = os.environ.get("KITARU_DURABILITY", "process").strip().lower()
    try:
        return Durability(raw)
    except ValueError:
        raise InvalidConfigurationError(
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
    return _in_home("journal.db", lambda path: "sqlite:///" + str(path))


def artifact_store_uri() -> str:
    uri = os.environ.get("KITARU_ARTIFACT_STORE")
    if uri:
        return uri
    if os.environ.get("KITARU_SERVER_URL"):
        # Artifacts go where the server keeps them, through its API.
        from kitaru._connection import server_artifact_store

        return server_artifact_store()
    return _in_home("artifacts", Path.as_uri)


def _in_home(name: str, spell: Callable[[Path], str]) -> str:
    """`spell(home() / name)`, worked out once per home (every run asks for two)."""
    where = home()
    known = _spelled.get((where, name))
    if known is None:
        known = _spelled[(where, name)] = spell(where / name)
    return known


_spelled: dict[tuple[Path, str], str] = {}
