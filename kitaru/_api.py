"""`kitaru.save`, `kitaru.load` and `kitaru.log`: named artifacts and metadata."""

from __future__ import annotations

from typing import Any

from kitaru import _ids, _runtime
from kitaru._artifact_io import load_value
from kitaru._errors import KitaruUsageError, NotFoundError
from kitaru._tracing import RUN_METADATA, SENT_METADATA, TRACE_METADATA
from kitaru.journal import current_journal


def save(name: str, value: Any, *, allow_pickle: bool = False) -> str:
    """Store `value` as a named artifact of the running execution; return its id.

    Saving a name again makes a new version; `kitaru.load` returns the newest.
    Inside a checkpoint the save happens once; in the flow body it happens again on
    every resume, so save from checkpoints what must be recorded exactly once.
    """
    ctx = _runtime.current()
    if ctx is None:
        raise KitaruUsageError("kitaru.save() can only be called inside a @flow")
    if not name or "/" in name:
        raise KitaruUsageError(
            f"artifact name {name!r} is not valid; use a non-empty name without '/'"
        )
    frame = _runtime.current_frame.get()
    artifact = ctx.artifact(
        value,
        name=name,
        producer="save",
        producer_key=frame.key if frame else None,
        what=f"kitaru.save({name!r})",
        allow_pickle=allow_pickle,
        version=ctx.next_version(name),
    )
    ctx.journal.put_artifact(artifact)
    return artifact.artifact_id


def load(exec_id: str, name: str, *, allow_pickle: bool = False) -> Any:
    """The newest version of the artifact `name` of execution `exec_id`.

    `name` is a `kitaru.save` name, a checkpoint key (`draft`, `draft#2`), a flow
    parameter name, or `result`. A pickled value loads only with `allow_pickle=True`
    (and only one that flow code wrote, its content hash checked first).
    """
    journal = current_journal()
    record = journal.get_execution(exec_id)
    if record is None:
        raise NotFoundError(_ids.not_found("kx", exec_id, journal.url))
    artifact = journal.find_artifact(exec_id, name)
    if artifact is None:
        call = next((c for c in journal.calls(exec_id) if c.key == name), None)
        if call is not None and call.output is not None:
            artifact = call.output
    if artifact is None:
        names = sorted({a.name for a in journal.list_artifacts(exec_id)})
        raise NotFoundError(
            f"execution {exec_id} has no artifact named {name!r}; it has: {', '.join(names) or 'none'}"
        )
    return load_value(artifact, record.artifact_store, allow_pickle=allow_pickle)


def log(**metadata: Any) -> None:
    """Attach metadata to the running checkpoint call, or to the execution outside one."""
    ctx = _runtime.current()
    if ctx is None:
        raise KitaruUsageError("kitaru.log() can only be called inside a @flow")
    frame = _runtime.current_frame.get()
    if frame is not None:
        frame.metadata.update(metadata)
    else:
        for kept in (TRACE_METADATA, RUN_METADATA, SENT_METADATA):
            if kept in metadata:
                raise KitaruUsageError(
                    f"metadata {kept!r} is kept by Kitaru itself (the execution's trace); "
                    "log it under another name"
                )
        ctx.journal.set_metadata(ctx.exec_id, metadata)
