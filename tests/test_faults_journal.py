"""The journal's bad minutes, replayed for real: a proxy in front of PostgreSQL that
resets connections at random (commits whose answer never comes back included), a real
`pg_ctl restart -m fast` mid-run, an outage longer than the retry window, and one longer
than the lease while another host takes over (the first host between two checkpoints, or
inside a body). Flows are real processes; every body writes a line to a side file opened
with O_APPEND, so "ran once" is counted, not assumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos_proxy import ChaosProxy
from tests.conftest import REPO, kitaru_cli, write_script
from tests.own_postgres import OwnPostgres

pytestmark = pytest.mark.services

FLOW = """
import json, os, sys, time
import kitaru
from kitaru import checkpoint, flow

SIDE = os.environ["SIDE"]
TAG = os.environ["RUN_TAG"]
PAUSE = float(os.environ.get("PAUSE", "0"))
# HOLD: a file; at step HOLD_AT, in the flow's code before the call (HOLD_IN=flow) or
# inside the body (HOLD_IN=body), say so in HOLD.held, then wait until HOLD exists.
HOLD = os.environ.get("HOLD")
HOLD_AT = int(os.environ.get("HOLD_AT", "-1"))

def hold(i: int, where: str) -> None:
    if HOLD and i == HOLD_AT and os.environ.get("HOLD_IN") == where:
        open(HOLD + ".held", "w").close()
        while not os.path.exists(HOLD):
            time.sleep(0.01)

@checkpoint
def step(i: int) -> int:
    fd = os.open(SIDE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{TAG} {os.getpid()} {i}\\n".encode())
    os.close(fd)
    hold(i, "body")
    if PAUSE:
        time.sleep(PAUSE)
    return i * i

@flow(retries=int(os.environ.get("FLOW_RETRIES", "0")))
def many(n: int) -> int:
    total = 0
    for i in range(n):
        hold(i, "flow")
        total += step(i)
    return total

if __name__ == "__main__":
    handle = many.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status,
                      "result": handle.result() if handle.status == "completed" else None}))
