"""`kitaru worker`: queued executions run once each, within limits, through crashes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from kitaru.journal import Journal, open_journal
from tests.journal.conftest import fresh_postgres_url
from tests.workers.support import (
    Workers,
    env_for,
    kitaru,
    ledger,
    max_overlap,
    skewed,
    statuses,
    submit,
    wait_until,
)


def _all(journal: Journal, ids: list[str], status: str = "completed"):  # type: ignore[no-untyped-def]
    return lambda: set(statuses(journal, ids).values()) == {status}


def test_queue_limit_holds_across_workers_and_each_body_runs_once(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str], ledger_path: Path
) -> None:
    assert (
        kitaru(project, worker_env, "queues", "set", "default", "--concurrency", "3").returncode
        == 0
    )
    ids = submit(project, worker_env, "steps.submit(2, pause=0.1)", 24)
    workers.start("--concurrency", "8")
    workers.start("--concurrency", "8")
    wait_until(_all(journal, ids), 120, workers.output)
    records = [journal.get_execution(i) for i in ids]
    assert max_overlap([r for r in records if r]) <= 3
    runs = ledger(ledger_path)
    assert len(runs) == 48 and all(len(v) == 1 for v in runs.values())
    shown = json.loads(kitaru(project, worker_env, "queues", "show", "default", "--json").stdout)
    assert shown["concurrency"] == 3 and shown["depth"] == 0 and len(shown["workers"]) == 2


def test_a_killed_worker_loses_its_executions_to_the_other_which_resumes_them(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str], ledger_path: Path
) -> None:
    ids = submit(project, worker_env, "steps.submit(4, pause=0.05)", 200)
    doomed = workers.start("--concurrency", "8", name="doomed")
    workers.start("--concurrency", "8", name="survivor")
    wait_until(
        lambda: sum(s == "completed" for s in statuses(journal, ids).values()) >= 60,
        120,
        workers.output,
    )
    os.kill(doomed.pid, signal.SIGKILL)
    wait_until(_all(journal, ids), 240, workers.output)
    runs = ledger(ledger_path)
    for exec_id in ids:
        record = journal.get_execution(exec_id)
        assert record is not None
        from kitaru.client import KitaruClient

        kept = KitaruClient(journal.url).executions.get(exec_id).result
        for i, nonce in enumerate(kept):
            # The output kept is the body's last run: no committed body ran again.
            assert runs[(exec_id, f"step#{i}")][-1] == nonce
    reruns = sum(len(v) - 1 for v in runs.values())
    assert reruns <= 8  # at most the calls the killed worker had in flight
    assert any(e["event"] == "requeued" for e in workers.events(1))


def test_sigterm_hands_running_executions_back_at_a_checkpoint_boundary(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str], ledger_path: Path
) -> None:
    [exec_id] = submit(project, worker_env, "steps.submit(6, pause=0.4)")
    first = workers.start("--concurrency", "2", "--grace", "20")
    wait_until(lambda: len(ledger(ledger_path)) >= 2, 60, workers.output)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    record = journal.get_execution(exec_id)
    assert record is not None and record.status == "queued", record
    assert "released" in [e["event"] for e in workers.events(0)]
    workers.start("--concurrency", "2")
    wait_until(_all(journal, [exec_id]), 60, workers.output)
    assert all(len(v) == 1 for v in ledger(ledger_path).values())  # nothing ran twice
    assert len(ledger(ledger_path)) == 6


def test_past_its_grace_a_running_execution_is_killed_and_queued_again(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    [exec_id] = submit(project, worker_env, "steps.submit(1, pause=60)")
    first = workers.start("--grace", "1")
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "running", 30, workers.output)
    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    assert time.monotonic() - started < 15
    record = journal.get_execution(exec_id)
    assert record is not None and record.status == "queued" and record.owner is None


def test_higher_priority_runs_first(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    low = submit(project, worker_env, "steps.submit(1, pause=0)", 3)
    high = submit(project, worker_env, "steps.submit(1, pause=0, priority=5)", 2)
    workers.start("--concurrency", "1")
    wait_until(_all(journal, low + high), 60, workers.output)
    order = [e["exec_id"] for e in workers.events(0) if e["event"] == "claimed"]
    assert order[:2] == high and order[2:] == low


def test_the_start_rate_limit_is_per_minute_across_workers(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    kitaru(project, worker_env, "queues", "set", "slow", "--rate", "4")
    ids = submit(project, worker_env, "steps.submit(1, pause=0, queue='slow')", 7)
    workers.start("--queue", "slow")
    workers.start("--queue", "slow")
    wait_until(
        lambda: sum(s == "completed" for s in statuses(journal, ids).values()) >= 4,
        60,
        workers.output,
    )
    time.sleep(2)
    assert sum(s == "completed" for s in statuses(journal, ids).values()) == 4
    view = json.loads(kitaru(project, worker_env, "queues", "show", "slow", "--json").stdout)
    assert view["depth"] == 3 and view["rate_per_minute"] == 4


def test_a_worker_continues_a_wait_past_its_timeout_without_a_server(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    [exec_id] = submit(project, worker_env, "timed.run(1)")
    assert statuses(journal, [exec_id])[exec_id] == "waiting"
    workers.start()
    wait_until(_all(journal, [exec_id]), 30, workers.output)
    from kitaru.client import KitaruClient

    assert KitaruClient(journal.url).executions.get(exec_id).result == "False"


def test_a_worker_wakes_a_durable_sleep_once_its_time_has_passed(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str], ledger_path: Path
) -> None:
    started = time.time()
    [exec_id] = submit(project, worker_env, "dozes.run(2)")
    # The sleep released the process that started it, long before the 2 s were up.
    assert time.time() - started < 10
    assert statuses(journal, [exec_id])[exec_id] == "waiting"
    [sleep] = journal.waits(exec_id)
    workers.start()
    wait_until(_all(journal, [exec_id]), 30, workers.output)
    record = journal.get_execution(exec_id)
    assert record is not None and record.ended_at is not None
    assert record.ended_at >= sleep.timeout_at  # type: ignore[operator]
    runs = ledger(ledger_path)
    assert [len(v) for v in runs.values()] == [1, 1]  # step#0 was read back, not run again


def test_a_flow_that_kills_its_process_fails_after_three_deaths(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    [exec_id] = submit(project, worker_env, "crashes.submit()")
    workers.start()
    wait_until(_all(journal, [exec_id], "failed"), 60, workers.output)
    record = journal.get_execution(exec_id)
    assert record is not None and record.error is not None
    assert "died 3 times" in record.error and "exit code 9" in record.error
    assert record.runs == 3


@pytest.mark.parametrize("code", [0, 1])
def test_a_flow_that_exits_its_process_with_code_0_or_1_also_fails_after_three_deaths(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str], code: int
) -> None:
    # The exit codes a child uses for "ended as recorded": a flow's os._exit(0 or 1)
    # leaves its execution running under a dead process all the same.
    [exec_id] = submit(project, worker_env, f"crashes.submit({code})")
    workers.start()
    wait_until(_all(journal, [exec_id], "failed"), 60, workers.output)
    record = journal.get_execution(exec_id)
    assert record is not None and record.error is not None
    assert "died 3 times" in record.error and f"exit code {code}" in record.error
    assert record.runs == 3


def test_cancel_stops_the_execution_and_not_its_worker(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    [exec_id] = submit(project, worker_env, "steps.submit(50, pause=0.2)")
    worker = workers.start()
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "running", 30, workers.output)
    shown = json.loads(kitaru(project, worker_env, "executions", "get", exec_id, "--json").stdout)
    assert shown["worker"] and shown["queue"] == "default"
    result = kitaru(project, worker_env, "executions", "cancel", exec_id, "--grace", "10")
    assert result.returncode == 0, result.stderr
    assert statuses(journal, [exec_id])[exec_id] == "cancelled"
    assert worker.poll() is None
    [later] = submit(project, worker_env, "steps.submit(1, pause=0)")
    wait_until(_all(journal, [later]), 30, workers.output)


@pytest.mark.xfail(
    strict=True,
    reason="leases are stamped and judged by each host's own clock: a worker whose clock "
    "runs ahead of the owner's by more than the lease sees a live execution of another "
    "host as orphaned, queues it again (_recover_orphans) and runs it a second time; "
    "judging leases needs one clock (the database's), a change to every lease writer",
)
def test_a_worker_whose_clock_runs_ahead_never_takes_a_live_execution_of_another_host(
    project: Path, tmp_path: Path, ledger_path: Path
) -> None:
    url = fresh_postgres_url()
    env = env_for(url, tmp_path / "home", ledger_path)
    journal = open_journal(url)
    workers = Workers(project, env)
    try:
        [exec_id] = submit(project, env, "steps.submit(30, pause=0.5)")
        workers.env = {**env, "KITARU_HOST": "host-a"}
        workers.start()
        wait_until(lambda: len(ledger(ledger_path)) >= 1, 30, workers.output)
        workers.env = {**skewed(env, tmp_path / "skew", 60), "KITARU_HOST": "host-b"}
        workers.start()
        wait_until(_all(journal, [exec_id]), 120, workers.output)
    finally:
        workers.stop()
    record = journal.get_execution(exec_id)
    assert record is not None and record.runs == 1, workers.output()
    assert all(len(v) == 1 for v in ledger(ledger_path).values()), workers.output()
