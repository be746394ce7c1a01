"""Artifacts as files in a local directory (`file:///path`).

A write goes to a temporary file in the same directory and is renamed into place,
so a killed writer leaves at most a `.tmp-*` file that no key maps to. In fsync
mode the file and its directory are flushed before the rename is reported.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from kitaru._config import Durability
from kitaru._errors import ArtifactStoreError, ConfigurationError, InvalidConfigurationError
from kitaru.artifacts._buffer import Buffer, OnData

_CHUNK = 8 << 20


class LocalArtifactStore:
    def __init__(self, uri: str, durability: Durability = Durability.PROCESS) -> None:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            raise ConfigurationError(f"{uri!r} is not a file:// URI")
        self.root = Path(unquote(parsed.path) if parsed.scheme else uri).expanduser()
        self.uri = self.root.as_uri()
        self._fsync = durability is Durability.FSYNC
        self._read_only = False

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"artifact store {self.uri} cannot be created ({exc.strerror}); "
                "check the path and its permissions"
            ) from None
        # A read-only store still serves what it holds (a read-only KITARU_HOME lists
        # and shows executions); writing says why it cannot.
        self._read_only = not os.access(self.root, os.W_OK | os.X_OK)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid artifact key {key!r}")
        return self.root.joinpath(*parts)

    def write(self, key: str, data: bytes | memoryview) -> str:
        try:
            return self._write(key, data)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ArtifactStoreError(_full(self._path(key), self.root, exc)) from None
            raise

    def _write(self, key: str, data: bytes | memoryview) -> str:
        if self._read_only:
            raise InvalidConfigurationError(
                f"artifact store {self.uri} is read-only here; set KITARU_ARTIFACT_STORE (or "
                "KITARU_HOME) to a directory you can write"
            )
        path = self._path(key)
        fd, tmp = _temp_file_in(path.parent)
        try:
            view = memoryview(data).cast("B")
            with os.fdopen(fd, "wb", buffering=0) as f:
                # An unbuffered write may write less than it was given (a file system
                # that is nearly full): write the rest until it is all there or the
                # file system says why not, never a silently short file.
                done = 0
                while done < len(view):
                    wrote = f.write(view[done : done + _CHUNK])
                    if not wrote:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += wrote
                if self._fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if self._fsync:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return path.as_uri()

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        try:
            f = open(self._path(key), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise KeyError(key) from None
        with f:
            if on_data is None:
                return f.read()
            buffer = Buffer(os.fstat(f.fileno()).st_size, on_data)
            try:
                pos = 0
                while pos < buffer.size:
                    with buffer.view[pos : pos + _CHUNK] as piece:
                        n = f.readinto(piece)
                    if not n:
                        break
                    buffer.filled(pos, pos + n)
                    pos += n
            except BaseException:
                buffer.discard()
                raise
            return buffer.value()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    yield key

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        # An execution's directory goes with its last object (a writer makes it again).
        if path.parent != self.root:
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def key_of(self, uri: str) -> str:
        path = Path(unquote(urlparse(uri).path))
        return path.relative_to(self.root).as_posix()


def _temp_file_in(directory: Path) -> tuple[int, str]:
    """A new temporary file in `directory`, made with it if need be.

    Another process deleting the directory's last object removes the directory too
    (`delete`), maybe between this making it and making the file in it: then both are
    made again. Once the file is in it, the directory stays (`rmdir` of a directory
    that is not empty fails)."""
    for _ in range(100):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return tempfile.mkstemp(prefix=".tmp-", dir=directory)
        except FileNotFoundError:
            continue  # removed between the two: make it again
        except FileExistsError:
            # `mkdir` found the name taken by something that is not a directory: a file
            # stands there (the error is the user's), or a directory was removed and
            # made again while it looked.
            if directory.exists() and not directory.is_dir():
                raise
    raise FileNotFoundError(
        f"{directory} kept disappearing while a file was written into it (100 tries)"
    )


def _full(path: Path, root: Path, exc: OSError) -> str:
    """One line: the file, the free space, what to do."""
    try:
        free = f"{shutil.disk_usage(root).free / 1024:.0f} KiB free"
    except OSError:
        free = "free space unknown"
    return (
        f"artifact {path} could not be written ({exc.strerror}; {free} on its file "
        "system); nothing was recorded for it: free some space, then resume the execution"
    )
