"""Helpers for tests of the live feed: a flow that takes its time, and a follower that
notes when each line of a `watch` / `logs --follow` process arrives."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Each step prints, sleeps STEP_SECONDS, emits its progress; env vars make the flow crash
# in a step, fail or wait at its end. With GATE set, the flow prints a line and holds
# until that file exists: the test opens the gate once its follower shows a line, so
# every call happens while the follower follows, however slowly the machine starts it.
LIVE = """
import json, os, sys, time
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def step(i: int) -> int:
    print(f"working on {i}", flush=True)
    time.sleep(float(os.environ.get("STEP_SECONDS", "0.6")))
    kitaru.emit("progress", {"done": i + 1})
    if os.environ.get("CRASH_AT") == str(i):
        os._exit(9)
    return i


@flow
def live(n: int) -> int:
    kitaru.emit("plan", {"steps": n})
    gate = os.environ.get("GATE")
    if gate:
        print("waiting for the follower", flush=True)
        while not os.path.exists(gate):
            time.sleep(0.05)
    total = sum(step(i) for i in range(n))
    if os.environ.get("FAIL_AT_END"):
        raise RuntimeError("it broke at the end")
    if os.environ.get("WAIT_AT_END"):
        kitaru.wait("approve", schema=bool, question="Ship it?")
    return total


if __name__ == "__main__":
    try:
        handle = live.run(int(sys.argv[1]))
        print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
    except Exception as exc:
        print(exc, file=sys.stderr)
"""


class Follower:
    """A running command whose stdout lines are kept with the time each arrived."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kitaru", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    def first_line(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            assert self.proc.poll() is None or self.lines, f"the follower exited: {self.stderr}"
            assert time.monotonic() < deadline, "the follower printed nothing"
            time.sleep(0.02)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    @property
    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def entries(self) -> list[tuple[float, dict[str, Any]]]:
        """With --json: (arrival, entry) for each line."""
        return [(at, json.loads(text)) for at, text in self.lines]


def first_execution(list_ids: Callable[[], list[str]], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = list_ids()
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no execution started"
        time.sleep(0.05)


def check_live(entries: list[tuple[float, dict[str, Any]]], steps: int) -> None:
    """Every entry is there once, in order; every call happened after the follower printed
    its first line (the flow waited at its gate) and the entries reached the follower as
    they happened; the last line says how it ended."""
    *feed, (_, end) = entries
    assert end["kind"] == "end"
    kinds = [e["kind"] for _, e in feed]
    assert kinds.count("call_started") == steps and kinds.count("call_ended") == steps
    progress = [
        e["data"]["done"] for _, e in feed if e["kind"] == "event" and e["name"] == "progress"
    ]
    assert progress == list(range(1, steps + 1))
    assert [e["seq"] for _, e in feed] == list(range(1, len(feed) + 1))
    following_since = feed[0][0]
    later = [(at, e) for at, e in feed if e["ts"] > following_since]
    assert sum(e["kind"] == "call_ended" for _, e in later) == steps, "the follower came late"
    # Live, judged so that one stall of a loaded machine does not fail it: most entries
    # arrive within a second, and most arrive while the flow is still running (before its
    # last call ended), which a feed shown only at the end never does.
    lags = sorted(arrived - e["ts"] for arrived, e in later)
    assert lags[len(lags) // 2] < 1.0, lags
    last_call = max(e["ts"] for _, e in feed if e["kind"] == "call_ended")
    while_running = [e for arrived, e in later if arrived < last_call]
    assert len(while_running) * 2 >= len(later), (lags, len(while_running))
