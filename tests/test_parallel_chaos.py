"""Fan-out under SIGKILL: parallel calls never get each other's outputs after a resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from kitaru import KitaruClient
from tests.conftest import kitaru_cli, write_script

FLOW = """
import asyncio, json, os, random, sys, time
from concurrent.futures import ThreadPoolExecutor
import kitaru
from kitaru import checkpoint, flow


def started(kind, item):
    # One line per body start, written before the work; the journal keeps the pid of
    # the process whose run was committed.
    with open(os.environ["LEDGER"], "a") as f:
        f.write(f"{kind} {item} {os.getpid()}\\n")
    kitaru.log(pid=os.getpid(), kind=kind, item=item)


@checkpoint
async def search(q: str) -> str:
    started("search", q)
    await asyncio.sleep(random.uniform(0, 0.06))
    return f"search:{q}"


async def worker(q):
    await asyncio.sleep(random.uniform(0, 0.03))  # whoever wakes first calls first
    return await search(q)


@checkpoint
def fetch(q: str) -> str:
    started("fetch", q)
    time.sleep(random.uniform(0, 0.06))
    return f"fetch:{q}"


@checkpoint
async def rank(q: str) -> str:
    started("rank", q)
    await asyncio.sleep(random.uniform(0, 0.06))
    return f"rank:{q}"


def on_threads(qs):
    with ThreadPoolExecutor(5) as pool:
        pooled = list(pool.map(fetch, qs))
    return pooled, fetch.map([q + "!" for q in qs], concurrency=4)


@flow
async def fan_out(n: int) -> dict:
    qs = [f"q{i}" for i in range(n)]
    gathered = await asyncio.gather(*[worker(q) for q in qs])
    pooled, mapped = await asyncio.to_thread(on_threads, qs)
    ranked = await rank.map(qs, concurrency=4)
    return {"gather": gathered, "pool": pooled, "map": mapped, "ranked": ranked}


if __name__ == "__main__":
    handle = fan_out.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

N = 20


def _spawn(args: list[str], ledger: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, "LEDGER": str(ledger)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at_random(proc: subprocess.Popen[str], rng: random.Random) -> bool:
    """SIGKILL the process at a random moment; False if it had already finished."""
    time.sleep(rng.uniform(0.25, 0.9))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return killed


def _executions() -> set[str]:
    return {e.exec_id for e in KitaruClient().executions.list(limit=1000)}


def test_fan_out_killed_at_random_moments_hands_every_call_its_own_output(
    tmp_path: Path,
) -> None:
    script = write_script(tmp_path / "fan_out.py", FLOW)
    uncrashed = _spawn([str(script), str(N)], tmp_path / "uncrashed.ledger")
    out, err = uncrashed.communicate(timeout=120)
    assert uncrashed.returncode == 0, err
    first = json.loads(out)
    assert first["status"] == "completed"
    expected = kitaru_cli("executions", "get", first["exec_id"], "--json").json()["result"]
    assert expected["gather"] == [f"search:q{i}" for i in range(N)]

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    finished: list[tuple[str, Path]] = []
    while kills < 20:
        ledger = tmp_path / f"run{len(finished)}.ledger"
        before = _executions()
        if not _kill_at_random(_spawn([str(script), str(N)], ledger), rng):
            continue  # it finished first: nothing to recover
        [exec_id] = _executions() - before or [None]
        if exec_id is None:
            continue  # killed before the execution was recorded
        kills += 1
        while True:
            resume = _spawn(["-m", "kitaru", "executions", "resume", exec_id], ledger)
            if kills < 20 and _kill_at_random(resume, rng):
                kills += 1
                continue
            resume.communicate(timeout=120)
            view = kitaru_cli("executions", "get", exec_id, "--json").json()
            if view["status"] == "completed":
                break
            assert view["status"] == "crashed", (seed, view)
        finished.append((exec_id, ledger))

    assert kills >= 20
    for exec_id, ledger in finished:
        view = kitaru_cli("executions", "get", exec_id, "--json").json()
        # Every result is its own input's, in input order: the uncrashed run's result.
        assert view["result"] == expected, (seed, exec_id)
        starts: dict[tuple[str, str], list[str]] = {}
        for line in ledger.read_text().splitlines():
            kind, item, pid = line.split()
            starts.setdefault((kind, item), []).append(pid)
        calls = view["checkpoints"]
        assert len(calls) == len(starts) == 4 * N, (seed, exec_id)
        for call in calls:
            meta = call["metadata"]
            pids = starts[(meta["kind"], meta["item"])]
            # Processes ran one after another, so the ledger is in time order: the body
            # never started again after the run whose output was committed.
            assert pids[-1] == str(meta["pid"]), (seed, exec_id, call["key"], pids)
            assert pids.count(pids[-1]) == 1, (seed, exec_id, call["key"], pids)