"""


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    yield pg
    pg.stop()


def _start(
    script: Path, n: int, *, url: str, side: Path, tag: str, **env: str
) -> subprocess.Popen[str]:
    full = {
        **os.environ,
        "KITARU_JOURNAL_URL": url,
        "SIDE": str(side),
        "RUN_TAG": tag,
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(script), str(n)],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(side: Path) -> list[tuple[str, int, int]]:
    if not side.exists():
        return []
    out = []
    for line in side.read_text().splitlines():
        tag, pid, i = line.split()
        out.append((tag, int(pid), int(i)))
    return out


def _wait_for_lines(side: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(_lines(side)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the flow made no progress"
        time.sleep(0.02)


def _journal_calls(url: str, exec_id: str) -> list[tuple[str, str, int]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT key, status, attempts FROM calls WHERE exec_id = %s ORDER BY seq", (exec_id,)
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _check_journal(url: str, exec_id: str, n: int) -> None:
    """The journal holds exactly the calls that ran: one completed row per step."""
    calls = _journal_calls(url, exec_id)
    expected = ["step"] + [f"step#{i}" for i in range(2, n + 1)]
    assert [key for key, _status, _attempts in calls] == expected
    assert {(status, attempts) for _key, status, attempts in calls} == {("completed", 1)}


def test_four_flows_ride_out_random_resets(tmp_path: Path, own_pg: OwnPostgres) -> None:
    script = write_script(tmp_path / "flow.py", FLOW)
    side = tmp_path / "side.txt"
    n = 300
    with ChaosProxy(own_pg.port, reset_every=(0.02, 0.15), delay=0.02, seed=23) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/kitaru"
        procs = [_start(script, n, url=url, side=side, tag=f"f{k}", PAUSE="0.01") for k in range(4)]
        outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert proxy.resets >= 10, "the proxy did not get in the way enough to prove anything"
    # Each body ran exactly once; a body whose commit was cut would show a second line.
    ran = Counter((tag, i) for tag, _pid, i in _lines(side))
    assert set(ran.values()) == {1}, [k for k, v in ran.items() if v > 1][:5]
    assert len(ran) == 4 * n
    for result in results:
        assert result["status"] == "completed"
        assert result["result"] == sum(i * i for i in range(n))
        _check_journal(own_pg.url, result["exec_id"], n)


def test_pg_ctl_restart_mid_run(tmp_path: Path, own_pg: OwnPostgres) -> None:
    script = write_script(tmp_path / "flow.py", FLOW)
    side = tmp_path / "side.txt"
    n = 600
    proc = _start(script, n, url=own_pg.url, side=side, tag="r", PAUSE="0.005")
    _wait_for_lines(side, 150, proc)
    own_pg.restart()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "OperationalError" not in err, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "completed"
    assert result["result"] == sum(i * i for i in range(n))
    ran = Counter(i for _tag, _pid, i in _lines(side))
    assert len(ran) == n and set(ran.values()) == {1}
    _check_journal(own_pg.url, result["exec_id"], n)


def test_outage_past_the_retry_window_stops_with_one_line(
    tmp_path: Path, own_pg: OwnPostgres
) -> None:
    script = write_script(tmp_path / "flow.py", FLOW)
    side = tmp_path / "side.txt"
    n = 200
    with ChaosProxy(own_pg.port) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/kitaru"
        proc = _start(
            script, n, url=url, side=side, tag="o", PAUSE="0.01", KITARU_JOURNAL_RETRY_SECONDS="2"
        )
        _wait_for_lines(side, 30, proc)
        proxy.down()
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    [last] = err.strip().splitlines()  # one line, no traceback
    assert last.startswith("kitaru: execution ") and "did not answer for 2 s" in last, err
    exec_id = last.split("execution ", 1)[1].split()[0]
    assert f"kitaru executions resume {exec_id}" in last
    assert "psycopg" not in err, err  # the driver's own traceback is not the user's
    ran_before = Counter(i for _tag, _pid, i in _lines(side))
    # The journal is back: the resume runs what was not committed, and nothing else.
    resumed = kitaru_cli(
        "executions", "resume", exec_id,
        cwd=tmp_path,
        env={"KITARU_JOURNAL_URL": own_pg.url, "SIDE": str(side), "RUN_TAG": "o2",
             "PYTHONPATH": str(REPO)},
        timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed
    calls = _journal_calls(own_pg.url, exec_id)
    assert len(calls) == n
    ran = Counter(i for _tag, _pid, i in _lines(side))
    assert len(ran) == n
    # Only the body in flight when the journal went away may have run twice.
    twice = [i for i, count in ran.items() if count > 1]
    assert len(twice) <= 1 and all(ran_before[i] == 1 for i in twice)
    _check_journal(own_pg.url, exec_id, n)


@pytest.mark.parametrize("held_in", ["flow", "body"])
def test_a_lease_lapsed_while_away_runs_no_body_and_commits_nothing_after_a_takeover(
    held_in: str, tmp_path: Path, own_pg: OwnPostgres
) -> None:
    """Host A is in its flow's own code between two checkpoints (`flow`), or inside a
    body (`body`), when its journal goes away for longer than its lease. Host B resumes
    the execution and completes it. When the journal comes back, A goes on: it runs no
    further body (the lease is renewed before a body runs, and found taken over) and
    commits nothing (the commit checks the owner), and stops with one line."""
    from kitaru._lease import effective_status
    from kitaru.journal import open_journal

    script = write_script(tmp_path / "flow.py", FLOW)
    side, go = tmp_path / "side.txt", tmp_path / "go"
    n, at = 30, 10
    lease = {"KITARU_LEASE_SECONDS": "2"}
    with ChaosProxy(own_pg.port) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/kitaru"
        # (The flow's own retries must not run it again on A either.)
        a = _start(script, n, url=url, side=side, tag="A", KITARU_HOST="host-a", HOLD=str(go),
                   HOLD_AT=str(at), HOLD_IN=held_in, FLOW_RETRIES="2", **lease)  # fmt: skip
        while not (tmp_path / "go.held").exists():
            assert a.poll() is None, a.communicate()
            time.sleep(0.02)
        proxy.down()
        journal = open_journal(own_pg.url)
        exec_id = journal.list_executions(flow="many", limit=1)[0].exec_id
        while True:  # as host B sees it: A's lease ran out
            record = journal.get_execution(exec_id)
            assert record is not None
            if effective_status(record.status, record.owner, record.lease_until) == "crashed":
                break
            time.sleep(0.1)
        b = kitaru_cli(
            "executions", "resume", exec_id,
            cwd=tmp_path,
            env={"KITARU_JOURNAL_URL": own_pg.url, "SIDE": str(side), "RUN_TAG": "B",
                 "PYTHONPATH": str(REPO), "KITARU_HOST": "host-b", **lease},
            timeout=300,
        )  # fmt: skip
        assert b.returncode == 0, b
        proxy.up()
        go.touch()
        out, err = a.communicate(timeout=120)
    lines = _lines(side)
    first_b = next(k for k, (tag, _pid, _i) in enumerate(lines) if tag == "B")
    assert all(tag == "B" for tag, _pid, _i in lines[first_b:]), "A ran a body after B took over"
    _check_journal(own_pg.url, exec_id, n)
    record = journal.get_execution(exec_id)
    assert record is not None and record.status == "completed"
    # A stopped with one line that says so, and where the execution went on.
    assert a.returncode != 0 and not out
    [line] = err.strip().splitlines()
    assert line.startswith(f"kitaru: execution {exec_id} stopped: another process took it over")
    assert f"kitaru executions get {exec_id}" in line


def test_flows_through_a_server_ride_out_random_resets(tmp_path: Path, own_pg: OwnPostgres) -> None:
    """The proxy between the flows and a Kitaru server: the client's retries (what cannot
    have been carried out) and its read-back of writes whose answer was lost."""
    from tests.server_process import ServerProcess

    server = ServerProcess(own_pg.url, tmp_path / "server", args=("--sweep-interval", "0"))
    try:
        token = server.token("write", name="runner")
        port = int(server.url.rsplit(":", 1)[1])
        script = write_script(tmp_path / "flow.py", FLOW)
        side = tmp_path / "side.txt"
        n = 100
        with ChaosProxy(port, reset_every=(0.05, 0.3), seed=5) as proxy:
            env = server.client_env(token, tmp_path / "client-home")
            env["KITARU_SERVER_URL"] = f"http://127.0.0.1:{proxy.port}"
            env.pop("KITARU_JOURNAL_URL", None)
            procs = [
                subprocess.Popen(
                    [sys.executable, str(script), str(n)],
                    env={
                        **env,
                        "SIDE": str(side),
                        "RUN_TAG": f"s{k}",
                        "PAUSE": "0.01",
                        "PYTHONPATH": str(REPO),
                    },
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for k in range(2)
            ]
            outs = [p.communicate(timeout=600) for p in procs]
    finally:
        server.stop()
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
    assert proxy.resets >= 5, "the proxy did not get in the way enough to prove anything"
    ran = Counter((tag, i) for tag, _pid, i in _lines(side))
    assert len(ran) == 2 * n and set(ran.values()) == {1}
    from kitaru.journal import open_journal

    journal = open_journal(own_pg.url)
    for out, _err in outs:
        result = json.loads(out.strip().splitlines()[-1])
        assert result["status"] == "completed"
        _check_journal(own_pg.url, result["exec_id"], n)
        # The live feed (what `kitaru executions watch` and the SSE stream read, by
        # number) holds each entry once, whatever batch answers were lost on the way.
        feed = journal.events(result["exec_id"], limit=100_000)
        seen = Counter((e.run, e.ts, e.kind, e.name, e.call_key) for e in feed)
        assert [entry for entry, times in seen.items() if times > 1] == []
        assert feed[-1].kind == "run_ended"
