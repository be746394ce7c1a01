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
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kitaru._artifact_io import content_hash
from kitaru._errors import KitaruUsageError
from kitaru.journal import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    Journal,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._records import parse_call_output_id

FORMAT = "kitaru-executions"
VERSION = 1
MANIFEST = "kitaru-bundle.json"
# Metadata of the exporting system's traces: meaningless in another journal.
_DROPPED_METADATA = ("traceparent", "traceparent.run")

Progress = Callable[[str], None]
_R = TypeVar("_R")
_ADAPTERS: dict[type, Any] = {}
_EXEC_ID = re.compile(r"kx_[0-9a-f]{28}")
_ARTIFACT_ID = re.compile(r"ka_[0-9a-f]{28}(_[0-9]+)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Statuses an execution may be imported with (running: it crashed where it ran).
_IMPORTABLE = frozenset({"completed", "failed", "cancelled", "waiting", "running"})
# Limits on what a bundle may make this process read into memory at once.
_MAX_JSON_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024
# The owner an execution has while it is being imported.
_IMPORTING = "kitaru-import-"


class BundleError(KitaruUsageError):
    """A bundle that cannot be imported: not a bundle, a newer format, or tampered."""


# -- export ------------------------------------------------------------------------------
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
    partial = target.with_name(target.name + ".partial")
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


def _artifacts_of(doc: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from doc["artifacts"]
    for call in doc["calls"]:
        if call["output"] is not None:
            yield call["output"]


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


# -- import ------------------------------------------------------------------------------
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


def _open(path: str | os.PathLike[str]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(
            f"{path} is not a bundle made by `kitaru executions export` ({exc})"
        ) from None


def _manifest(bundle: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(bundle.read(MANIFEST))
    except (KeyError, ValueError):
        raise BundleError(
            f"{bundle.filename} has no readable {MANIFEST}: it is not a bundle made by "
            "`kitaru executions export`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{bundle.filename} is not a bundle of Kitaru executions")
    if not (
        isinstance(manifest.get("executions"), list)
        and isinstance(manifest.get("records"), dict)
        and isinstance(manifest.get("artifacts"), dict)
    ):
        raise BundleError(f"{bundle.filename}: its manifest lacks executions or records")
    if manifest.get("version") != VERSION:
        raise BundleError(
            f"{bundle.filename} is a bundle of format version {manifest.get('version')}; "
            f"this Kitaru reads version {VERSION}: import it with the Kitaru that made it"
        )
    return manifest


def _checked_doc(bundle: zipfile.ZipFile, manifest: dict[str, Any], exec_id: object) -> Any:
    if not isinstance(exec_id, str) or not _EXEC_ID.fullmatch(exec_id):
        raise BundleError(f"{bundle.filename}: {exec_id!r} is not an execution id")
    name = f"executions/{exec_id}.json"
    try:
        if bundle.getinfo(name).file_size > _MAX_JSON_BYTES:
            raise BundleError(f"{bundle.filename}: {name} is larger than any export makes")
        text = bundle.read(name)
    except KeyError:
        raise BundleError(f"{bundle.filename}: {name} is missing") from None
    if content_hash(text) != manifest["records"].get(exec_id):
        raise BundleError(
            f"{bundle.filename}: the records of execution {exec_id} do not match their hash "
            "in the manifest (the bundle was changed after it was exported); nothing imported"
        )
    doc = json.loads(text)
    _check_shape(bundle.filename, exec_id, doc)
    return doc


def _check_shape(where: str | None, exec_id: str, doc: Any) -> None:
    """Each row of a document belongs to its execution, and each id and hash has its
    form: a bundle made by hand cannot add rows to another execution of the importing
    journal, or write bytes outside its own place in the store."""

    def refuse(what: str) -> BundleError:
        return BundleError(f"{where}: execution {exec_id}: {what}; nothing imported")

    try:
        rows = [doc["execution"], *doc["calls"], *doc["waits"], *doc["logs"], *doc["events"]]
        rows += doc["artifacts"]
        for row in rows:
            if row["exec_id"] != exec_id:
                raise refuse(f"a row names execution {row['exec_id']!r}")
        for artifact in _artifacts_of(doc):
            if not _ARTIFACT_ID.fullmatch(str(artifact["artifact_id"])):
                raise refuse(f"{artifact['artifact_id']!r} is not an artifact id")
            if not _SHA256.fullmatch(str(artifact["content_hash"])):
                raise refuse(f"artifact {artifact['artifact_id']} has no SHA-256 content hash")
        if _execution(doc["execution"]).status not in _IMPORTABLE:
            raise refuse(f"status {doc['execution']['status']!r} cannot be imported")
        for call in doc["calls"]:
            _typed(CallRecord, {**call, "output": None})
        for artifact in _artifacts_of(doc):
            _artifact(artifact)
        for cls, key in ((WaitRecord, "waits"), (LogRecord, "logs"), (EventRecord, "events")):
            for raw in doc[key]:
                _typed(cls, raw)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise refuse(f"its records are not what this Kitaru writes ({exc!r})") from None


def _check_blobs(bundle: zipfile.ZipFile, docs: list[Any], allow_pickle: bool) -> None:
    """Every artifact's bytes against its content hash and size, before anything is
    written, read in pieces: a bundle cannot make this process hold more than one
    piece of an artifact, nor hold more bytes than the artifact's record says."""
    checked: set[str] = set()
    for doc in docs:
        for artifact in _artifacts_of(doc):
            what = (
                f"artifact {artifact['artifact_id']} ({artifact['name']}) of execution "
                f"{doc['execution']['exec_id']}"
            )
            if artifact["serializer"] == "pickle" and not allow_pickle:
                raise BundleError(
                    f"{bundle.filename}: {what} is pickled, and loading pickled data runs "
                    "code; import it with --allow-pickle only if you trust who made it"
                )
            digest = artifact["content_hash"]
            if artifact["inline"] is not None:
                good = content_hash(base64.b64decode(artifact["inline"])) == digest
            elif digest in checked:
                continue
            else:
                good = _stored_blob_ok(bundle, digest, int(artifact["size"]), what)
                checked.add(digest)
            if not good:
                raise BundleError(
                    f"{bundle.filename}: {what} does not match its content hash (the bundle "
                    "was changed after it was exported); nothing imported"
                )


def _stored_blob_ok(bundle: zipfile.ZipFile, digest: str, size: int, what: str) -> bool:
    import hashlib

    name = f"artifacts/{digest}"
    try:
        info = bundle.getinfo(name)
    except KeyError:
        raise BundleError(f"{bundle.filename}: the bytes of {what} are missing") from None
    if info.file_size != size:
        raise BundleError(
            f"{bundle.filename}: {what} holds {info.file_size:,} bytes where its record says "
            f"{size:,}; nothing imported"
        )
    hasher, seen = hashlib.sha256(), 0
    with bundle.open(info) as member:
        while piece := member.read(_CHUNK):
            seen += len(piece)
            if seen > size:
                return False
            hasher.update(piece)
    return seen == size and hasher.hexdigest() == digest


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


def _typed(cls: type[_R], raw: dict[str, Any]) -> _R:
    """A record from a bundle's JSON, each field checked against its type."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[_R] = _ADAPTERS.setdefault(cls, TypeAdapter(cls))
    return adapter.validate_python(raw)


def _execution(raw: dict[str, Any]) -> ExecutionRecord:
    return _typed(ExecutionRecord, raw)


def _artifact(raw: dict[str, Any]) -> ArtifactRecord:
    inline = raw["inline"]
    return _typed(
        ArtifactRecord,
        {**raw, "inline": base64.b64decode(inline) if inline is not None else None},
    )
