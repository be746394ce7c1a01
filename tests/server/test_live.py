"""The live feed through a real server: `watch` and `logs --follow` of a client that
knows only the server's URL, the SSE stream and its reconnects, who may stream, and that
a client that stops reading holds nothing but its own stream."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import write_script
from tests.journal.conftest import fresh_postgres_url
from tests.live import LIVE, Follower, check_live, first_execution
from tests.server.hostile import create, run_token
from tests.server_process import ServerProcess

MAX_STREAMS = 3

CHATTY = """
import json, sys, time
from kitaru import checkpoint, flow

@checkpoint
def chatter() -> int:
    for i in range(6000):
        print(f"line {i:05d} " + "x" * 190)
    time.sleep(20)
    return 1

@flow
def chatty() -> int:
    return chatter()

if __name__ == "__main__":
    print(json.dumps({"exec_id": chatty.run().exec_id}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        fresh_postgres_url(),
        tmp_path_factory.mktemp("server"),
        args=("--sweep-interval", "0.5"),
        env={"KITARU_SERVER_MAX_STREAMS": str(MAX_STREAMS)},
    )
    try:
        yield proc
    finally:
        proc.stop()


def start(
    server: ServerProcess, token: str, folder: Path, source: str, *args: str, **env: str
) -> tuple[subprocess.Popen[str], str]:
    """Run a flow script as a client of the server; the id of the execution it started."""
    script = write_script(folder / "flow.py", source)
    with server.http(token) as http:
        before = {e["exec_id"] for e in http.get("/api/v1/records/executions").json()}
        flow = subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**server.client_env(token, folder / "home"), **env},
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "flow.err", "w"),
            text=True,
        )

        def new() -> list[str]:
            found = http.get("/api/v1/records/executions").json()
            return [e["exec_id"] for e in found if e["exec_id"] not in before]

        return flow, first_execution(new)


def sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of a stream as {id, event, data} as they arrive."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                event["arrived"] = time.time()
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.strip()


