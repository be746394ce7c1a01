"""A thousand waits answered at once through the server's REST API, run by two workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kitaru.journal import Journal
from tests.server_process import ServerProcess
from tests.workers.support import Workers, ledger, max_overlap, statuses, submit, wait_until

COUNT = 1000


def test_a_burst_of_answers_runs_each_execution_once_and_never_more_than_the_limits(
    workers: Workers,
    journal: Journal,
    journal_url: str,
    project: Path,
    worker_env: dict[str, str],
    ledger_path: Path,
    tmp_path: Path,
) -> None:
    ids = submit(project, worker_env, "approve.run(i)", COUNT)
    assert set(statuses(journal, ids).values()) == {"waiting"}
    server = ServerProcess(journal_url, tmp_path / "server", args=("--sweep-interval", "0"))
    try:
        token = server.token("write", name="approvals")
        workers.start("--concurrency", "8", name="w1")
        workers.start("--concurrency", "8", name="w2")

        def answer(exec_id: str) -> int:
            with server.http(token) as http:
                reply = http.post(
                    f"/api/v1/executions/{exec_id}/input", json={"wait": "ok", "value": True}
                )
                return reply.status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(answer, ids))
        assert set(codes) == {202}, codes[:5]  # accepted: left to a worker
        wait_until(
            lambda: set(statuses(journal, ids).values()) == {"completed"},
            600,
            lambda: f"{statuses(journal, ids)}\n{workers.output()[-3000:]}",
        )
    finally:
        server.stop()
    records = [r for i in ids if (r := journal.get_execution(i)) is not None]
    assert max_overlap(records) <= 16
    assert {r.worker for r in records} == {"w1", "w2"}
    runs = ledger(ledger_path)
    # Each execution's checkpoint after the answer ran once: nothing ran twice.
    assert len(runs) == COUNT and all(len(v) == 1 for v in runs.values())
    assert all(r.runs == 2 for r in records)  # the first run to the wait, one after it
