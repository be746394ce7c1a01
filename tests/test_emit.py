"""kitaru.emit(): typed, bounded data; what it refuses; where an event belongs."""

from __future__ import annotations

import dataclasses
import threading

import pytest

import kitaru
from kitaru import _runtime, checkpoint, flow
from kitaru.journal import current_journal


@dataclasses.dataclass
class Progress:
    done: int
    of: int


def test_events_carry_json_models_and_dataclasses_and_belong_to_their_call() -> None:
    @checkpoint
    def step() -> int:
        kitaru.emit("progress", Progress(1, 2))
        return 1

    @flow
    def agent() -> int:
        kitaru.emit("plan", {"steps": ["a", "b"], "note": "é"})
        return step()

    handle = agent.run()
    events = [e for e in current_journal().events(handle.exec_id) if e.kind == "event"]
    assert [(e.name, e.call_key, e.data) for e in events] == [
        ("plan", None, {"steps": ["a", "b"], "note": "é"}),
        ("progress", "step", {"done": 1, "of": 2}),
    ]


def test_what_emit_refuses() -> None:
    refused: list[str] = []

    @flow
    def agent() -> None:
        for name, data in [
            ("big", "x" * (16 * 1024)),
            ("nan", float("nan")),
            ("object", object()),
            ("", 1),
            ("n" * 201, 1),
        ]:
            with pytest.raises(kitaru.KitaruUsageError) as exc:
                kitaru.emit(name, data)
            refused.append(str(exc.value))
        kitaru.emit("fits", "x" * (16 * 1024 - 2))  # 16 KiB with its quotes

    agent.run().result()
    assert "more than the 16384 an event holds" in refused[0]
    assert all("data must be JSON" in r for r in refused[1:3])
    assert all("1-200 characters" in r for r in refused[3:])


def test_outside_a_flow_emit_does_nothing() -> None:
    kitaru.emit("progress", {"done": 1})


def test_every_call_reaches_the_feed_once_while_writes_race_the_calls() -> None:
    # A call's end is appended without a lock while the writer takes entries: here a
    # second writer flushes the feed as fast as it can while the flow makes its calls.
    @checkpoint
    def step(i: int) -> int:
        return i

    @flow
    def many(n: int) -> int:
        ctx = _runtime.current()
        assert ctx is not None
        stop = threading.Event()

        def write() -> None:
            while not stop.is_set():
                ctx.feed.flush()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for i in range(n):
                step(i)
        finally:
            stop.set()
            writer.join()
        return n

    handle = many.run(1500)
    keys: list[str | None] = []
    entries = current_journal().events(handle.exec_id, limit=100_000)
    for e in entries:
        if e.kind == "calls_ended":
            keys += [call["key"] for call in e.data["calls"]]
        elif e.kind == "call_ended":
            keys.append(e.call_key)
    assert sorted(keys, key=str) == sorted(["step"] + [f"step#{i}" for i in range(2, 1501)])
    assert [e.kind for e in entries][-1] == "run_ended"
