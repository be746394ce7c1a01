"""When a reader restarts an execution (kitaru/stacks/_restarts.py), on a stack whose
platform is the Cloud Run stand-in (tests/stacks/_fake_cloud_run.py): a failed or lost
run is submitted again while the stack's `max_restarts` allows, never a run that is
still alive, was cancelled, or ended with success without taking the execution. What
the user sees is read with `kitaru executions get`; what reached the platform is read
from its state (its executions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru import _execute, _flow_inputs
from kitaru.journal import current_journal
from kitaru.stacks import _resolve
from kitaru.stacks._submit import _submit, make_orchestrator
from tests.stacks._fake_cloud_run import FakeCloudRun
from tests.stacks._queued import IMAGE, agent, get, queue, register_cloud_run, settled
from tests.stacks._recorder import recording

FAILED = {
    "failedCount": 1,
    "conditions": [
        {
            "type": "Completed",
            "state": "CONDITION_FAILED",
            "executionReason": "NON_ZERO_EXIT_CODE",
            "message": "Task was preempted.",
        }
    ],
}


@pytest.fixture
def cloud_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudRun]:
    fake = FakeCloudRun()
    monkeypatch.setenv("KITARU_JOURNAL_URL", f"sqlite:///{tmp_path / 'journal.db'}")
    with recording(fake) as api:
        registered = register_cloud_run(
            api.url, tmp_path,
            "--set", f"logging_endpoint={api.url}",
            "--set", "max_restarts=1",
            "--set", "restart_backoff_seconds=0",
        )  # fmt: skip
        assert registered.returncode == 0, registered
        yield fake


def _running_whose_lease_expired() -> str:
    """An execution a container took, then stopped renewing the lease of (it died)."""
    journal = current_journal()
    stack = _resolve.get_stack(journal, "cloud")
    record = _execute.new_record(
        agent,
        stack=stack.name,
        artifact_store=stack.artifact_store,
        now=time.time() - 120,
        owner="gcp_cloud_run-kx-r1a2b3:1:0:5eed",  # another host: only the lease tells
    )
    record.orchestrator = stack.orchestrator
    record.project_root = str(Path(__file__).parent)
    record.metadata = {"image": IMAGE}
    record.lease_until = time.time() - 60
    journal.create_execution(
        record,
        _flow_inputs.input_artifacts(
            record.exec_id, stack.artifact_store, agent.fn, {"topic": "tides"}
        ),
    )
    _submit(journal, record, stack, make_orchestrator(stack))
    return record.exec_id


def _until_restarted(exec_id: str, first: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view = get(exec_id)
    while view["run_id"] == first and time.monotonic() < deadline:
        time.sleep(0.5)
        view = get(exec_id)
    return view


def test_a_queued_execution_whose_run_failed_is_restarted_until_the_budget_is_spent(
    cloud_run: FakeCloudRun,
) -> None:
    exec_id = queue("cloud")
    first = get(exec_id)["run_id"]
    cloud_run.update(first, **FAILED)

    view = _until_restarted(exec_id, first)
    assert view["status"] == "queued", view
    assert view["metadata"]["restarts"] == 1
    assert view["metadata"]["restart_reason"] == f"run {first} failed: Task was preempted."
    second = view["run_id"]
    assert second in cloud_run.executions and second != first

    cloud_run.update(second, **FAILED)  # out of restarts (max_restarts=1)
    view = settled(exec_id)
    assert view["status"] == "failed", view
    assert view["error"].startswith(f"the gcp_cloud_run run {second} ended (failed")
    assert len(cloud_run.executions) == 2


def test_a_running_execution_whose_container_died_is_restarted(
    cloud_run: FakeCloudRun,
) -> None:
    exec_id = _running_whose_lease_expired()
    first = get(exec_id)["run_id"]
    cloud_run.update(first, **FAILED)
    view = _until_restarted(exec_id, first)
    assert view["status"] == "queued", view
    assert view["metadata"]["restarts"] == 1
    assert cloud_run.executions[view["run_id"]]["conditions"][0]["state"] == "CONDITION_PENDING"


def test_a_run_still_alive_behind_an_expired_lease_is_not_restarted(
    cloud_run: FakeCloudRun,
) -> None:
    exec_id = _running_whose_lease_expired()
    first = get(exec_id)["run_id"]
    cloud_run.update(first, runningCount=1)  # a partition, not a death
    view = get(exec_id)
    assert (view["status"], view["run_id"]) == ("crashed", first)
    assert "restarts" not in view["metadata"]
    assert len(cloud_run.executions) == 1


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"cancelledCount": 1}, id="cancelled-on-the-platform"),
        pytest.param({"succeededCount": 1}, id="exited-0-without-taking-it"),
    ],
)
def test_a_run_that_did_not_die_is_not_restarted(
    cloud_run: FakeCloudRun, state: dict[str, Any]
) -> None:
    exec_id = queue("cloud")
    first = get(exec_id)["run_id"]
    cloud_run.update(first, **state)
    view = settled(exec_id)
    assert view["status"] == "failed", view
    assert len(cloud_run.executions) == 1


def test_the_server_sweep_restarts_a_running_execution_whose_container_died(
    cloud_run: FakeCloudRun,
) -> None:
    from kitaru.server._sweeper import Sweeper

    exec_id = _running_whose_lease_expired()
    journal = current_journal()
    record = journal.get_execution(exec_id)
    assert record is not None and record.run_id is not None
    cloud_run.update(record.run_id, **FAILED)

    assert Sweeper(journal, interval=0).restart_lost(time.time()) == [exec_id]
    after = journal.get_execution(exec_id)
    assert after is not None and after.status == "queued"
    assert after.run_id != record.run_id and after.run_id in cloud_run.executions
    # Restarted once: a second sweep finds nothing to do.
    assert Sweeper(journal, interval=0).restart_lost(time.time()) == []
