"""Portable executions: `kitaru executions export` and `kitaru executions import`.

A bundle is a zip file that carries executions from one journal and artifact store to
any other, so that a run from production can be read, diffed and replayed on a laptop
without access to the production journal:

- `kitaru-bundle.json`, the manifest: the format and its version, the executions in the
  order they are imported (a replay's source first), the SHA-256 of each execution's
  records and the size of each artifact;
- `executions/<exec_id>.json`: what the journal holds about one execution (its record,
  calls with their outputs, artifacts, waits, logs and feed), with small artifacts'
  bytes inline (base64);
- `artifacts/<sha256>`: the bytes of every artifact kept in the store, named by their
  content hash (an artifact shared by several executions is carried once).

Every hash is checked when the bundle is written and again, in full, before an import
writes anything: a bundle whose records or bytes were changed is refused, naming what
fails. An import writes the bytes into the importing store first and the records after,
so the journal never points at bytes that are not there, and skips executions the
journal already holds (importing twice changes nothing).

What a bundle leaves out: the lease and the process that held it, the run id of a
container, the trace ids of the exporting system, and anything about stacks (their
settings hold the references to secrets). The code an execution names is not taken
from the bundle: an imported execution's flow is loaded from the importing project (a
script by its file name there, a module by its name), as a resume through a server does.
Pickled artifacts run code when loaded, so they travel only when both sides ask for it
(`--allow-pickle`).

The import steps are here; writing a bundle is in kitaru/_export.py, its format and the
checks made before an import writes anything in kitaru/_bundle.py.
"""

from __future__ import annotations

import dataclasses
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from kitaru._bundle import (
    _IMPORTING,
    BundleError,
    Progress,
    _artifact,
    _artifacts_of,
    _check_blobs,
    _checked_doc,
    _execution,
    _manifest,
    _open,
    _typed,
)
from kitaru._export import export
from kitaru.journal import (
    CallRecord,
    EventRecord,
    ExecutionRecord,
    Journal,
    LogRecord,
    WaitRecord,
)

__all__ = ["BundleError", "export", "import_bundle"]


def import_bundle(
    journal: Journal,
    path: str | os.PathLike[str],
    *,
    store_uri: str,
    project: str | os.PathLike[str],
    allow_pickle: bool = False,
    progress: Progress | None = None,
) -> list[dict[str, str]]:
    """Import every execution of the bundle at `path` into `journal`, its artifacts into
    the store at `store_uri`, its code to be loaded from `project`. Returns, per
    execution, its id, flow and whether it was `imported` or `skipped` (already there)."""
    from kitaru.artifacts import open_store

    with _open(path) as bundle:
        manifest = _manifest(bundle)
        docs = [_checked_doc(bundle, manifest, exec_id) for exec_id in manifest["executions"]]
        _check_blobs(bundle, docs, allow_pickle)
        _check_collisions(bundle.filename, journal, docs)
        store = open_store(store_uri)
        return _import_all(journal, bundle, store, store_uri, docs, Path(project), progress)


def _import_all(
    journal: Journal,
    bundle: zipfile.ZipFile,
    store: Any,
    store_uri: str,
    docs: list[dict[str, Any]],
    project: Path,
    progress: Progress | None,
) -> list[dict[str, str]]:
    done: list[dict[str, str]] = []
    for doc in docs:
        record = _execution(doc["execution"])
        there = journal.get_execution(record.exec_id)
        if there is not None and (there.owner or "").startswith(_IMPORTING):
            # An import that stopped half way (killed): what it wrote goes, then it is
            # imported again, whole.
            from kitaru import _retention

            _retention.delete(journal, [record.exec_id], force=True)
            there = None
        if there is not None:
            done.append({"exec_id": record.exec_id, "flow": record.flow, "outcome": "skipped"})
            continue
        if progress:
            progress(f"importing {record.exec_id} ({record.flow})")
        _import_one(journal, bundle, store, store_uri, doc, project)
        done.append({"exec_id": record.exec_id, "flow": record.flow, "outcome": "imported"})
    return done


