"""A PostgreSQL cluster of a test's own, which the test may restart or stop without
disturbing the shared one (scripts/services/postgres.sh): same binaries, its own data
directory and port. initdb and postgres refuse to run as root, so as root they run as
the `postgres` OS user, as the service script does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OwnPostgres:
    def __init__(self) -> None:
        found = _bin()
        if found is None:
            raise RuntimeError(
                "no PostgreSQL binaries (scripts/services/postgres.sh installs them)"
            )
        self.bin = found
        self.dir = Path(tempfile.mkdtemp(prefix="kitaru-own-pg-"))
        self.data = self.dir / "data"
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--no-sync")  # fmt: skip
        for attempt in range(3):
            # PostgreSQL cannot take port 0: a free port is picked and may be taken by
            # another process before the server binds it; then another is picked.
            self.port = _free_port()
            seen = len(self._log())
            try:
                self.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2 or "already in use" not in self._log()[seen:]:
                    raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/kitaru"
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "kitaru")

    def _pg(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=100"
        )

    def _log(self) -> str:
        try:
            return (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                 "start", "-o", self._options())  # fmt: skip

    def restart(self) -> None:
        """What a failover or a minor-version patch does: every session is cut."""
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                 "restart", "-m", "fast", "-o", self._options())  # fmt: skip

    def stop(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
