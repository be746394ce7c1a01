"""Idempotent starts through a real server: concurrent invocations with one
`Idempotency-Key` answer with one execution, and `flow.run(idempotency_key=...)` from
clients that reach the journal only through the server stores one execution."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kitaru
from kitaru import remote
from kitaru.journal import DeploymentRecord, open_journal, reset_for_tests
from tests.journal.conftest import fresh_postgres_url
from tests.server_process import ServerProcess


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    url = (
        f"sqlite:///{tmp_path / 'server.db'}" if request.param == "sqlite" else fresh_postgres_url()
    )
    proc = ServerProcess(url, tmp_path / "server", args=("--sweep-interval", "0"))
    try:
        yield proc
    finally:
        proc.stop()


def _deploy(server: ServerProcess, flow: str) -> None:
    """A version recorded as `kitaru deploy` records it, on the local stack (invoked
    into a queue, so nothing starts on the server's machine)."""
    record = DeploymentRecord(
        flow=flow, version=0, image=f"registry.example/kitaru/{flow}@sha256:01",
        digest="sha256:01", content_hash="c" * 64, lock_hash="l" * 64, source_hash="s" * 64,
        kitaru_version="1.0.0",
        signature=[{"name": "ticket", "kind": "POSITIONAL_OR_KEYWORD", "required": True,
                    "annotation": "str", "json_type": "string"}],
        flow_ref=f"agent:{flow}", flow_file="agent.py", import_path=".",
        project_root="/home/me/agent", stack="local", orchestrator="local", builder="docker",
        reused=False, created_by="me@laptop", created_at=time.time(),
    )  # fmt: skip
    open_journal(server.journal_url).create_deployment(record, tag="default")


def _concurrently(n: int, call: Any) -> list[Any]:
    gate = threading.Barrier(n)
    answers: list[Any] = [None] * n

    def one(i: int) -> None:
        gate.wait()
        answers[i] = call()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def test_concurrent_invocations_with_one_key_answer_with_one_execution(
    server: ServerProcess,
) -> None:
    _deploy(server, "refunds")
    writer, reader = server.token("write"), server.token("read")
    body = {"kwargs": {"ticket": "late"}, "queue": "refunds"}

    def invoke() -> httpx.Response:
        with server.http(writer) as http:
            return http.post(
                "/api/v1/deployments/refunds/invoke",
                json=body,
                headers={"Idempotency-Key": "delivery-42"},
            )

    answers = _concurrently(2, invoke)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    views = [a.json() for a in answers]
    assert views[0]["exec_id"] == views[1]["exec_id"]
    assert sorted(v["reused"] for v in views) == [False, True]
    assert views[0]["idempotency_key"] == "delivery-42"

    with server.http(writer) as http, server.http(reader) as read:
        # The key in the body is the same key.
        again = http.post(
            "/api/v1/deployments/refunds/invoke", json={**body, "idempotency_key": "delivery-42"}
        )
        assert again.status_code == 202 and again.json()["exec_id"] == views[0]["exec_id"]
        # Two different keys in one request are a mistake, refused before anything starts.
        both = http.post(
            "/api/v1/deployments/refunds/invoke",
            json={**body, "idempotency_key": "a"},
            headers={"Idempotency-Key": "b"},
        )
        assert both.status_code == 422 and "differ" in both.json()["detail"]
        bad = http.post(
            "/api/v1/deployments/refunds/invoke", json={**body, "idempotency_key": "x\ty"}
        )
        assert bad.status_code == 422 and "printable characters" in bad.json()["detail"]
        # A key another flow holds is refused, naming it.
        _deploy(server, "returns")
        taken = http.post(
            "/api/v1/deployments/returns/invoke",
            json=body,
            headers={"Idempotency-Key": "delivery-42"},
        )
        assert taken.status_code == 409, taken.text
        assert f"execution {views[0]['exec_id']} of flow 'refunds'" in taken.json()["detail"]
        # A read token starts nothing, key or not.
        refused = read.post(
            "/api/v1/deployments/refunds/invoke",
            json=body,
            headers={"Idempotency-Key": "delivery-43"},
        )
        assert refused.status_code == 403
        listed = read.get("/api/v1/executions", params={"flow": "refunds"}).json()
        assert [e["exec_id"] for e in listed] == [views[0]["exec_id"]]
        by_key = read.get("/api/v1/executions", params={"idempotency_key": "delivery-42"})
        assert [e["exec_id"] for e in by_key.json()] == [views[0]["exec_id"]]


@kitaru.flow
def triage(ticket: str) -> str:
    return f"triaged {ticket}"


def test_flow_runs_through_the_server_with_one_key_store_one_execution(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in server.client_env(server.token("write"), tmp_path / "client").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KITARU_QUIET", "1")
    reset_for_tests()
    try:
        handles = _concurrently(10, lambda: triage.run("t-1", idempotency_key="ticket-1"))
        assert len({h.exec_id for h in handles}) == 1
        assert [h.reused for h in handles].count(False) == 1
        assert handles[0].result() == "triaged t-1"
        queued = triage.submit("t-2", queue="triage", idempotency_key="ticket-2")
        again = triage.submit("t-2", queue="triage", idempotency_key="ticket-2")
        assert again.exec_id == queued.exec_id and again.reused
    finally:
        reset_for_tests()
        remote.reset_for_tests()
    records = open_journal(server.journal_url).list_executions(flow="triage")
    assert sorted(r.idempotency_key or "" for r in records) == ["ticket-1", "ticket-2"]
