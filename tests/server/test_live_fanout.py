"""Many SSE clients of one execution share one journal poll: each receives every entry,
and the server reads the journal as often as it does for one client
(`kitaru_sse_polls_total` on /metrics)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.journal.conftest import fresh_postgres_url
from tests.live import LIVE
from tests.server.test_live import sse, start
from tests.server_process import ServerProcess

CLIENTS = 20
STEPS = "6"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(fresh_postgres_url(), tmp_path_factory.mktemp("server"))
    try:
        yield proc
    finally:
        proc.stop()


def counters(server: ServerProcess, token: str) -> dict[str, float]:
    with server.http(token) as http:
        page = http.get("/metrics").text
    found = {}
    for line in page.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("kitaru_sse_"):
            found[name] = float(value)
    return found


def follow(
    server: ServerProcess, token: str, exec_id: str, clients: int
) -> tuple[list[list[Any]], list[threading.Thread]]:
    """`clients` streams of the execution from its start, all open before the flow goes
    on; what each received (ids, then the end's status)."""
    received: list[list[Any]] = [[] for _ in range(clients)]
    opened = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            headers = {"Authorization": f"Bearer {token}"}
            with http.stream("GET", f"/api/v1/executions/{exec_id}/events", headers=headers) as r:
                assert r.status_code == 200
                first = True
                for event in sse(r):
                    if first:
                        opened.wait(30)
                        first = False
                    if event["event"] == "end":
                        received[i].append(("end", event["data"]["status"]))
                        return
                    received[i].append(int(event["id"]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    opened.wait(60)
    return received, threads


def run_followed(
    server: ServerProcess, write_token: str, read_token: str, folder: Path, clients: int
) -> tuple[list[list[Any]], float, dict[str, float], dict[str, float]]:
    gate = folder / "gate"
    flow, exec_id = start(
        server, write_token, folder, LIVE, STEPS, STEP_SECONDS="0.4", GATE=str(gate)
    )
    # Returns once every stream has its first entry.
    received, threads = follow(server, read_token, exec_id, clients)
    before = counters(server, read_token)
    started = time.monotonic()
    gate.touch()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    took = time.monotonic() - started
    after = counters(server, read_token)
    assert flow.wait(30) == 0
    return received, took, before, after


def test_twenty_streams_of_one_execution_share_one_journal_poll(
    server: ServerProcess, write_token: str, read_token: str, tmp_path: Path
) -> None:
    one, one_took, one_before, one_after = run_followed(
        server, write_token, read_token, tmp_path / "one", 1
    )
    many, many_took, before, after = run_followed(
        server, write_token, read_token, tmp_path / "many", CLIENTS
    )

    # Every client received every entry, in order, once, then the end.
    [alone] = one
    assert alone[-1] == ("end", "completed")
    assert alone[:-1] == list(range(1, len(alone)))
    entries = many[0]
    assert entries[-1] == ("end", "completed")
    assert entries[:-1] == list(range(1, len(entries)))
    assert len(entries) > 2 * int(STEPS)  # run start, each step's start, event, end, ...
    assert all(got == entries for got in many)

    # The server read the journal for twenty clients as it did for one: polls per
    # second alike (twenty pollers would make twenty times as many).
    one_rate = (
        one_after["kitaru_sse_polls_total"] - one_before["kitaru_sse_polls_total"]
    ) / one_took
    polls = after["kitaru_sse_polls_total"] - before["kitaru_sse_polls_total"]
    many_rate = polls / many_took
    assert 0 < many_rate <= 1.5 * one_rate + 1, (many_rate, one_rate)
    assert polls <= many_took / 0.25 + 5, (polls, many_took)
    # No stream fell behind the entries the feed keeps: none read the journal itself.
    catch_up = after["kitaru_sse_catch_up_reads_total"] - before["kitaru_sse_catch_up_reads_total"]
    assert catch_up == 0
    # When the last stream has gone, nothing polls.
    assert after["kitaru_sse_followed_executions"] == 0
    assert after["kitaru_sse_streams"] == 0
    time.sleep(1)
    assert counters(server, read_token)["kitaru_sse_polls_total"] == after["kitaru_sse_polls_total"]
