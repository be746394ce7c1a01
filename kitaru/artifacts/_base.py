"""The artifact store contract: where artifact bytes live.

Keys are `/`-separated relative paths (`<exec_id>/<artifact_id>`). `write` must be
atomic: a reader sees either nothing or every byte, never a prefix, even when the
writer is killed halfway. Large values are written from a `memoryview` in chunks and
never copied whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from kitaru.artifacts._buffer import OnData


class ArtifactStore(Protocol):
    uri: str

    def check(self) -> None:
        """Fail with the URI and what to check unless the store can be written to."""

    def write(self, key: str, data: bytes | memoryview) -> str:
        """Store `data` under `key` atomically; return the URI of the stored object."""

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        """The bytes under `key`; raise KeyError if there are none.

        `on_data`, if given, is called from one helper thread with consecutive pieces of
        the value, in order, while it is read (Kitaru hashes them to verify the value
        without a second pass); what it raises, `read` raises.
        """

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with `prefix`, in no particular order."""

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    def key_of(self, uri: str) -> str:
        """The key of a URI that `write` returned."""
