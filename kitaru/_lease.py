"""Who runs an execution: lease owners, their liveness, and the heartbeat.

An owner token is `host:pid:start:nonce`. On the owner's own host a dead pid (or a
pid reused by another process, told apart by its start time) means the execution
crashed, at once; elsewhere the lease expiring means it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from kitaru import _later

LEASE_SECONDS = float(os.environ.get("KITARU_LEASE_SECONDS", "30"))

# Orchestrators set KITARU_HOST for each run they start: a container may share the
# machine's hostname while its pids mean nothing on the machine.
_HOST = os.environ.get("KITARU_HOST") or os.uname().nodename


def _start_time(pid: int) -> str:
    """The process's start time from /proc; "0" where there is no /proc to read, and
    "dead" for a zombie: it died, and stays listed only until its parent reaps it (a
    handle waiting on the background run it started is that parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "0"
    # Fields 3 (state) and 22 (starttime) count after the parenthesised command name,
    # which may hold spaces.
    fields = stat.rsplit(b")", 1)[1].split()
    return "dead" if fields[0] == b"Z" else fields[19].decode()


_SELF_PID = os.getpid()
_SELF_START = _start_time(_SELF_PID)


def new_owner() -> str:
    return f"{_HOST}:{os.getpid()}:{_self_start()}:{os.urandom(4).hex()}"


def _self_start() -> str:
    # This process's start time, read once (a forked child reads its own).
    pid = os.getpid()
    return _SELF_START if pid == _SELF_PID else _start_time(pid)


# What an import prefixes to its process's token while it writes an execution
# (kitaru/_portable.py): liveness is its process's, and the prefix says what it does.
IMPORTING = "kitaru-import-"


def parse_owner(owner: str) -> tuple[str, int, str]:
    host, pid, start, _nonce = owner.removeprefix(IMPORTING).rsplit(":", 3)
    return host, int(pid), start


def same_owner(seen: str | None, mine: str) -> bool:
    """Whether `seen` (a record's owner, maybe as a server shows it, nonce masked:
    kitaru/server/_owners.py) is the token `mine`. The host, pid and start time name one
    process, and a worker's child makes one token in its life."""
    if seen is None:
        return False
    if seen == mine:
        return True
    head, _, nonce = seen.rpartition(":")
    return nonce.startswith("~") and head == mine.rpartition(":")[0]


def owner_alive(owner: str, lease_until: float | None, now: float) -> bool:
    """Whether the owner may still be running the execution."""
    try:
        host, pid, start = parse_owner(owner)
    except ValueError:
        return lease_until is not None and lease_until > now
    if host == _HOST:
        if pid == os.getpid():
            return start == _self_start()
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return _start_time(pid) in (start, "0")
    return lease_until is not None and lease_until > now


def owner_pid_here(owner: str) -> int | None:
    """The owner's pid if it runs a flow on this host (an import's process is not
    signalled: it runs no flow)."""
    if owner.startswith(IMPORTING):
        return None
    try:
        host, pid, _start = parse_owner(owner)
    except ValueError:
        return None
    return pid if host == _HOST else None


def effective_status(status: str, owner: str | None, lease_until: float | None) -> str:
    """`running` whose owner is gone shows as `crashed`."""
    if status == "running" and (owner is None or not owner_alive(owner, lease_until, time.time())):
        return "crashed"
    return status


CANCEL_SIGNAL = signal.SIGUSR1


class Heartbeat:
    """Extends the lease every third of its length from a daemon thread.

    The beat also reads the cancel flag, so a cancellation requested through the
    journal (from any host) reaches the flow within one beat.

    The lease keeps its meaning while the journal is away: a lease not renewed for two
    thirds of its length is `lapsing`, and the flow renews it itself (`renew_now`)
    before it runs another checkpoint body. The renewal is the journal's compare-and-swap
    on the owner token: it fails if another process took the execution over, and
    raises if the journal stays away; either way this process runs no body on a lease
    another resumer may hold. A body already running is not interrupted; its commit is
    refused once the owner changed.
    """

    def __init__(
        self,
        beat: Callable[[], bool | None],
        on_cancel: Callable[[], None],
        interval: float = LEASE_SECONDS / 3,
    ) -> None:
        self._beat = beat
        self._on_cancel = on_cancel
        self._interval = interval
        self._lapse = interval * 2
        # When the last renewal that succeeded was sent (the lease was taken just before
        # this heartbeat was made).
        self._renewed = time.monotonic()
        self._taken_over = False
        # When the lease starts lapsing: what a checkpoint call compares the clock with
        # (-inf once taken over).
        self.lapses_at = self._renewed + self._lapse
        self._stop = _later.Stop()
        self._began = self.renewed
        self._later: _later.Later | None = None

    @property
    def renewed(self) -> float:
        """When the last renewal that succeeded was sent (time.monotonic)."""
        return self._renewed

    @renewed.setter
    def renewed(self, value: float) -> None:
        self._renewed = value
        if not self._taken_over:
            self.lapses_at = value + self._lapse

    @property
    def taken_over(self) -> bool:
        return self._taken_over

    @taken_over.setter
    def taken_over(self, value: bool) -> None:
        self._taken_over = value
        self.lapses_at = float("-inf") if value else self._renewed + self._lapse

    def lapsing(self) -> bool:
        """Whether the lease went unrenewed for two thirds of its length (or was lost)."""
        return time.monotonic() >= self.lapses_at

    def renew_now(self) -> bool:
        """Renew the lease from the flow's own thread; False if it was taken over.
        Raises what the journal raises once its retries are spent."""
        sent = time.monotonic()
        cancelled = self._beat()
        if cancelled is None:
            self.taken_over = True
            return False
        self.renewed = max(self.renewed, sent)
        if cancelled:
            self._on_cancel()
        return True

    def start(self) -> None:
        # The beating thread starts halfway to the first beat (kitaru/_later.py): a run
        # that ends before then never starts one.
        self._began = time.monotonic()
        self._later = _later.call(self._interval / 2, self._start_thread)

    def _start_thread(self) -> None:
        if not self._stop.is_set():
            threading.Thread(target=self._run, name="kitaru-heartbeat", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._later is not None:
            self._later.cancel()

    def _run(self) -> None:
        # The first beat is due one interval after start(), whenever the thread began.
        wait = self._began + self._interval - time.monotonic()
        while not self._stop.wait(max(0.0, wait)):
            wait = self._interval
            sent = time.monotonic()
            try:
                cancelled = self._beat()
            except Exception:
                continue  # a missed beat is retried; the lease is three beats long
            if cancelled is None:
                self.taken_over = True
                return  # the lease was taken over: this process no longer owns it
            self.renewed = max(self.renewed, sent)
            if cancelled:
                self._on_cancel()
