"""What the object-store artifact stores (S3, GCS, Azure Blob) share.

Keys live under the URI's prefix (`s3://bucket/prefix` stores `key` as
`prefix/key`). Large values move in parts: uploads read parts straight out of the
caller's `memoryview`, downloads write parts straight into the one buffer that becomes
the returned `bytes`, so a value is never held twice.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

from kitaru._errors import ConfigurationError

T = TypeVar("T")

MiB = 1 << 20

# One retry policy for every object store, through each SDK's own machinery (S3: botocore's
# standard mode; GCS: google-api-core's Retry; Azure: the storage SDK's ExponentialRetry):
# throttling (429, 503 SlowDown), other 5xx answers, connection resets and timeouts are
# tried up to ATTEMPTS times in all, with exponential backoff and jitter, for about
# RETRY_SECONDS at most. A write that still fails raises, before anything is recorded
# (docs/durability.md).
ATTEMPTS = 6
RETRY_SECONDS = 60.0


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigurationError(f"{name}={raw!r} must be at least 1")
    return value


class Location:
    """A parsed `scheme://bucket/prefix` store URI."""

    def __init__(self, uri: str, scheme: str, what: str) -> None:
        parts = urlsplit(uri)
        if parts.scheme != scheme or not parts.netloc:
            raise ConfigurationError(
                f"artifact store URI {uri!r} is not of the form {scheme}://{what}/prefix"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(
                f"artifact store URI {uri!r} has a query or fragment; set endpoints and "
                "credentials through the environment (see docs/artifact-stores.md)"
            )
        self.scheme = scheme
        self.bucket = parts.netloc
        self.prefix = unquote(parts.path).strip("/")
        self.uri = f"{scheme}://{self.bucket}" + (f"/{quote(self.prefix)}" if self.prefix else "")

    def name_of(self, key: str) -> str:
        """The object name that holds `key`."""
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def list_prefix(self, prefix: str) -> str:
        return f"{self.prefix}/{prefix}" if self.prefix else prefix

    def key_from_name(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def uri_of(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{quote(self.name_of(key))}"

    def key_of(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme != self.scheme or parts.netloc != self.bucket:
            raise ValueError(f"{uri} is not in artifact store {self.uri}")
        name = unquote(parts.path).lstrip("/")
        if self.prefix and not name.startswith(self.prefix + "/"):
            raise ValueError(f"{uri} is not in artifact store {self.uri}")
        return self.key_from_name(name)


class ViewReader(io.RawIOBase):
    """A seekable read-only file over a memoryview, for SDKs that upload from files.

    `read` returns at most one part-sized slice as bytes (the SDKs need bytes to send),
    so only the parts in flight are ever copied, never the whole value.
    """

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self._pos + len(buffer), len(self._view))
        n = max(0, end - self._pos)
        buffer[:n] = self._view[self._pos : end]
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        end = (
            len(self._view) if size is None or size < 0 else min(self._pos + size, len(self._view))
        )
        data = bytes(self._view[self._pos : end])
        self._pos = max(self._pos, end)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def __len__(self) -> int:
        return len(self._view)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """(start, end) of each part; the last one may be short."""
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


def run_parts(
    workers: int, parts: Iterable[tuple[int, int]], fn: Callable[[int, int, int], T]
) -> list[T]:
    """Run `fn(number, start, end)` for every part, `workers` at a time; results in order.

    The first failure cancels the parts not started yet and is raised.
    """
    todo = list(parts)
    if len(todo) <= 1:
        return [fn(1, *part) for part in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        futures = [pool.submit(fn, i, start, end) for i, (start, end) in enumerate(todo, 1)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def unreachable(uri: str, endpoint: str, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"artifact store {uri} cannot be reached at {endpoint} ({type(exc).__name__}); "
        "check that the endpoint is right and reachable from here (network, proxy, "
        "emulator running)"
    )
