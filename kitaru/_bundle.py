"""A bundle of executions (kitaru/_portable.py): its format, and the checks an import
makes on it, in full, before it writes anything: the manifest, each execution's records
against their hash and the form of every row, each artifact's bytes against its
content hash and size."""

from __future__ import annotations

import base64
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kitaru._artifact_io import content_hash
from kitaru._errors import KitaruUsageError
from kitaru.journal import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)

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


def _artifacts_of(doc: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from doc["artifacts"]
    for call in doc["calls"]:
        if call["output"] is not None:
            yield call["output"]


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
