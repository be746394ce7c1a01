"""The journal's deployment, tag and tag-history methods, on SQLite, PostgreSQL and the
HTTP journal (a real server) alike."""

from __future__ import annotations

import threading
import time

import pytest

from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru.journal import DeploymentRecord, Journal
from kitaru.journal import _connect as connect_journal
from tests.journal.test_conformance import execution


def deployment(flow: str = "agent", digest: str = "sha256:aa", **kw: object) -> DeploymentRecord:
    record = DeploymentRecord(
        flow=flow,
        version=0,
        image=f"127.0.0.1:5000/kitaru/agent@{digest}",
        digest=digest,
        content_hash="c" * 64,
        lock_hash="l" * 64,
        source_hash="s" * 64,
        kitaru_version="0.1.0",
        signature=[{"name": "topic", "kind": "POSITIONAL_OR_KEYWORD", "required": True}],
        flow_ref="agent:agent",
        flow_file="agent.py",
        import_path=".",
        project_root="/home/me/agent",
        stack="box",
        orchestrator="docker",
        builder="docker",
        reused=False,
        created_by="me@laptop",
        created_at=time.time(),
        manifest={"agent.py": "ab" * 32, "pyproject.toml": "cd" * 32},
        metadata={"repository": "127.0.0.1:5000/kitaru/agent"},
    )
    for key, value in kw.items():
        setattr(record, key, value)
    return record


def test_versions_count_up_per_flow_and_are_never_reused(journal: Journal) -> None:
    first = journal.create_deployment(deployment(), tag="default")
    second = journal.create_deployment(deployment(digest="sha256:bb", reused=True))
    other = journal.create_deployment(deployment(flow="other"))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    stored = journal.get_deployment("agent", 1)
    assert stored == first
    assert stored is not None and stored.manifest["agent.py"] == "ab" * 32
    assert stored.signature[0]["name"] == "topic" and stored.deleted_at is None
    listed = journal.list_deployments("agent")
    assert [d.version for d in listed] == [2, 1]
    assert listed[0].reused and listed[0].manifest == {}  # lists leave manifests out
    assert [(d.flow, d.version) for d in journal.list_deployments()] == [
        ("agent", 2),
        ("agent", 1),
        ("other", 1),
    ]
    tag = journal.get_tag("agent", "default")
    assert tag is not None and (tag.version, tag.weight, tag.previous_version) == (1, 100, None)

    # Deleting is refused while a tag points at the version, and a deleted number is
    # never given out again.
    assert not journal.delete_deployment("agent", 1, now=time.time())
    assert journal.delete_deployment("agent", 2, now=time.time())
    assert not journal.delete_deployment("agent", 2, now=time.time())
    assert not journal.delete_deployment("agent", 9, now=time.time())
    assert [d.version for d in journal.list_deployments("agent")] == [1]
    gone = journal.get_deployment("agent", 2)
    assert gone is not None and gone.deleted_at is not None
    assert journal.create_deployment(deployment()).version == 3


def test_tags_move_atomically_canary_and_rollback_are_in_the_history(journal: Journal) -> None:
    for digest in ("sha256:01", "sha256:02", "sha256:03"):
        journal.create_deployment(deployment(digest=digest), tag="default")
    journal.set_tag("agent", "default", 2, by="ann", now=10.0)  # rollback is a move
    canary = journal.set_tag("agent", "default", 3, weight=10, by="bob", now=11.0)
    assert (canary.version, canary.weight, canary.previous_version) == (3, 10, 2)
    # A new weight for the canary keeps the rest on the stable version, not the canary.
    wider = journal.set_tag("agent", "default", 3, weight=50, by="bob", now=12.0)
    assert (wider.version, wider.weight, wider.previous_version) == (3, 50, 2)
    # The version serving the rest cannot be deleted either.
    assert not journal.delete_deployment("agent", 2, now=13.0)
    journal.set_tag("agent", "stable", 1, by="ann", now=14.0)
    assert [t.tag for t in journal.list_tags("agent")] == ["default", "stable"]
    assert journal.remove_tag("agent", "stable", by="ann", now=15.0)
    assert not journal.remove_tag("agent", "stable", by="ann", now=16.0)
    assert journal.get_tag("agent", "stable") is None

    history = journal.tag_history("agent")
    assert [(e.seq, e.tag, e.action, e.version, e.weight, e.from_version) for e in history] == [
        (1, "default", "tag", 1, 100, None),
        (2, "default", "tag", 2, 100, 1),
        (3, "default", "tag", 3, 100, 2),
        (4, "default", "tag", 2, 100, 3),
        (5, "default", "tag", 3, 10, 2),
        (6, "default", "tag", 3, 50, 3),
        (7, "stable", "tag", 1, 100, None),
        (8, "stable", "untag", None, None, 1),
    ]
    assert history[5].from_weight == 10 and history[5].from_previous == 2
    # Through a server, who moved a tag is the token that asked, never a name the request gives.
    expected_by = "ann" if not journal.url.startswith("http") else "token "
    assert history[3].by.startswith(expected_by) and history[3].at == 10.0


def test_bad_tag_moves_are_refused_and_change_nothing(journal: Journal) -> None:
    journal.create_deployment(deployment())
    with pytest.raises(NotFoundError, match="no deployment version 7; versions: 1"):
        journal.set_tag("agent", "default", 7, by="me", now=1.0)
    with pytest.raises(NotFoundError, match="versions: none"):
        journal.set_tag("ghost", "default", 1, by="me", now=1.0)
    with pytest.raises(InvalidInputError, match="weight 100 is outside 1-99"):
        journal.set_tag("agent", "default", 1, weight=100, by="me", now=1.0)
    with pytest.raises(InvalidInputError, match="weight 0 is outside 1-99"):
        journal.set_tag("agent", "default", 1, weight=0, by="me", now=1.0)
    with pytest.raises(KitaruUsageError, match="points at no version yet"):
        journal.set_tag("agent", "default", 1, weight=10, by="me", now=1.0)
    journal.set_tag("agent", "default", 1, by="me", now=1.0)
    with pytest.raises(KitaruUsageError, match="already serves the rest"):
        journal.set_tag("agent", "default", 1, weight=10, by="me", now=2.0)
    assert len(journal.tag_history("agent")) == 1
    tag = journal.get_tag("agent", "default")
    assert tag is not None and (tag.version, tag.weight) == (1, 100)


def test_concurrent_deploys_each_get_their_own_version(journal: Journal) -> None:
    """Eight writers, each with its own connection, record at once: eight numbers."""
    writers = [connect_journal(journal.url) for _ in range(8)]
    got: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(writers))

    def deploy(writer: Journal) -> None:
        start.wait()
        try:
            got.append(writer.create_deployment(deployment(), tag="default").version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert not errors
    assert sorted(got) == list(range(1, 9))
    assert len(journal.tag_history("agent")) == 8


def test_executions_record_the_deployment_version_they_ran(journal: Journal) -> None:
    e = execution(owner=None, status="queued", deployment_version=3, invocation_id="inv-1")
    journal.create_execution(e, [])
    stored = journal.get_execution(e.exec_id)
    assert stored is not None
    assert (stored.deployment_version, stored.invocation_id) == (3, "inv-1")
    plain = execution()
    journal.create_execution(plain, [])
    again = journal.get_execution(plain.exec_id)
    assert again is not None and again.deployment_version is None
