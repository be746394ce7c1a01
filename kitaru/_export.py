"""`kitaru executions export`: write executions, with their artifacts' bytes, to a bundle
(the format is described in kitaru/_portable.py)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kitaru._artifact_io import content_hash
from kitaru._bundle import (
    _DROPPED_METADATA,
    FORMAT,
    MANIFEST,
    VERSION,
    Progress,
    _artifacts_of,
)
from kitaru._errors import KitaruUsageError
from kitaru.journal import (
    EventRecord,
    ExecutionRecord,
    Journal,
)
from kitaru.journal._records import parse_call_output_id


def export(
    journal: Journal,
    exec_ids: Sequence[str],
    path: str | os.PathLike[str],
    *,
    with_lineage: bool = False,
    allow_pickle: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the executions (and with `with_lineage`, the executions they replayed, back
    to the first) to a bundle at `path`. Returns the manifest."""
    from kitaru._lease import effective_status

    records = _collect(journal, exec_ids, with_lineage)
    for record in records:
        status = effective_status(record.status, record.owner, record.lease_until)
        if status in ("running", "queued"):
            raise KitaruUsageError(
                f"execution {record.exec_id} is {status}: export it once it has stopped "
                f"(or cancel it first: kitaru executions cancel {record.exec_id})"
            )
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise KitaruUsageError(
            f"-o {path}: give a file in an existing directory (the bundle is one file)"
        )
    # A name of this export's own: another export to the same file at the same moment
    # writes its own, and whichever renames last leaves its whole bundle there.
    partial = target.with_name(f"{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time(),
        "executions": [],
        "records": {},
        "artifacts": {},
    }
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for record in records:
                if progress:
                    progress(f"exporting {record.exec_id} ({record.flow})")
                doc = _execution_doc(journal, record, allow_pickle)
                for artifact in _artifacts_of(doc):
                    digest = artifact["content_hash"]
                    if artifact["inline"] is not None or digest in manifest["artifacts"]:
                        continue
                    data = _read_bytes(record, artifact)
                    bundle.writestr(f"artifacts/{digest}", data)
                    manifest["artifacts"][digest] = len(data)
                text = json.dumps(doc, sort_keys=True).encode()
                bundle.writestr(f"executions/{record.exec_id}.json", text)
                manifest["executions"].append(record.exec_id)
                manifest["records"][record.exec_id] = content_hash(text)
            bundle.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _collect(
    journal: Journal, exec_ids: Sequence[str], with_lineage: bool
) -> list[ExecutionRecord]:
    """The records to export, each replay's source before the replay."""
    found: dict[str, ExecutionRecord] = {}

    def add(exec_id: str, named: bool) -> None:
        if exec_id in found:
            return
        record = journal.get_execution(exec_id)
        if record is None:
            if named:
                raise KitaruUsageError(
                    f"no execution {exec_id!r} in this journal; "
                    "`kitaru executions list` shows the ids"
                )
            return  # a source removed since: the replay's own rows hold what it reused
        if with_lineage and record.replayed_from:
            add(record.replayed_from, False)
        found[exec_id] = record

    if not exec_ids:
        raise KitaruUsageError("name at least one execution to export")
    for exec_id in exec_ids:
        add(exec_id, True)
    return list(found.values())


def _execution_doc(journal: Journal, record: ExecutionRecord, allow_pickle: bool) -> dict[str, Any]:
    exec_id = record.exec_id
    calls = journal.calls(exec_id)
    artifacts = []
    for listed in journal.list_artifacts(exec_id):
        if parse_call_output_id(listed.artifact_id) is not None:
            continue  # a call's output: carried with its call
        full = journal.get_artifact(listed.artifact_id)
        if full is not None:
            artifacts.append(full)
    doc: dict[str, Any] = {
        "execution": _plain(record),
        "calls": [_plain(c) for c in calls],
        "artifacts": [_plain(a) for a in artifacts],
        "waits": [_plain(w) for w in journal.waits(exec_id)],
        "logs": [_plain(entry) for entry in journal.logs(exec_id)],
        "events": [_plain(e) for e in _all_events(journal, exec_id)],
    }
    for key in ("owner", "heartbeat_at", "run_id", "worker", "claimed_at", "python"):
        doc["execution"][key] = None
    doc["execution"]["argv"] = []  # a command line may hold secrets
    # A replay's copied waits name their source's answers: carry those too.
    have = {a["artifact_id"] for a in doc["artifacts"]}
    for wait in doc["waits"]:
        answer = wait["value_artifact"]
        if answer and answer not in have:
            found = journal.get_artifact(answer)
            if found is not None:
                doc["artifacts"].append({**_plain(found), "exec_id": exec_id})
                have.add(answer)
    metadata = doc["execution"]["metadata"]
    for key in _DROPPED_METADATA:
        metadata.pop(key, None)
    if not allow_pickle:
        for artifact in _artifacts_of(doc):
            if artifact["serializer"] == "pickle":
                raise KitaruUsageError(
                    f"execution {exec_id}: artifact {artifact['artifact_id']} "
                    f"({artifact['name']}) is pickled, and loading pickled data runs code; "
                    "export it with --allow-pickle only for someone who trusts you with that"
                )
    return doc


def _all_events(journal: Journal, exec_id: str) -> Iterable[EventRecord]:
    after = 0
    while True:
        batch = journal.events(exec_id, after=after, limit=1000)
        yield from batch
        if len(batch) < 1000:
            return
        after = batch[-1].seq


def _read_bytes(record: ExecutionRecord, artifact: dict[str, Any]) -> bytes:
    from kitaru.artifacts import store_for_uri

    store, key = store_for_uri(artifact["uri"], record.artifact_store)
    data = store.read(key)
    if content_hash(data) != artifact["content_hash"]:
        raise KitaruUsageError(
            f"execution {record.exec_id}: artifact {artifact['artifact_id']} "
            f"({artifact['name']}) at {artifact['uri']} does not match its content hash; "
            "the store's copy changed since it was written, so it is not exported"
        )
    return data


def _plain(record: Any) -> dict[str, Any]:
    """A record as JSON-ready data (bytes as base64)."""
    out = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif dataclasses.is_dataclass(value):
            value = _plain(value)
        out[f.name] = value
    return out
