"""Crash recovery through real processes: kill, list as crashed, resume the same execution."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import kitaru_cli, run_python, write_script

AGENT = """
import os, sys
from pathlib import Path
import kitaru
from kitaru import flow, checkpoint

LEDGER = Path(os.environ["LEDGER"])

@checkpoint
def step(i: int) -> dict:
    # Record that the body ran; a completed checkpoint must never run again.
    with LEDGER.open("a") as f:
        f.write(f"{i}\\n")
    print(f"working on step {i}")
    if os.environ.get("CRASH_AT") == str(i):
        os._exit(9)
    if os.environ.get("FAIL_AT") == str(i) and not Path(os.environ["FIXED"]).exists():
        raise RuntimeError(f"step {i} failed")
    return {"i": i, "square": i * i}

@flow
def agent(n: int) -> int:
    total = 0
    for i in range(n):
        total += step(i)["square"]
    return total

handle = agent.run(int(sys.argv[1]))
print("EXEC", handle.exec_id, handle.status)
"""


def ledger_counts(path: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in path.read_text().split():
        counts[int(line)] = counts.get(int(line), 0) + 1
    return counts


def only_execution() -> dict[str, object]:
    listing = kitaru_cli("executions", "list", "--json")
    assert listing.returncode == 0, listing
    [execution] = listing.json()
    assert isinstance(execution, dict)
    return execution


def test_killed_execution_shows_crashed_and_resumes_from_another_directory(tmp_path: Path) -> None:
    script = write_script(tmp_path / "project" / "agent.py", AGENT)
    ledger = tmp_path / "ledger"
    crashed = run_python(script, "5", env={"LEDGER": str(ledger), "CRASH_AT": "3"})
    assert crashed.returncode == 9

    execution = only_execution()
    assert execution["status"] == "crashed"
    exec_id = str(execution["exec_id"])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = kitaru_cli(
        "executions", "resume", exec_id, "--json", cwd=elsewhere, env={"LEDGER": str(ledger)}
    )
    assert resumed.returncode == 0, resumed
    view = resumed.json()
    assert view["exec_id"] == exec_id and view["status"] == "completed"
    assert view["result"] == sum(i * i for i in range(5))
    assert [c["origin"] for c in view["checkpoints"]] == ["journal"] * 3 + ["ran"] * 2
    # Steps 0-2 committed before the kill and never ran again; step 3 died before its
    # commit, so it ran twice.
    assert ledger_counts(ledger) == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1}
    # Resuming did not start a second execution from the script's top-level run().
    assert len(kitaru_cli("executions", "list", "--json").json()) == 1


def test_failed_execution_resumes_by_running_the_failed_call_again(tmp_path: Path) -> None:
    script = write_script(tmp_path / "agent.py", AGENT)
    ledger, fixed = tmp_path / "ledger", tmp_path / "fixed"
    env = {"LEDGER": str(ledger), "FAIL_AT": "2", "FIXED": str(fixed)}
    first = run_python(script, "4", env=env)
    assert first.returncode == 0 and "failed" in first.stdout
    execution = only_execution()
    assert execution["status"] == "failed"
    assert "step 2 failed" in str(execution["error"])
    fixed.touch()
    resumed = kitaru_cli("executions", "resume", str(execution["exec_id"]), "--json", env=env)
    assert resumed.returncode == 0, resumed
    assert resumed.json()["status"] == "completed"
    assert ledger_counts(ledger) == {0: 1, 1: 1, 2: 2, 3: 1}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def journal_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the embedded journal and again with a fresh PostgreSQL database."""
    if request.param == "postgres":
        from tests.journal.conftest import fresh_postgres_url

        monkeypatch.setenv("KITARU_JOURNAL_URL", fresh_postgres_url())
    return str(request.param)


def test_two_concurrent_resumes_exactly_one_runs(tmp_path: Path, journal_backend: str) -> None:
    script = write_script(tmp_path / "agent.py", AGENT)
    ledger = tmp_path / "ledger"
    run_python(script, "3", env={"LEDGER": str(ledger), "CRASH_AT": "1"})
    exec_id = str(only_execution()["exec_id"])
    env = {**os.environ, "LEDGER": str(ledger)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kitaru", "executions", "resume", exec_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    for p in procs:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        p.stderr.close()
    winners = [rc for rc, _ in outcomes if rc == 0]
    assert len(winners) == 1, outcomes
    for rc, err in outcomes:
        if rc != 0:
            assert "running" in err or "being resumed" in err or "already completed" in err, err
    assert ledger_counts(ledger) == {0: 1, 1: 2, 2: 1}


def test_parallel_executions_of_one_flow_do_not_interfere(
    tmp_path: Path, journal_backend: str
) -> None:
    script = write_script(tmp_path / "agent.py", AGENT)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(n)],
            env={**os.environ, "LEDGER": str(tmp_path / f"ledger{n}")},
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in (20, 25, 30)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and "completed" in out
    results = sorted(e["exec_id"] for e in kitaru_cli("executions", "list", "--json").json())
    assert len(results) == 3
    for exec_id in results:
        view = kitaru_cli("executions", "get", exec_id, "--json").json()
        n = len(view["checkpoints"])
        assert view["status"] == "completed" and n in (20, 25, 30)
        assert view["result"] == sum(i * i for i in range(n))
        assert [c["key"] for c in view["checkpoints"]][:2] == ["step", "step#2"]