def test_watch_and_logs_follow_through_the_server(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    flow, exec_id = start(server, write_token, tmp_path, LIVE, "4", GATE=str(gate))
    env = server.client_env(write_token, tmp_path / "watcher-home")
    watch = Follower(["executions", "watch", exec_id, "--json"], env, cwd=tmp_path)
    logs = Follower(["executions", "logs", exec_id, "--follow"], env, cwd=tmp_path)
    watch.first_line()
    logs.first_line()
    gate.touch()
    assert watch.finish() == 0, watch.stderr
    assert logs.finish() == 0, logs.stderr
    flow.wait(30)
    check_live(watch.entries(), 4)
    printed = [line for _, line in logs.lines if line.startswith("working on")]
    assert printed == [f"working on {i}" for i in range(4)]


def test_sse_reconnect_with_last_event_id_loses_none_and_repeats_none(
    server: ServerProcess, read_token: str, write_token: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    flow, exec_id = start(
        server, write_token, tmp_path, LIVE, "6", STEP_SECONDS="0.5", GATE=str(gate)
    )
    seen: list[dict[str, Any]] = []
    with server.http(read_token) as http:
        with http.stream("GET", f"/api/v1/executions/{exec_id}/events") as first:
            assert first.headers["content-type"].startswith("text/event-stream")
            for event in sse(first):
                gate.touch()  # the flow goes on once the stream is open
                seen.append(event)
                if len(seen) == 6:
                    break  # the client drops: the run goes on meanwhile
        time.sleep(0.8)
        reconnects = 0
        while not seen or seen[-1]["event"] != "end":
            headers = {"Last-Event-ID": seen[-1]["id"]}
            with http.stream(
                "GET", f"/api/v1/executions/{exec_id}/events", headers=headers
            ) as again:
                reconnects += 1
                for event in sse(again):
                    seen.append(event)
                    if len(seen) % 7 == 0 and event["event"] != "end":
                        break  # and drops again
        stored = http.get(f"/api/v1/records/executions/{exec_id}/events").json()
    flow.wait(30)
    assert reconnects >= 2
    entries = [e for e in seen if e["event"] != "end"]
    assert [int(e["id"]) for e in entries] == [s["seq"] for s in stored]
    assert [int(e["id"]) for e in entries] == list(range(1, len(stored) + 1))
    assert [e["data"] for e in entries] == [_wire(s) for s in stored]
    assert seen[-1]["data"]["status"] == "completed"
    # The stream was live: the first step's progress arrived long before the run ended.
    first = next(e for e in entries if e["event"] == "event" and e["data"]["name"] == "progress")
    run_end = next(e for e in entries if e["event"] == "run_ended")
    assert run_end["data"]["ts"] - first["arrived"] > 1.0


def _wire(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": stored["seq"], "ts": stored["ts"], "run": stored["run"], "kind": stored["kind"],
        "name": stored["name"], "checkpoint": stored["call_key"], "data": stored["data"],
    }  # fmt: skip


def test_who_cannot_stream(
    server: ServerProcess, write_token: str, read_token: str, tmp_path: Path
) -> None:
    with server.http(write_token) as http:
        mine = create(http)
        theirs = create(http)
    path = f"/api/v1/executions/{theirs}/events"
    # No token, a made-up token: refused before anything is read.
    with server.http(None) as nobody:
        assert nobody.get(path).status_code == 401
    with server.http("kt_" + "0" * 40) as forger:
        assert forger.get(path).status_code == 401
    # The run token of another execution, leaked from its container.
    with server.http(run_token(server, mine)) as attacker:
        refused = attacker.get(path)
        assert refused.status_code == 403 and mine in refused.json()["detail"]
        with attacker.stream("GET", f"/api/v1/executions/{mine}/events", timeout=5) as own:
            assert own.status_code == 200  # its own execution, as its records
    # A read token streams; a queued execution keeps the stream open (heartbeats).
    with server.http(read_token) as reader:
        with reader.stream("GET", path, timeout=5) as ok:
            assert ok.status_code == 200
        assert reader.get(path, headers={"Last-Event-ID": "x1"}).status_code == 422
        assert (
            reader.get("/api/v1/executions/kx_01a2493dcd6793d40ecb7c1b4c69/events").status_code
            == 404
        )


def _raw_stream(server: ServerProcess, token: str, exec_id: str) -> socket.socket:
    """A client that asks for the stream and then never reads a byte."""
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        f"GET /api/v1/executions/{exec_id}/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def test_a_slow_client_does_not_hold_the_server_and_streams_are_limited(
    server: ServerProcess, write_token: str, read_token: str, tmp_path: Path
) -> None:
    flow, exec_id = start(server, write_token, tmp_path, CHATTY)
    time.sleep(1.5)  # its megabyte of output is in the feed
    stuck = _raw_stream(server, read_token, exec_id)
    try:
        # While that stream's writes wait on a client that reads nothing, every other
        # request is answered at once.
        with server.http(read_token) as http:
            slowest = 0.0
            for _ in range(20):
                started = time.monotonic()
                assert http.get("/health").status_code == 200
                assert http.get(f"/api/v1/records/executions/{exec_id}").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.05)
            # (Held, a request would wait out the stream's 10 s write timeout.)
            assert slowest < 3.0, slowest
            # The stuck one counts against the limit; the limit holds.
            opened = [
                http.stream("GET", f"/api/v1/executions/{exec_id}/events?after=999999")
                for _ in range(MAX_STREAMS - 1)
            ]
            responses = [o.__enter__() for o in opened]
            assert all(r.status_code == 200 for r in responses)
            over = http.get(f"/api/v1/executions/{exec_id}/events")
            assert over.status_code == 503 and over.headers["retry-after"] == "5"
            for o in opened:
                o.__exit__(None, None, None)
            # Closed streams give their places back, and the client that reads nothing
            # loses its own once a write to it has waited WRITE_TIMEOUT (10 s): then
            # MAX_STREAMS streams open at once while it is still connected.
            deadline = time.monotonic() + 30
            while True:
                opened = [
                    http.stream("GET", f"/api/v1/executions/{exec_id}/events?after=999999")
                    for _ in range(MAX_STREAMS)
                ]
                codes = [o.__enter__().status_code for o in opened]
                for o in opened:
                    o.__exit__(None, None, None)
                if codes == [200] * MAX_STREAMS:
                    break
                assert time.monotonic() < deadline, "the stuck client kept its stream"
                time.sleep(0.5)
    finally:
        stuck.close()
        flow.wait(60)


def test_an_event_a_replay_reused_is_marked_in_its_sse_frame() -> None:
    from kitaru.journal import EventRecord
    from kitaru.server.routes._stream import frame

    copied = EventRecord("kx_1", 1, 0, 5.0, "event", "found", "step", {"n": 1})
    ran = EventRecord("kx_1", 2, 1, 6.0, "event", "found", "step#2", {"n": 2})
    data = [json.loads(frame(e).decode().split("data: ", 1)[1]) for e in (copied, ran)]
    assert data[0]["reused"] is True and data[0]["run"] == 0
    assert "reused" not in data[1]
