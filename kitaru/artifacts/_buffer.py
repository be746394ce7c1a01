"""The one buffer a read fills, and that ends as the immutable `bytes` handed back.

A BytesIO resized to the final size exposes a writable view of its own bytes object;
once every view is released, `getvalue()` hands that same object over without copying
it (CPython), so a value exists once in memory from its first byte to its last use.

Readers may want to see the bytes as they land (Kitaru hashes them to verify the
content): a helper thread passes each newly contiguous stretch from the start to
`on_data`, in order, while the download goes on. Hashing releases the GIL, so the
check costs little wall time on top of the transfer.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

OnData = Callable[[memoryview], object]


class Buffer:
    def __init__(self, size: int, on_data: OnData | None = None) -> None:
        self.size = size
        self._io = io.BytesIO()
        if size:
            self._io.seek(size - 1)
            self._io.write(b"\0")
        self.view = self._io.getbuffer()
        self._pos = 0
        self._cond = threading.Condition()
        self._ready = 0  # every byte before this one is in place
        self._landed: dict[int, int] = {}  # start -> end of stretches after _ready
        self._stop = False
        self._error: BaseException | None = None
        self._on_data = on_data
        self._feeder: threading.Thread | None = None
        if on_data is not None and size:
            self._feeder = threading.Thread(target=self._feed, name="kitaru-read", daemon=True)
            self._feeder.start()

    def filled(self, start: int, end: int) -> None:
        """Report that bytes [start, end) are in place (any order, any thread)."""
        if end <= start:
            return
        with self._cond:
            self._landed[start] = end
            while self._ready in self._landed:
                self._ready = self._landed.pop(self._ready)
            self._cond.notify()

    def _feed(self) -> None:
        assert self._on_data is not None
        done = 0
        try:
            while done < self.size:
                with self._cond:
                    while self._ready == done and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    end = self._ready
                with self.view[done:end] as piece:
                    self._on_data(piece)
                done = end
        except BaseException as exc:
            self._error = exc

    # A file-like face for SDKs that download into a seekable stream.
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = base + offset
        return self._pos

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        start = self._pos
        if start + n > self.size:
            raise OSError(f"the object grew while it was read ({start + n} > {self.size} bytes)")
        self.view[start : start + n] = data
        self._pos = start + n
        self.filled(start, start + n)
        return n

    def flush(self) -> None:
        pass

    def complete(self) -> bool:
        with self._cond:
            return self._ready == self.size

    def discard(self) -> None:
        """Give the buffer up after a failed read."""
        self._join(stop=True)
        self.view.release()

    def value(self) -> bytes:
        """The filled buffer as bytes; raises what `on_data` raised."""
        if not self.complete():
            self.discard()
            raise OSError(f"the object ended early ({self._ready} of {self.size} bytes)")
        self._join(stop=False)
        self.view.release()
        if self._error is not None:
            raise self._error
        data = self._io.getvalue()
        self._io.close()
        return data

    def _join(self, *, stop: bool) -> None:
        if self._feeder is None:
            return
        if stop:
            with self._cond:
                self._stop = True
                self._cond.notify()
        self._feeder.join()
