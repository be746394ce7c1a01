"""Checkpoint calls committed together (`POST /api/v1/runner/calls`, the HTTP journal's
batches, the server's group commit) keep every guarantee of a call committed alone:
each is stored before its answer, fenced by its own lease, answered the same when sent
again, and refused by the same token rules."""

from __future__ import annotations

import threading
import time
from typing import Any

from kitaru._codec import to_wire
from kitaru._connection import Connection
from kitaru._errors import InvalidInputError
from kitaru._ids import new_id
from kitaru.journal import ArtifactRecord, CallRecord, ExecutionRecord, open_journal
from kitaru.journal._http import HttpJournal
from kitaru.journal._records import call_output_id
from kitaru.server import _tokens
from tests.server_process import ServerProcess


def _journal(server: ServerProcess, token: str) -> HttpJournal:
    return HttpJournal(server.url, connection=Connection(server.url, token))


def _running(journal: HttpJournal, owner: str) -> str:
    now = time.time()
    exec_id = new_id("kx")
    journal.create_execution(
        ExecutionRecord(
            exec_id=exec_id, flow="batch", status="running", created_at=now, updated_at=now,
            flow_ref="batch:flow", owner=owner, lease_until=now + 3600, runs=1,
            artifact_store="file:///tmp/unused",
        ),
        [],
    )  # fmt: skip
    return exec_id


def _call(
    exec_id: str, seq: int, producer: str = "checkpoint"
) -> tuple[CallRecord, ArtifactRecord]:
    now = time.time()
    output = ArtifactRecord(
        artifact_id=call_output_id(exec_id, seq), exec_id=exec_id, name=f"step#{seq}",
        version=1, producer=producer, producer_key=f"step#{seq}", type_ref="builtins:int",
        serializer="pickle" if producer == "override" else "json", content_hash="0" * 32,
        size=1, uri=None, created_at=now, inline=b"1",
    )  # fmt: skip
    call = CallRecord(
        exec_id=exec_id, key=f"step#{seq}", seq=seq, name="step", func="batch:step",
        status="completed", started_at=now, ended_at=now, run=1,
        output_artifact=output.artifact_id,
    )  # fmt: skip
    return call, output


def _commit(exec_id: str, seq: int, owner: str, producer: str = "checkpoint") -> dict[str, Any]:
    call, output = _call(exec_id, seq, producer)
    return {"owner": owner, "call": to_wire(call), "output": to_wire(output), "logs": []}


def test_commits_sent_together_each_keep_their_answer(
    server: ServerProcess, write_token: str
) -> None:
    journal = _journal(server, write_token)
    mine, taken = _running(journal, "me:1:0:0"), _running(journal, "other:1:0:0")
    body = {
        "commits": [
            _commit(mine, 1, "me:1:0:0"),
            _commit(taken, 1, "me:1:0:0"),  # its lease is another process's: fenced
            _commit(mine, 2, "me:1:0:0"),
        ]
    }
    with server.http(write_token) as http:
        assert http.post("/api/v1/runner/calls", json=body).json() == {
            "committed": [True, False, True]
        }
        # The answer lost and the request sent again: answered as the first time.
        assert http.post("/api/v1/runner/calls", json=body).json() == {
            "committed": [True, False, True]
        }
    assert [c.seq for c in journal.calls(mine)] == [1, 2]
    assert journal.calls(taken) == []


def test_a_batch_is_refused_whole_for_what_one_commit_may_not_do(
    server: ServerProcess, write_token: str, read_token: str
) -> None:
    journal = _journal(server, write_token)
    own, victim = _running(journal, "me:1:0:0"), _running(journal, "victim:1:0:0")
    stolen = _tokens.mint_run_token(open_journal(server.journal_url), own)
    refused = {
        # A run token reaches its own execution only: one commit of another's is enough.
        (stolen, 403): [_commit(own, 1, "me:1:0:0"), _commit(victim, 1, "victim:1:0:0")],
        (read_token, 403): [_commit(own, 1, "me:1:0:0"), _commit(own, 2, "me:1:0:0")],
        # Pickled bytes as an override's output: never from outside a call.
        (write_token, 422): [_commit(own, 1, "me:1:0:0"), _commit(own, 2, "me:1:0:0", "override")],
    }
    for (token, status), commits in refused.items():
        with server.http(token) as attacker:
            answer = attacker.post("/api/v1/runner/calls", json={"commits": commits})
        assert answer.status_code == status, answer.text
    # Nothing of any refused request was stored, not even its acceptable commits.
    assert journal.calls(own) == [] and journal.calls(victim) == []


def test_flows_committing_at_once_each_get_their_own_answer(
    server: ServerProcess, write_token: str
) -> None:
    journal = _journal(server, write_token)  # one journal, as the flows of a process share
    owners = [f"flow{i}:1:0:0" for i in range(6)]
    ids = [_running(journal, owner) for owner in owners]
    answers: dict[int, list[bool]] = {}

    def run(i: int) -> None:
        # Flow 5 lost its lease before it started: every commit of it is fenced.
        owner = "stale:1:0:0" if i == 5 else owners[i]
        answers[i] = [
            journal.commit_call(*_call(ids[i], seq), [], owner=owner) for seq in range(1, 21)
        ]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(5):
        assert answers[i] == [True] * 20
        assert [c.seq for c in journal.calls(ids[i])] == list(range(1, 21))
    assert answers[5] == [False] * 20 and journal.calls(ids[5]) == []


def test_a_refused_commit_does_not_fail_the_flows_committing_beside_it(
    server: ServerProcess, write_token: str
) -> None:
    journal = _journal(server, write_token)
    owners = [f"near{i}:1:0:0" for i in range(4)]
    ids = [_running(journal, owner) for owner in owners]
    outcomes: dict[int, list[object]] = {}

    def run(i: int) -> None:
        # Flow 3 sends pickled bytes as an override: refused (422) every time.
        producer = "override" if i == 3 else "checkpoint"
        got: list[object] = []
        for seq in range(1, 16):
            try:
                got.append(journal.commit_call(*_call(ids[i], seq, producer), [], owner=owners[i]))
            except InvalidInputError:
                got.append("refused")
        outcomes[i] = got

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        assert outcomes[i] == [True] * 15
        assert len(journal.calls(ids[i])) == 15
    assert outcomes[3] == ["refused"] * 15 and journal.calls(ids[3]) == []
