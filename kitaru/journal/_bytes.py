"""Reading a recorded artifact's bytes back, checked against its record's size and hash.

Below everything that reads values (the runtime, the client, the server) and beside
the journal's HTTP backend, which sends a wait's answer on as JSON.
"""

from __future__ import annotations

from kitaru._errors import ArtifactCorruptedError
from kitaru.artifacts import open_store
from kitaru.journal._records import ArtifactRecord


def read_bytes(artifact: ArtifactRecord, store_uri: str | None) -> bytes:
    """The artifact's bytes, checked against its size and content hash."""
    if artifact.inline is not None:
        return artifact.inline
    if artifact.uri is None:
        raise ArtifactCorruptedError(
            f"artifact {artifact.artifact_id} ({artifact.name}) has neither inline bytes nor a "
            "URI; the journal row is damaged"
        )
    where = f"artifact {artifact.artifact_id} ({artifact.producer} {artifact.name!r} of {artifact.exec_id})"
    import hashlib

    hasher = hashlib.sha256()  # the same digest as content_hash()
    try:
        store = open_store(store_uri or _root_of(artifact.uri, artifact.exec_id))
        # The store feeds the hasher while it reads: one pass, overlapped with the transfer.
        data = store.read(store.key_of(artifact.uri), on_data=hasher.update)
    except KeyError:
        raise ArtifactCorruptedError(
            f"{where} is missing from the artifact store: {artifact.uri} does not exist; "
            "restore the file or replay the execution to produce it again"
        ) from None
    if len(data) != artifact.size or hasher.hexdigest() != artifact.content_hash:
        raise ArtifactCorruptedError(
            f"{where} is corrupted: {artifact.uri} does not match the content hash recorded "
            "in the journal; restore the file or replay the execution to produce it again"
        )
    return data


def _root_of(uri: str, exec_id: str) -> str:
    marker = f"/{exec_id}/"
    head, sep, _tail = uri.rpartition(marker)
    return head if sep else uri.rsplit("/", 2)[0]
