"""The journal's stack, setting and queue methods, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import time

from kitaru.journal import Journal, StackRecord
from tests.journal.test_conformance import execution


def test_stacks_are_stored_replaced_listed_and_deleted(journal: Journal) -> None:
    box = StackRecord(
        name="box",
        orchestrator="docker",
        artifact_store="s3://bucket/runs",
        journal="env:PROD_JOURNAL",
        registry="localhost:5000/kitaru",
        builder="docker",
        settings={"network": "host", "secret_environment": {"PGPASSWORD": "env:PGPASSWORD"}},
        created_at=1.0,
        updated_at=1.0,
    )
    assert journal.put_stack(box)
    assert not journal.put_stack(StackRecord("box", "kubernetes", "s3://other"))
    assert journal.get_stack("box") == box
    changed = StackRecord("box", "kubernetes", "gs://b", created_at=1.0, updated_at=2.0)
    assert journal.put_stack(changed, replace=True)
    assert journal.get_stack("box") == changed
    journal.put_stack(StackRecord("aaa", "local", "file:///tmp/x"))
    assert [s.name for s in journal.list_stacks()] == ["aaa", "box"]
    assert journal.delete_stack("box")
    assert not journal.delete_stack("box")
    assert journal.get_stack("box") is None


def test_settings_are_set_replaced_and_removed(journal: Journal) -> None:
    assert journal.get_setting("active_stack") is None
    journal.set_setting("active_stack", "box")
    journal.set_setting("active_stack", "k8s")
    assert journal.get_setting("active_stack") == "k8s"
    journal.set_setting("active_stack", None)
    assert journal.get_setting("active_stack") is None


def test_queued_executions_move_only_from_the_expected_state(journal: Journal) -> None:
    e = execution(owner=None, status="queued", project_root="/home/me/agent")
    journal.create_execution(e, [])
    assert journal.get_execution(e.exec_id).project_root == "/home/me/agent"  # type: ignore[union-attr]
    now = time.time()
    # A run takes the queued execution like a resume takes a crashed one.
    assert journal.take_lease(
        e.exec_id,
        owner="c1",
        expected_owner=None,
        statuses=("queued",),
        now=now,
        lease_until=now + 30,
    )
    assert not journal.transition(
        e.exec_id, to="queued", from_statuses=("running",), expected_owner="other", now=now
    )
    assert journal.transition(
        e.exec_id, to="queued", from_statuses=("running",), expected_owner="c1", now=now
    )
    again = journal.get_execution(e.exec_id)
    assert again is not None and again.status == "queued" and again.owner is None
    assert again.ended_at is None
    assert journal.transition(
        e.exec_id,
        to="failed",
        from_statuses=("queued",),
        expected_owner=None,
        now=now,
        error="the run ended without starting it",
    )
    failed = journal.get_execution(e.exec_id)
    assert failed is not None and failed.status == "failed" and failed.ended_at == now
    assert failed.error == "the run ended without starting it"
    # A cancel request wins over a late transition.
    c = execution(owner=None, status="queued")
    journal.create_execution(c, [])
    journal.request_cancel(c.exec_id, now=now)
    assert not journal.transition(
        c.exec_id, to="failed", from_statuses=("queued",), expected_owner=None, now=now
    )