def _check_collisions(where: str | None, journal: Journal, docs: list[Any]) -> None:
    """An artifact id the journal already holds with other bytes is refused before
    anything is written (the same artifact, carried twice, is simply not written
    again)."""
    for doc in docs:
        if journal.get_execution(doc["execution"]["exec_id"]) is not None:
            continue  # skipped
        for artifact in doc["artifacts"]:
            there = journal.get_artifact(artifact["artifact_id"])
            if there is not None and there.content_hash != artifact["content_hash"]:
                raise BundleError(
                    f"{where}: artifact {artifact['artifact_id']} of execution "
                    f"{doc['execution']['exec_id']} is already in this journal with other "
                    "bytes; nothing imported"
                )


def _import_one(
    journal: Journal,
    bundle: zipfile.ZipFile,
    store: Any,
    store_uri: str,
    doc: dict[str, Any],
    project: Path,
) -> None:
    source = _execution(doc["execution"])
    exec_id = source.exec_id
    # The bytes first: a record is written only once what it points at is there.
    for raw in _artifacts_of(doc):
        if raw["inline"] is None:
            key = f"{exec_id}/{raw['artifact_id']}"
            raw["uri"] = store.write(key, bundle.read(f"artifacts/{raw['content_hash']}"))
    # An owner no process has: if the import stops half way, the execution shows as
    # crashed (and the next import skips it; `kitaru executions delete` removes it).
    owner, now = f"{_IMPORTING}{os.urandom(6).hex()}", time.time()
    record = dataclasses.replace(
        source,
        status="running",
        owner=owner,
        lease_until=now + 600,
        heartbeat_at=now,
        artifact_store=store_uri,
        stack="local",
        orchestrator="local",
        project_root=None,
        metadata={**source.metadata, "imported": _origin(source)},
        # What would choose a process, a queue or a version here is the exporter's:
        # not taken from a bundle.
        python=None,
        argv=[],
        queue=None,
        priority=0,
        worker=None,
        claimed_at=None,
        deployment_version=None,
        invocation_id=None,
        idempotency_key=None,  # a key of the exporting system's callers, not of ours
        cancel_requested=False,
        **_local_code(source, project),
    )
    artifacts = [_artifact(a) for a in doc["artifacts"]]
    journal.create_execution(record, [a for a in artifacts if a.producer == "input"])
    result = next((a for a in artifacts if a.artifact_id == source.result_artifact), None)
    for artifact in artifacts:
        if artifact.producer == "input" or artifact is result:  # (written with the record)
            continue
        if journal.get_artifact(artifact.artifact_id) is None:  # (a source's, carried twice)
            journal.put_artifact(artifact)
    for raw in doc["calls"]:
        output = _artifact(raw["output"]) if raw["output"] is not None else None
        call = _typed(CallRecord, {**raw, "output": None})
        call.output = output
        journal.commit_call(call, output, [], owner=owner)
    for raw in doc["waits"]:
        journal.create_wait(_typed(WaitRecord, raw), owner=owner)
    journal.append_logs([_typed(LogRecord, raw) for raw in doc["logs"]])
    events = [_typed(EventRecord, raw) for raw in doc["events"]]
    journal.append_events(exec_id, events, owner=owner)
    if source.status == "running":
        # It crashed where it ran: it stays `crashed` here, and can be resumed.
        journal.heartbeat(exec_id, owner=owner, now=now, lease_until=0.0)
        return
    journal.finish(
        exec_id,
        owner=owner,
        status=source.status,
        now=source.ended_at or source.updated_at,
        error=source.error,
        result=result,
    )


def _origin(source: ExecutionRecord) -> dict[str, Any]:
    return {
        "at": time.time(),
        "stack": source.stack,
        "orchestrator": source.orchestrator,
        "flow_file": source.flow_file,
        "import_path": source.import_path,
    }


def _local_code(source: ExecutionRecord, project: Path) -> dict[str, Any]:
    """Where the importing project holds the flow: a script by its file name, a module
    from the project's directory."""
    root = project.resolve()
    if source.flow_ref.startswith("__main__:"):
        name = Path(source.flow_file).name if source.flow_file else None
        return {"flow_file": str(root / name) if name else None, "import_path": str(root)}
    return {"flow_file": None, "import_path": str(root)}