def test_changed_flow_is_refused_by_the_determinism_guard(tmp_path: Path) -> None:
    script = write_script(tmp_path / "agent.py", AGENT)
    ledger = tmp_path / "ledger"
    run_python(script, "4", env={"LEDGER": str(ledger), "CRASH_AT": "2"})
    exec_id = str(only_execution()["exec_id"])
    # Someone inserts a new checkpoint in front of the loop.
    source = (
        script.read_text()
        .replace("    total = 0\n", "    total = 0\n    prepare()\n")
        .replace("@flow\n", "@checkpoint\ndef prepare() -> None:\n    pass\n\n@flow\n")
    )
    script.write_text(source)
    resumed = kitaru_cli("executions", "resume", exec_id, env={"LEDGER": str(ledger)})
    assert resumed.returncode == 1
    assert "NonDeterminismError" in resumed.stdout or "not replaying" in resumed.stdout
    view = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert "'step'" in view["error"] and "'prepare'" in view["error"]


def test_logs_are_captured_per_checkpoint_call(tmp_path: Path) -> None:
    script = write_script(tmp_path / "agent.py", AGENT)
    run_python(script, "2", env={"LEDGER": str(tmp_path / "ledger")})
    exec_id = str(only_execution()["exec_id"])
    logs = kitaru_cli("executions", "logs", exec_id)
    assert logs.returncode == 0
    assert logs.stdout.index("checkpoint step (run 1)") < logs.stdout.index("working on step 0")
    assert logs.stdout.index("checkpoint step#2") < logs.stdout.index("working on step 1")
    as_json = kitaru_cli("executions", "logs", exec_id, "--json").json()
    assert [g["checkpoint"] for g in as_json if "working" in g["text"]] == ["step", "step#2"]


@pytest.mark.slow
def test_sigkill_at_random_points_never_reruns_a_committed_checkpoint(tmp_path: Path) -> None:
    """A 50-checkpoint flow killed with SIGKILL at 20+ random moments, resumed each time,
    finishes with the uninterrupted result; no body runs again after its commit."""
    script = write_script(
        tmp_path / "chaos.py",
        """
        import json, os, sys, time
        from kitaru import flow, checkpoint

        @checkpoint
        def step(i: int) -> int:
            with open(os.environ["LEDGER"], "a") as f:
                f.write(f"start {i}\\n")
            # Long enough that one resume cannot finish the flow between two kills.
            time.sleep(0.1)
            return i * 7 % 13

        @flow
        def chaos(n: int) -> int:
            return sum(step(i) for i in range(n))

        if __name__ == "__main__":
            handle = chaos.run(50)
            print(json.dumps({"exec_id": handle.exec_id}))
    """,
    )
    ledger = tmp_path / "ledger"
    env = {**os.environ, "LEDGER": str(ledger)}
    rng = random.Random(1234)
    kills = 0
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while not ledger.exists() and time.time() < deadline:  # the execution has started
        time.sleep(0.02)
    time.sleep(rng.uniform(0.1, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()
    kills += 1
    exec_id = str(only_execution()["exec_id"])
    failures: list[str] = []
    while True:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kitaru", "executions", "resume", exec_id, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kills < 22:
            time.sleep(rng.uniform(0.1, 0.3))
        if kills < 22 and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            proc.stderr.close()
            kills += 1
            continue
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            break
        # A resume that finished before it could be killed, or lost a race: try again.
        failures.append(err)
        assert len(failures) < 10, failures
    view = json.loads(out)
    assert view["status"] == "completed"
    assert view["result"] == sum(i * 7 % 13 for i in range(50))
    assert kills >= 20
    # Each body may start again only while it was not committed: the committed calls are
    # exactly the ones a later run read back from the journal.
    starts: dict[int, int] = {}
    for line in ledger.read_text().splitlines():
        i = int(line.split()[1])
        starts[i] = starts.get(i, 0) + 1
    assert sorted(starts) == list(range(50))
    total_restarts = sum(starts.values()) - 50
    assert total_restarts <= kills


LONG_RUN = """
import sys, time
from kitaru import flow
from kitaru._runtime import current
from kitaru.journal import current_journal

@flow
def long_run() -> float:
    # The heartbeat thread starts only once the run has lasted half a beat: a run that
    # outlives a beat must still have its lease renewed while it works.
    ctx = current()
    first = current_journal().get_execution(ctx.exec_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = current_journal().get_execution(ctx.exec_id)
        if now.lease_until > first.lease_until:
            return now.lease_until - first.lease_until
    return 0.0

handle = long_run.run()
print("RENEWED", handle.result())
"""


def test_a_run_longer_than_a_heartbeat_has_its_lease_renewed(tmp_path: Path) -> None:
    script = write_script(tmp_path / "long_run.py", LONG_RUN)
    done = run_python(script, env={"KITARU_LEASE_SECONDS": "0.6"})
    assert done.returncode == 0, done.stderr
    renewed = float(done.stdout.split("RENEWED", 1)[1])
    assert renewed > 0, done.stdout
