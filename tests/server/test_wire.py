"""The runner API's request models are the journal's record dataclasses, bounded: every
field travels under its own name, a field added to a record travels with no change to
the server, and what a record's type does not allow is refused."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import ValidationError

from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    DeploymentRecord,
    ExecutionRecord,
    LogRecord,
    StackRecord,
    WaitRecord,
)
from kitaru.remote._codec import from_wire, to_wire
from kitaru.server._wire import model_for, to_record

RECORDS = [
    ExecutionRecord,
    ArtifactRecord,
    CallRecord,
    WaitRecord,
    LogRecord,
    StackRecord,
    DeploymentRecord,
]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_every_field_of_a_record_is_a_member_of_its_request_model(cls: type) -> None:
    members = {f.alias or name for name, f in model_for(cls).model_fields.items()}
    assert members == {f.name for f in dataclasses.fields(cls)}


def _call(cls: type = CallRecord, **extra: Any) -> Any:
    output = ArtifactRecord(
        "ka_x_1", "kx_x", "step", 1, "checkpoint", "step", "builtins:dict", "json", "h", 7,
        None, 1.0, inline=b'{"a":1}',
    )  # fmt: skip
    return cls(
        "kx_x", "step", 1, "step", "m:f", "completed", 1.0, 2.0, 1,
        output_artifact="ka_x_1", output=output, **extra,
    )  # fmt: skip


def test_a_call_travels_with_its_branch_position_and_fingerprint() -> None:
    sent = _call(branch="2.1", pos=3, fingerprint="0=21bb9ec5,1=a438c22b")
    body = json.dumps(to_wire(sent))
    received = to_record(CallRecord, model_for(CallRecord).model_validate_json(body))
    assert received == sent
    assert from_wire(CallRecord, json.loads(body)) == sent


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("started_at", "abc"),
        ("started_at", "1.0"),
        ("seq", 1.5),
        ("seq", -1),
        ("status", "running"),
        ("metadata", []),
        ("error", "x" * (256 * 1024 + 1)),
        ("nonsense", 1),
    ],
)
def test_what_the_type_does_not_allow_is_refused(field: str, value: Any) -> None:
    body = {**to_wire(_call()), field: value}
    with pytest.raises(ValidationError):
        model_for(CallRecord).model_validate_json(json.dumps(body))


def test_inline_bytes_are_base64_of_at_most_the_inline_size() -> None:
    artifact = to_wire(_call().output)
    model = model_for(ArtifactRecord)
    assert to_record(ArtifactRecord, model.model_validate_json(json.dumps(artifact))).inline == (
        b'{"a":1}'
    )
    import base64

    for bad in ("not base64!", 5, base64.b64encode(b"x" * (16 * 1024 + 1)).decode()):
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps({**artifact, "inline": bad}))
