"""kitaru.emit(): typed, bounded data; what it refuses; where an event belongs."""

from __future__ import annotations

import dataclasses

import pytest

import kitaru
from kitaru import checkpoint, flow
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
