"""A small TCP proxy that misbehaves on purpose: it resets connections at random, delays
bytes, and can refuse everything for a while (a database or server that went away).

    with ChaosProxy(upstream_port, reset_every=(0.1, 0.4), delay=0.01) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
        proxy.down()   # every open connection reset, new ones refused
        proxy.up()

Resets hit connections in the middle of whatever they carry: a commit whose answer is
lost on its way back is the case the journal's retries must recognise.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from types import TracebackType


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), waking any thread blocked on the socket."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class ChaosProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        reset_every: tuple[float, float] | None = None,
        max_resets: int | None = None,
        delay: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.reset_every = reset_every
        self.max_resets = max_resets
        self.delay = delay
        self.random = random.Random(seed)
        self.resets = 0
        self.refused = 0
        self._refusing = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        if reset_every is not None:
            self._threads.append(threading.Thread(target=self._chaos, daemon=True))

    def __enter__(self) -> ChaosProxy:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._listener.close()
        self.reset_all()

    # -- faults --------------------------------------------------------------------------
    def down(self) -> None:
        """Reset every connection and refuse new ones until `up()`."""
        self._refusing = True
        self.reset_all()

    def up(self) -> None:
        self._refusing = False

    def reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, server in pairs:
            self.resets += 1
            _reset(client)
            _reset(server)

    def calm(self) -> None:
        """No more random resets (the ones already made stay made)."""
        self.reset_every = None

    def _chaos(self) -> None:
        while not self._stop.is_set():
            span = self.reset_every
            if span is None or (self.max_resets is not None and self.resets >= self.max_resets):
                return
            time.sleep(self.random.uniform(*span))
            with self._lock:
                if not self._pairs:
                    continue
                pair = self._pairs.pop(self.random.randrange(len(self._pairs)))
            self.resets += 1
            _reset(pair[0])
            _reset(pair[1])

    # -- plumbing ------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay and self.random.random() < 0.05:
                    time.sleep(self.random.uniform(0, self.delay))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs = [p for p in self._pairs if src not in p]
            _reset(src)
            _reset(dst)
