"""What the attack tests share: a real server on SQLite (as `kitaru server start` makes
one), records an attacker would send, and readings of the server process."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitaru.journal import open_journal
from kitaru.server import _tokens
from tests.server_process import ServerProcess

MiB = 1024 * 1024


def sqlite_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, *args: str
) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp(name)
    proc = ServerProcess(f"sqlite:///{workdir / 'journal.db'}", workdir, args=args)
    try:
        yield proc
    finally:
        proc.stop()


def new_exec_id() -> str:
    return "kx_" + secrets.token_hex(14)


def record(exec_id: str, **fields: Any) -> dict[str, Any]:
    """An execution record as the API takes it (status queued unless given)."""
    now = time.time()
    return {
        "exec_id": exec_id,
        "flow": "report",
        "status": "queued",
        "created_at": now,
        "updated_at": now,
        **fields,
    }


def create(http: httpx.Client, exec_id: str | None = None, **fields: Any) -> str:
    exec_id = exec_id or new_exec_id()
    made = http.post(
        "/api/v1/executions", json={"execution": record(exec_id, **fields), "inputs": []}
    )
    assert made.status_code == 201, made.text
    return exec_id


def run_token(server: ServerProcess, exec_id: str) -> str:
    """The token the server would give the container of `exec_id` (leaked, in the tests)."""
    return _tokens.mint_run_token(open_journal(server.journal_url), exec_id)


def post_raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    """A body written by hand: JSON as Python's json.dumps would never write it."""
    return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def rss(pid: int) -> int:
    """The process's resident memory now (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def listings_answer(server: ServerProcess, token: str) -> dict[str, int]:
    """What every listing a reader (and the web UI) opens answers."""
    with server.http(token) as reader:
        found = {
            path: reader.get(path).status_code
            for path in (
                "/api/v1/executions",
                "/api/v1/records/executions",
                "/api/v1/waits",
                "/api/v1/records/waits",
                "/api/v1/deployments",
                "/api/v1/records/deployments",
            )
        }
    for page in ("/ui/executions", "/ui/waits"):
        found[page] = httpx.get(
            server.url + page, cookies={"kitaru_session": token}, timeout=30
        ).status_code
    return found
