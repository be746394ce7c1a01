"""Small pieces users depend on indirectly: ids, leases, serializers, durability modes."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

import kitaru
from kitaru import _later, _lease, _logs, _serialize
from kitaru._ids import new_id
from kitaru.journal import current_journal


def test_ids_sort_by_creation_time() -> None:
    first = new_id("kx")
    time.sleep(0.002)
    second = new_id("kx")
    assert first < second and first.startswith("kx_") and len(first) == 31
    assert len({new_id("ka") for _ in range(10000)}) == 10000


def test_the_timer_starts_what_is_due_and_nothing_a_run_cancelled() -> None:
    """A run's heartbeat and feed writer are started by the timer only when due: while
    many short runs schedule and cancel theirs, the timer still starts a lasting run's
    on time, and never one a run cancelled."""
    started: list[str] = []
    due = threading.Event()
    # (Due in 0.3 s, not milliseconds: a stall of this busy machine between scheduling
    # and cancelling must not make a cancelled call due.)
    _later.call(0.5, lambda: (started.append("lasting run"), due.set()))
    early = _later.call(0.3, lambda: started.append("ended run"))
    early.cancel()
    for _ in range(500):  # short runs, each ending before its threads were due
        _later.call(0.3, lambda: started.append("short run")).cancel()
    assert due.wait(10)
    time.sleep(0.1)  # past every cancelled call's time
    assert started == ["lasting run"]

    stop = _later.Stop()
    assert not stop.wait(0.01) and not stop.is_set()
    threading.Timer(0.01, stop.set).start()
    assert stop.wait(10) and stop.is_set() and stop.wait(0)


def test_owner_liveness_on_this_host_and_elsewhere() -> None:
    me = _lease.new_owner()
    assert _lease.owner_alive(me, None, time.time())
    host, pid, start = _lease.parse_owner(me)
    assert pid == os.getpid()
    dead = f"{host}:999999:{start}:abcd"
    assert not _lease.owner_alive(dead, time.time() + 100, time.time())
    reused_pid = f"{host}:{os.getpid()}:1:abcd"  # same pid, another start time
    assert not _lease.owner_alive(reused_pid, time.time() + 100, time.time())
    remote = "another-host:1:1:abcd"
    assert _lease.owner_alive(remote, time.time() + 10, time.time())
    assert not _lease.owner_alive(remote, time.time() - 1, time.time())
    assert _lease.effective_status("running", remote, time.time() - 1) == "crashed"
    assert _lease.effective_status("waiting", None, None) == "waiting"


class Model(BaseModel):
    when: datetime
    tags: list[str]


@dataclasses.dataclass
class Inner:
    value: float


@dataclasses.dataclass
class Outer:
    inner: Inner
    items: list[Inner]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "text",
        [1, "a"],
        {"k": [1, {"n": None}]},
        (1, 2),
        b"\x00\xff",
        Model(when=datetime(2026, 1, 1), tags=["a"]),
        Outer(Inner(1.5), [Inner(2.0)]),
    ],
)
def test_values_load_back_as_their_type(value: object) -> None:
    encoded = _serialize.encode(value, what="test")
    data = bytes(encoded.data)
    loaded = _serialize.decode(encoded.serializer, encoded.type_ref, data)
    assert loaded == value and type(loaded) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, null]}',
        ' {"a": 1}',
        '{"a": 1} ',
        '{"a": 1}x',
        "",
        "  ",
        '{"a":',
        "NaN",
        '"\\u00e9"',
    ],
)
def test_stored_json_reads_back_exactly_as_json_loads_reads_it(text: str) -> None:
    # A reused checkpoint's JSON output is parsed by a faster path than json.loads: the
    # same value, or the same error, for every text.
    import json

    try:
        expected: object = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as got:
            _serialize.decode("json", "builtins:dict", text.encode())
        assert str(got.value) == str(exc)
        return
    assert repr(_serialize.decode("json", "builtins:dict", text.encode())) == repr(expected)


def test_annotated_containers_of_models_round_trip() -> None:
    value = [Model(when=datetime(2026, 1, 2), tags=[])]
    encoded = _serialize.encode(value, what="test", hint=list[Model])
    assert encoded.serializer == "typed-json"
    loaded = _serialize.decode(
        encoded.serializer, encoded.type_ref, bytes(encoded.data), hint=list[Model]
    )
    assert loaded == value


def test_dict_with_non_string_keys_is_refused_with_the_fix() -> None:
    with pytest.raises(kitaru.SerializationError, match="dict keys must be str"):
        _serialize.encode({1: "a"}, what="checkpoint 'x'")


def test_fsync_durability_mode_flushes_every_commit(
    monkeypatch: pytest.MonkeyPatch, kitaru_home: Path
) -> None:
    monkeypatch.setenv("KITARU_DURABILITY", "fsync")

    @kitaru.checkpoint
    def step() -> int:
        return 1

    @kitaru.flow
    def durable() -> int:
        return step()

    assert durable() == 1
    journal = current_journal()
    conn = journal._conn  # type: ignore[attr-defined]
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    default = sqlite3.connect(kitaru_home / "journal.db")
    assert default.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_server_guard_refuses_json_nested_past_its_limit_and_only_that() -> None:
    import json

    from kitaru.server._guard import MAX_DEPTH, _shape_problem

    def nested(levels: int) -> bytes:
        return b'{"a":' * levels + b"1" + b"}" * levels

    assert _shape_problem(nested(MAX_DEPTH)) is None
    assert "deeper" in (_shape_problem(nested(MAX_DEPTH + 1)) or "")
    assert "deeper" in (_shape_problem(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)) or "")
    # Brackets inside strings nest nothing: many of them, and a shallow value, pass.
    assert _shape_problem(json.dumps({"t": "[{" * 500, "v": [[1]]}).encode()) is None


def test_a_tee_outliving_its_stream_goes_quietly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A test runner swaps and closes the streams a run's tee wraps; the tee let go of
    later is finalized (closed, so flushed) without an error on the closed stream."""
    import gc
    import sys

    reported: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    inner = (tmp_path / "captured.txt").open("w")
    tee = _logs._Tee(inner, "stdout")
    tee.write("kept")
    inner.close()
    tee.flush()
    del tee
    gc.collect()
    assert reported == []
