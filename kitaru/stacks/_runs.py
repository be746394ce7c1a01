"""Which orchestrator runs a process may act on: ask about, read the logs of, or stop.

A record's `run_id` names a process, a container or a cloud job, and a record is data:
through a server, anyone with a write token sets one (`PUT /api/v1/executions/{id}/run`,
or in an execution they create). Acting on it is acting on whatever it names: a `pid:`
run id once made a server SIGKILL any process group, itself included, and made readers
copy the tail of any `*.log` file on their machine into a record everyone reads. So:

- a process that opens the journal itself, and is no server, trusts its records as
  it trusts everything else it reads there (kitaru/_trust.py);
- a server acts only on runs submitted by a process with the journal open (itself, or
  a client with direct access to the database): those seal the run id with the
  journal's `runs` secret, an HMAC of the execution, the orchestrator and the run id
  kept in the record's `run_seal` metadata; a run id set over the API carries no valid
  seal. It never acts on runs of the `local` orchestrator: processes on some other
  machine (a server starts none, kitaru/server/_actions.py);
- a client that works through a server (KITARU_SERVER_URL) acts only on runs it
  submitted itself, sealed with a key kept in its KITARU_HOME.

Whoever acts, the orchestrator checks that the run id is one of its own, started for
that execution (`Orchestrator.is_run_of`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kitaru import _config, _trust
from kitaru.journal import ExecutionRecord, Journal
from kitaru.journal._tokens import TokenRows

if TYPE_CHECKING:
    from kitaru.stacks._contracts import Orchestrator

SEAL = "run_seal"
_journal_keys: dict[str, bytes] = {}


def _home_key() -> bytes:
    """This machine's key for the runs it submits through a server, made on first use."""
    path = _config.home() / "run-key"
    if not path.exists():
        _make_key(path)
    for _ in range(100):
        # Made in place (no hard links), another process may be between creating the
        # file and writing it: read again rather than keep an empty key.
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.01)
    # Still empty: its writer died between the two (an older kitaru made it in place).
    _make_key(path, replace=True)
    return path.read_bytes().strip()


def _make_key(path: Path, *, replace: bool = False) -> None:
    """Written whole under a name of its own, then linked into place: a process that
    finds `run-key` made by another one at the same moment reads all of that key, never
    a file still empty; of two made at once, the one linked first is everyone's."""
    key = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run-key-")
    with os.fdopen(fd, "w") as f:
        f.write(key)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links (FAT, some mounts): made in place
        _create(path, key)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _create(path: Path, key: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(key)


def _key(journal: Journal) -> bytes | None:
    if _trust.from_server(journal):
        return _home_key()
    if isinstance(journal, TokenRows):
        key = _journal_keys.get(journal.url)
        if key is None:
            key = _journal_keys[journal.url] = journal.server_secret("runs").encode()
        return key
    return None


def _mac(key: bytes, exec_id: str, orchestrator: str, run_id: str) -> str:
    message = f"run\n{exec_id}\n{orchestrator}\n{run_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(journal: Journal, exec_id: str, orchestrator: str, run_id: str) -> None:
    """Record that this process submitted `run_id` (see the module's docstring)."""
    key = _key(journal)
    if key is not None:
        journal.set_metadata(exec_id, {SEAL: _mac(key, exec_id, orchestrator, run_id)})


def may_act(journal: Journal, record: ExecutionRecord, orchestrator: Orchestrator) -> bool:
    """Whether this process may ask `orchestrator` about, read or stop the record's run."""
    run_id = record.run_id
    if run_id is None:
        return False
    if _trust.serving() and orchestrator.flavor == "local":
        return False
    if not _trust.trusts_records(journal):
        key = _key(journal)
        sealed = record.metadata.get(SEAL)
        if key is None or not isinstance(sealed, str):
            return False
        expected = _mac(key, record.exec_id, orchestrator.flavor, run_id)
        if not hmac.compare_digest(sealed, expected):
            return False
    return orchestrator.is_run_of(run_id, record.exec_id)
