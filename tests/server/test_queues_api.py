"""Queues and workers through a real server: who may claim, what a claim body may hold,
and a worker that has nothing but the server's URL and a write token. The attacks are
the attacker's setup, the request, then the effect that must not happen (an execution
claimed, a limit stored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru import remote
from kitaru.journal import Journal, WorkerRecord, open_journal
from kitaru.server.routes._deps import NOT_ADMIN, READ_ONLY
from tests.server.hostile import create, new_exec_id, record, run_token
from tests.server_process import ServerProcess
from tests.workers.support import (
    Workers,
    env_through_server,
    skewed,
    submit,
    wait_until,
    write_flows,
)

CLAIM = "/api/v1/runner/claim"
OWNER = "worker-host:4242:0:5ecret"


def claim_body(queue: str, **changes: Any) -> dict[str, Any]:
    return {
        "queue": queue,
        "flows": ["report"],
        "owner": OWNER,
        "worker": "w1",
        "lease_seconds": 30,
        **changes,
    }


def record_of(server: ServerProcess, token: str, exec_id: str) -> dict[str, Any]:
    with server.http(token) as http:
        found: dict[str, Any] = http.get(f"/api/v1/records/executions/{exec_id}").json()
    return found


def still_waiting(server: ServerProcess, token: str, exec_id: str) -> bool:
    found = record_of(server, token, exec_id)
    return (found["status"], found["owner"], found["worker"]) == ("queued", None, None)


@pytest.fixture
def waiting(server: ServerProcess, write_token: str) -> tuple[str, str]:
    """(queue, execution): one execution of flow `report` waiting in a queue of its own."""
    queue = f"q-{time.monotonic_ns()}"
    with server.http(write_token) as http:
        return queue, create(http, queue=queue)


# -- who may claim -----------------------------------------------------------------------
def test_a_read_token_cannot_claim(
    server: ServerProcess, read_token: str, write_token: str, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    with server.http(read_token) as reader:
        answer = reader.post(CLAIM, json=claim_body(queue))
    assert answer.status_code == 403
    assert answer.json()["detail"] == READ_ONLY
    assert still_waiting(server, write_token, exec_id)


def test_a_run_token_cannot_claim_not_even_its_own_execution(
    server: ServerProcess, write_token: str, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    with server.http(write_token) as http:
        other = create(http, queue=f"{queue}-other")
    for leaked in (run_token(server, other), run_token(server, exec_id)):
        with server.http(leaked) as run:
            answer = run.post(CLAIM, json=claim_body(queue))
        assert answer.status_code == 403, answer.text
        assert "minted for one run" in answer.json()["detail"]
    assert still_waiting(server, write_token, exec_id)


# -- what a claim may hold ---------------------------------------------------------------
MALFORMED = {
    "a path for a queue name": ({"queue": "../default"}, "queue:"),
    "an empty queue name": ({"queue": ""}, "queue:"),
    "a queue name of 65 characters": ({"queue": "q" * 65}, "queue:"),
    "flows as text": ({"flows": "report"}, "flows:"),
    "no flows": ({"flows": []}, "flows:"),
    "an empty flow name": ({"flows": ["report", ""]}, "flows.1:"),
    "a flow name of 1001 characters": ({"flows": ["f" * 1001]}, "flows.0:"),
    "an empty owner": ({"owner": ""}, "owner:"),
    "an empty worker name": ({"worker": ""}, "worker:"),
    "no lease": ({"lease_seconds": 0}, "lease_seconds:"),
    "a lease past an hour": ({"lease_seconds": 3601}, "lease_seconds:"),
    "a lease as text": ({"lease_seconds": "30"}, "lease_seconds:"),
    "the caller's clock": ({"now": 0}, "now:"),
}


@pytest.mark.parametrize("change,member", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_claim_is_refused_naming_the_member_at_fault(
    server: ServerProcess,
    write_token: str,
    waiting: tuple[str, str],
    change: dict[str, Any],
    member: str,
) -> None:
    queue, exec_id = waiting
    with server.http(write_token) as http:
        answer = http.post(CLAIM, json={**claim_body(queue), **change})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("invalid request: ")
    assert member in answer.json()["detail"]
    assert still_waiting(server, write_token, exec_id)


def test_a_claim_missing_a_member_or_not_an_object_is_refused(
    server: ServerProcess, write_token: str, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    body = claim_body(queue)
    del body["owner"]
    with server.http(write_token) as http:
        missing = http.post(CLAIM, json=body)
        listed = http.post(CLAIM, json=[claim_body(queue)])
        text = http.post(CLAIM, content=b"{", headers={"content-type": "application/json"})
    assert missing.status_code == 422 and "owner: Field required" in missing.json()["detail"]
    assert listed.status_code == 422
    assert text.status_code == 422 and "not valid JSON" in text.json()["detail"]
    assert still_waiting(server, write_token, exec_id)


def test_a_claim_for_a_thousand_and_one_flows_is_refused(
    server: ServerProcess, write_token: str, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    flows = [f"flow{i}" for i in range(1000)] + ["report"]
    with server.http(write_token) as http:
        answer = http.post(CLAIM, json=claim_body(queue, flows=flows))
    assert answer.status_code == 422
    assert "flows: List should have at most 1000 items" in answer.json()["detail"]
    assert still_waiting(server, write_token, exec_id)


# -- a claim, then its run ---------------------------------------------------------------
def test_a_write_token_claims_then_runs_it_with_its_own_owner_token_only(
    server: ServerProcess, write_token: str, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    runner = f"/api/v1/runner/executions/{exec_id}"
    with server.http(write_token) as http:
        answer = http.post(CLAIM, json=claim_body(queue, lease_seconds=3600))
        shown = answer.json()["execution"]
        assert answer.status_code == 200 and shown["exec_id"] == exec_id
        # The lease is the server's hour at most, and the owner is shown masked, as
        # every answer shows it: useless for writing.
        assert shown["lease_until"] <= time.time() + 3600
        assert shown["owner"] != OWNER and shown["owner"].startswith("worker-host:4242:0:~")
        assert (shown["status"], shown["worker"], shown["queue"]) == ("running", "w1", queue)
        beat = {"now": time.time(), "lease_until": time.time() + 1e9}
        assert http.post(f"{runner}/heartbeat", json={**beat, "owner": shown["owner"]}).json() == {
            "cancel": None
        }
        assert http.post(f"{runner}/heartbeat", json={**beat, "owner": OWNER}).json() == {
            "cancel": False
        }
        assert record_of(server, write_token, exec_id)["lease_until"] <= time.time() + 3600
        end = {"status": "completed", "now": time.time()}
        assert not http.post(f"{runner}/finish", json={**end, "owner": shown["owner"]}).json()[
            "finished"
        ]
        finished = http.post(f"{runner}/finish", json={**end, "owner": OWNER}).json()
    assert finished["finished"] and finished["execution"]["status"] == "completed"


def test_why_an_execution_is_ready_is_written_only_while_it_is_queued_for_a_runner(
    server: ServerProcess, write_token: str, waiting: tuple[str, str]
) -> None:
    # A worker that gives an execution back to its queue says why (kitaru/_ready.py).
    queue, exec_id = waiting
    note = {"metadata": {"ready": {"reason": "its worker stopped", "since": time.time()}}}
    runner = f"/api/v1/runner/executions/{exec_id}"
    with server.http(run_token(server, exec_id)) as run:
        assert run.post(f"{runner}/metadata", json=note).status_code == 422
    with server.http(write_token) as http:
        image = {"metadata": {"ready": {}, "image": "evil.example/kitaru:latest"}}
        assert http.post(f"{runner}/metadata", json=image).status_code == 422
        assert http.post(f"{runner}/metadata", json=note).json() == {"merged": True}
        http.post(CLAIM, json=claim_body(queue)).raise_for_status()
        # Running, it is not ready: a flow's kitaru.log() cannot say it is.
        running = {"metadata": {"ready": {"reason": "run me again"}}}
        refused = http.post(f"{runner}/metadata", json=running)
    assert refused.status_code == 422 and "kept by Kitaru" in refused.json()["detail"]
    shown = record_of(server, write_token, exec_id)["metadata"]
    assert shown["ready"]["reason"] == "its worker stopped" and "image" not in shown


FORGED = {
    "claimed a billion seconds from now": {"claimed_at": 2e9 + time.time(), "worker": "ghost"},
    "running under a worker, its lease for ever": {
        "status": "running",
        "owner": "far-host:1:0:n0nce",
        "worker": "ghost",
        "lease_until": 1e15,
    },
}


@pytest.mark.parametrize("forged", list(FORGED.values()), ids=list(FORGED))
def test_a_new_execution_cannot_say_a_worker_claimed_it(
    server: ServerProcess, write_token: str, admin_token: str, forged: dict[str, Any]
) -> None:
    # Queue limits count what workers claimed (claimed_at) and run (worker, lease): a
    # write token that could record those itself would hold a queue's limit for ever.
    queue = f"q-{time.monotonic_ns()}"
    limits = {"name": queue, "concurrency": 1, "rate_per_minute": 1}
    with server.http(admin_token) as admin:
        stamps = {"created_at": 1.0, "updated_at": 1.0}
        admin.put(f"/api/v1/records/queues/{queue}", json={**limits, **stamps}).raise_for_status()
    with server.http(write_token) as http:
        made = http.post(
            "/api/v1/executions",
            json={"execution": record(new_exec_id(), queue=queue, **forged), "inputs": []},
        )
        exec_id = create(http, queue=queue)
        answer = http.post(CLAIM, json=claim_body(queue))
    assert (answer.json()["execution"] or {}).get("exec_id") == exec_id, answer.text
    assert made.status_code == 422 and "worker" in made.json()["detail"], made.text


# -- queue limits are settings; worker records are bounded -------------------------------
def test_a_write_token_cannot_set_or_remove_queue_limits(
    server: ServerProcess, write_token: str, admin_token: str
) -> None:
    limits = {"name": "guarded", "concurrency": 1, "created_at": 1.0, "updated_at": 1.0}
    with server.http(write_token) as writer:
        put = writer.put("/api/v1/records/queues/guarded", json=limits)
        removed = writer.delete("/api/v1/records/queues/guarded")
    assert (put.status_code, removed.status_code) == (403, 403)
    assert put.json()["detail"] == NOT_ADMIN
    with server.http(admin_token) as admin:
        assert admin.get("/api/v1/records/queues/guarded").json() is None
        assert admin.put("/api/v1/records/queues/guarded", json=limits).json() == {"stored": True}
        assert admin.get("/api/v1/records/queues/guarded").json()["concurrency"] == 1


BAD_LIMITS = {
    "no concurrency": {"concurrency": 0},
    "a negative rate": {"rate_per_minute": -1},
    "a concurrency as text": {"concurrency": "2"},
    "a concurrency of true": {"concurrency": True},
    "a fractional rate": {"rate_per_minute": 1.5},
    "a rate past a million": {"rate_per_minute": 10**7},
    "another queue's name": {"name": "elsewhere"},
    "an unknown member": {"priority": 3},
}


@pytest.mark.parametrize("change", list(BAD_LIMITS.values()), ids=list(BAD_LIMITS))
def test_bad_queue_limits_are_refused(
    server: ServerProcess, admin_token: str, change: dict[str, Any]
) -> None:
    limits = {"name": "limited", "created_at": 1.0, "updated_at": 1.0, **change}
    with server.http(admin_token) as admin:
        answer = admin.put("/api/v1/records/queues/limited", json=limits)
        assert answer.status_code == 422, answer.text
        assert admin.get("/api/v1/records/queues/limited").json() is None


def test_a_queue_name_in_a_path_is_checked(server: ServerProcess, admin_token: str) -> None:
    with server.http(admin_token) as admin:
        for path in ("/api/v1/records/queues/bad%20name", "/api/v1/records/queues/.hidden"):
            answer = admin.get(path)
            assert answer.status_code == 422 and "a queue name is 1-64" in answer.json()["detail"]
            assert admin.delete(path).status_code == 422


def worker_body(name: str, **changes: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "name": name, "host": "h", "pid": 1, "queues": ["default"], "flows": ["report"],
        "concurrency": 2, "running": 0, "started_at": now, "seen_at": now, **changes,
    }  # fmt: skip


BAD_WORKERS = {
    "a path for a queue": {"queues": ["../x"]},
    "1001 flows": {"flows": [f"f{i}" for i in range(1001)]},
    "a negative count running": {"running": -1},
    "no concurrency": {"concurrency": 0},
    "another worker's name": {"name": "someone-else"},
}


@pytest.mark.parametrize("change", list(BAD_WORKERS.values()), ids=list(BAD_WORKERS))
def test_bad_worker_records_are_refused(
    server: ServerProcess, write_token: str, change: dict[str, Any]
) -> None:
    name = f"w-{time.monotonic_ns()}"
    with server.http(write_token) as http:
        answer = http.put(f"/api/v1/records/workers/{name}", json={**worker_body(name), **change})
        assert answer.status_code == 422, answer.text
        seen = http.post(f"/api/v1/records/workers/{name}/seen", json={"running": "3", "now": 1})
        assert seen.status_code == 422
        assert name not in [w["name"] for w in http.get("/api/v1/records/workers").json()]


def test_a_read_token_reads_queues_and_workers_and_reports_nothing(
    server: ServerProcess, read_token: str
) -> None:
    with server.http(read_token) as reader:
        for path in ("queue-counts", "queues", "workers"):
            assert reader.get(f"/api/v1/records/{path}").status_code == 200
        put = reader.put("/api/v1/records/workers/spy", json=worker_body("spy"))
        seen = reader.post("/api/v1/records/workers/spy/seen", json={"running": 0, "now": 1.0})
    assert (put.status_code, seen.status_code) == (403, 403)


# -- a worker with nothing but the server ------------------------------------------------
@pytest.fixture
def through_server(
    server: ServerProcess, write_token: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Journal]:
    monkeypatch.setenv("KITARU_API_TOKEN", write_token)
    try:
        yield open_journal(server.url)
    finally:
        remote.reset_for_tests()


def test_the_journal_of_a_write_token_serves_a_worker(
    server: ServerProcess, through_server: Journal, waiting: tuple[str, str]
) -> None:
    queue, exec_id = waiting
    journal = through_server
    now = time.time()
    name = f"w-{time.monotonic_ns()}"
    journal.put_worker(WorkerRecord(name, "h", 1, [queue], ["report"], 2, 0, now, now))
    assert journal.queue_counts(now)[queue]["depth"] == 1
    got = journal.claim(
        queue=queue, flows=["report"], owner=OWNER, worker=name, now=now, lease_until=now + 30
    )
    assert got is not None and got.exec_id == exec_id and got.worker == name
    assert journal.heartbeat(exec_id, owner=OWNER, now=now, lease_until=now + 30) is False
    journal.worker_seen(name, running=1, now=time.time())
    assert [w.running for w in journal.list_workers() if w.name == name] == [1]
    assert journal.finish(exec_id, owner=OWNER, status="completed", now=time.time())


@pytest.mark.slow
def test_kitaru_worker_runs_submitted_executions_through_the_server(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    write_flows(folder)
    env = env_through_server(tmp_path, server.url, write_token)
    queue = f"q-{time.monotonic_ns()}"
    ids = submit(folder, env, f"steps.submit(2, queue={queue!r})", count=3)
    workers = Workers(folder, env)
    try:
        workers.start("--queue", queue, "--concurrency", "2")
        with server.http(write_token) as http:

            def done() -> dict[str, str]:
                return {
                    i: http.get(f"/api/v1/records/executions/{i}").json()["status"] for i in ids
                }

            wait_until(lambda: set(done().values()) == {"completed"}, 30, workers.output)
            shown = [http.get(f"/api/v1/records/executions/{i}").json() for i in ids]
    finally:
        workers.stop()
    assert {r["queue"] for r in shown} == {queue}
    assert all(r["worker"] and r["claimed_at"] for r in shown)


@pytest.mark.slow
def test_a_worker_whose_clock_runs_ahead_keeps_working_when_a_recovery_is_refused(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # Another host's worker runs an execution of our queue; its lease is live by the
    # server's clock. Ours, two minutes ahead, thinks it expired and asks to requeue it:
    # the server refuses (a live lease is never taken over), and the worker must go on.
    folder = tmp_path / "project"
    write_flows(folder)
    env = env_through_server(tmp_path, server.url, write_token)
    queue = f"q-{time.monotonic_ns()}"
    with server.http(write_token) as http:
        held = create(http, queue=queue, flow="steps")
        body = claim_body(queue, flows=["steps"], lease_seconds=90)
        assert http.post(CLAIM, json=body).json()["execution"]["exec_id"] == held
    workers = Workers(folder, {**skewed(env, tmp_path / "skew", 120), "KITARU_HOST": "host-c"})
    try:
        proc = workers.start("--queue", queue)
        time.sleep(3)  # it looks for dead workers' executions every second
        assert proc.poll() is None, workers.output()
        [exec_id] = submit(folder, env, f"steps.submit(1, queue={queue!r})")
        wait_until(
            lambda: record_of(server, write_token, exec_id)["status"] == "completed",
            30,
            workers.output,
        )
    finally:
        workers.stop()
    assert record_of(server, write_token, held)["status"] == "running"


@pytest.mark.slow
def test_a_claim_that_answers_after_sigterm_is_handed_back_too(tmp_path: Path) -> None:
    # The worker is stopped (SIGTERM) while its claim waits for the server; the claim
    # then answers with an execution: it goes back to the queue unstarted, rather than
    # run to its end (or be killed past the grace) in a worker that is stopping.
    import os
    import signal

    from tests.journal.conftest import fresh_postgres_url
    from tests.workers.support import env_for

    url = fresh_postgres_url()
    own = ServerProcess(url, tmp_path / "server", args=("--access-log",))  # read below
    folder = tmp_path / "project"
    write_flows(folder)
    workers = Workers(folder, env_through_server(tmp_path, own.url, own.token("write")))
    try:
        worker = workers.start("--grace", "60")

        # Right after the first claim that follows its once-a-second housekeeping, the
        # worker's next call is a claim again.
        def after_housekeeping() -> bool:
            lines = own.log().splitlines()
            return len(lines) > 1 and "/runner/claim" in lines[-1] and "/claim" not in lines[-2]

        wait_until(after_housekeeping, 10, own.log)
        time.sleep(0.1)
        os.kill(own.proc.pid, signal.SIGSTOP)  # the claim waits for an answer
        time.sleep(0.5)
        direct = env_for(url, tmp_path / "direct-home", tmp_path / "ledger.txt")
        [exec_id] = submit(folder, direct, "steps.submit(40, pause=0.25)")
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        os.kill(own.proc.pid, signal.SIGCONT)
        resumed = time.monotonic()
        worker.wait(30)
        assert time.monotonic() - resumed < 8, workers.output()  # the flow takes 10 s
        found = open_journal(url).get_execution(exec_id)
    finally:
        os.kill(own.proc.pid, signal.SIGCONT)
        workers.stop()
        own.stop()
    assert found is not None and (found.status, found.owner) == ("queued", None), workers.output()
    assert "requeued" in [e["event"] for e in workers.events(0)], workers.output()
