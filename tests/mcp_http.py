"""`kitaru mcp serve --http 0` started for a test: the port it took, read from its line."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2

ADDRESS = re.compile(r"^kitaru mcp: .* at (http://\S+/mcp) ")


class McpHttp:
    """The server process, its URL, and everything it printed to stderr so far."""

    def __init__(self, args: list[str], cwd: Path | str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kitaru", "mcp", "serve", *args, "--http", "0"],
            cwd=cwd, env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._found = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 60
        while not self._found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"kitaru mcp serve did not start: {self.lines}")
        while True:  # bound: answered once uvicorn serves the socket
            try:
                httpx2.get(self.url, timeout=1)
                return
            except httpx2.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"kitaru mcp serve did not answer: {self.lines}")
                time.sleep(0.1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # drained to the end: the pipe never fills
            self.lines.append(line)
            found = ADDRESS.match(line)
            if found and not self.url:
                self.url = found.group(1)
                self._found.set()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
