"""Writing artifact bytes (store first, journal second) and reading them back verified."""

from __future__ import annotations

import time
from typing import Any

from kitaru import _serialize
from kitaru._errors import ArtifactCorruptedError, ArtifactStoreError, KitaruError
from kitaru._ids import new_id
from kitaru.artifacts import ArtifactStore
from kitaru.journal import ArtifactRecord
from kitaru.journal._bytes import read_bytes

__all__ = [
    "INLINE_MAX",
    "PICKLE_PRODUCERS",
    "build_artifact",
    "check_pickle",
    "content_hash",
    "load_value",
    "read_bytes",
]

# Values up to this size live inline in the journal row: one write, no extra file.
INLINE_MAX = 16 * 1024


def content_hash(data: bytes | memoryview) -> str:
    """SHA-256 in hex: with the CPU's SHA extensions it is about twice BLAKE2's speed here,
    which matters when a 100 MB artifact is verified while it streams."""
    # hashlib loads OpenSSL on import: import it on first use, not with kitaru.
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no message"


def build_artifact(
    *,
    exec_id: str,
    store: ArtifactStore,
    name: str,
    producer: str,
    producer_key: str | None,
    encoded: _serialize.Encoded,
    version: int = 1,
    metadata: dict[str, Any] | None = None,
    artifact_id: str | None = None,
) -> ArtifactRecord:
    """Write the bytes where they belong and return the record to commit to the journal.

    Bytes above INLINE_MAX go to the artifact store now; the caller commits the record
    afterwards, so the journal never points at bytes that are not there.
    """
    data = encoded.data
    artifact_id = artifact_id or new_id("ka")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    inline: bytes | None = None
    uri: str | None = None
    if size <= INLINE_MAX:
        digest = content_hash(data)
        inline = data if isinstance(data, bytes) else bytes(data)
    else:
        from concurrent.futures import ThreadPoolExecutor

        # Hashing releases the GIL: hash on a helper thread while the bytes upload.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kitaru-hash") as pool:
            hashing = pool.submit(content_hash, data)
            try:
                uri = store.write(f"{exec_id}/{artifact_id}", data)
            except KitaruError:
                raise
            except Exception as exc:
                raise ArtifactStoreError(
                    f"artifact {name!r} ({size} bytes) could not be written to {store.uri} "
                    f"and nothing was recorded for it ({type(exc).__name__}: "
                    f"{_first_line(exc)})"
                ) from exc
            digest = hashing.result()
    return ArtifactRecord(
        artifact_id=artifact_id,
        exec_id=exec_id,
        name=name,
        version=version,
        producer=producer,
        producer_key=producer_key,
        type_ref=encoded.type_ref,
        serializer=encoded.serializer,
        content_hash=digest,
        size=size,
        uri=uri,
        created_at=time.time(),
        inline=inline,
        metadata=metadata or {},
    )


# Producers whose values may be pickled: the flow's own code wrote them, or (an input)
# the process that started a flow allowing pickle. Answers and overrides come from
# outside (a person, a server) and are JSON; a server refuses pickled inputs.
PICKLE_PRODUCERS = frozenset({"checkpoint", "llm", "save", "result", "input"})


def load_value(
    artifact: ArtifactRecord, store_uri: str | None, *, hint: Any = None, allow_pickle: bool = False
) -> Any:
    """The artifact's value. A pickled one loads only where the caller allows pickle (the
    code that wrote it said `allow_pickle=True`), only from a producer that is the flow's
    own code, and only after its bytes match the content hash recorded with it."""
    data = read_bytes(artifact, store_uri)
    if artifact.serializer == "pickle":
        check_pickle(artifact, data, allow_pickle=allow_pickle)
    return _serialize.decode(artifact.serializer, artifact.type_ref, data, hint=hint)


def check_pickle(artifact: ArtifactRecord, data: bytes, *, allow_pickle: bool) -> None:
    where = f"artifact {artifact.artifact_id} ({artifact.producer} {artifact.name!r})"
    if not allow_pickle:
        from kitaru._errors import SerializationError

        raise SerializationError(
            f"{where} is pickled, and unpickling runs whatever code its bytes name; Kitaru "
            "loads pickles only for the checkpoint or flow that wrote them with "
            "allow_pickle=True. Read its raw bytes instead (`kitaru artifacts get "
            f"{artifact.artifact_id} --out FILE`), or load it with allow_pickle=True if you "
            "trust everyone who can write to this journal"
        )
    if artifact.producer not in PICKLE_PRODUCERS:
        from kitaru._errors import SerializationError

        raise SerializationError(
            f"{where} is pickled, but {artifact.producer} values are JSON: it was not "
            "written by a flow; it is never unpickled"
        )
    if content_hash(data) != artifact.content_hash:
        raise ArtifactCorruptedError(
            f"{where} does not match its recorded content hash; it is not unpickled"
        )
