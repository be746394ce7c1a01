"""Running it for months: a schedule, a cached checkpoint and a durable sleep.

    python examples/nightly_digest.py      # schedules a digest every 2 s, runs a worker 8 s, shows the history

What it does, as you would by hand (from the examples/ folder):

    kitaru schedules create digest --flow nightly_digest:digest --cron '0 6 * * *' \\
        --timezone Europe/Berlin --args '{"source": "news"}'
    kitaru worker --flows nightly_digest            # fires due schedules and runs them
    kitaru schedules history digest

Each tick queues one execution for a worker (a server fires schedules too; any number
of servers and workers start each tick once). In it, `fetch_headlines` is cached across
executions for an hour: the second tick reads the first tick's output (its timeline says
`cache (kx_...)`). `kitaru.sleep` then releases the worker's process; the worker wakes
the execution once the time has passed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import kitaru
from kitaru import checkpoint, flow


@checkpoint(cache=True, cache_ttl=3600)
def fetch_headlines(source: str) -> list[str]:
    print(f"fetching {source}")
    return [f"{source}: kites are back", f"{source}: the wind picks up"]


@checkpoint
def summarize(headlines: list[str]) -> str:
    return f"{len(headlines)} headlines, first: {headlines[0]}"


@flow
def digest(source: str) -> str:
    headlines = fetch_headlines(source)
    kitaru.sleep(1)  # a pause that holds no process
    return summarize(headlines)


def kitaru_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kitaru", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


ENDED = {"completed", "failed", "crashed", "cancelled"}


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    os.chdir(here)
    kitaru_cli(
        "schedules", "create", "digest", "--flow", "nightly_digest:digest",
        "--cron", "* * * * * */2", "--args", '{"source": "news"}',
    )  # fmt: skip
    print("schedule 'digest' created: every 2 seconds")
    worker = subprocess.Popen(
        [sys.executable, "-m", "kitaru", "worker", "--flows", "nightly_digest", "--poll", "0.05"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(8)
    kitaru_cli("schedules", "pause", "digest")
    # The last tick's execution may still be asleep: let every started one end first.
    deadline = time.monotonic() + 60
    while not all(
        t["execution_status"] in ENDED
        for t in json.loads(kitaru_cli("schedules", "history", "digest", "--json"))
        if t["exec_id"]
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the schedule's executions did not end within 60 s")
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    history = json.loads(kitaru_cli("schedules", "history", "digest", "--json"))
    print(kitaru_cli("schedules", "history", "digest"))
    started = [h for h in reversed(history) if h["exec_id"]]
    if len(started) >= 2:
        second = json.loads(kitaru_cli("executions", "get", started[1]["exec_id"], "--json"))
        [fetch] = [c for c in second["checkpoints"] if c["name"] == "fetch_headlines"]
        print(f"second tick's fetch_headlines: {fetch['origin']} ({fetch['reused_from']})")


if __name__ == "__main__":
    main()
