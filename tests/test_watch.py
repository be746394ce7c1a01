"""`kitaru executions watch` and `logs --follow` on the embedded journal, in real
processes: a flow script runs while the follower prints its feed as it happens, and
stops when the execution ends or waits, with its exit code and a final line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import kitaru_cli, write_script

from kitaru import KitaruClient
from tests.live import LIVE, Follower, check_live, first_execution

STEPS = 4


def start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    script = write_script(tmp_path / "live.py", LIVE)
    before = {e.exec_id for e in KitaruClient().executions.list()}
    flow = subprocess.Popen(
        [sys.executable, str(script), str(STEPS)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exec_id = first_execution(
        lambda: [e.exec_id for e in KitaruClient().executions.list() if e.exec_id not in before]
    )
    return flow, exec_id


def test_watch_shows_calls_and_events_as_they_happen_and_stops_at_the_end(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    flow, exec_id = start(tmp_path, GATE=str(gate))
    watch = Follower(["executions", "watch", exec_id, "--json"], dict(os.environ))
    watch.first_line()
    gate.touch()
    assert watch.finish() == 0, watch.stderr
    flow.wait(30)
    check_live(watch.entries(), STEPS)
    assert watch.entries()[-1][1]["status"] == "completed"

    # The same feed as text: one stamped line per entry, then the final line.
    text = kitaru_cli("executions", "watch", exec_id)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[-1] == f"execution {exec_id} completed"
    assert any(line.endswith('event progress in step#2 {"done":2}') for line in lines)
    assert any("step#4 completed in 0.6" in line for line in lines), lines


def test_logs_follow_prints_output_as_it_is_printed(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    flow, exec_id = start(tmp_path, GATE=str(gate))
    logs = Follower(["executions", "logs", exec_id, "--follow"], dict(os.environ))
    logs.first_line()
    gate.touch()
    assert logs.finish() == 0
    flow.wait(30)
    printed = [(at, line) for at, line in logs.lines if line.startswith("working on")]
    assert [line for _, line in printed] == [f"working on {i}" for i in range(STEPS)]
    # Lines arrived one step apart, not all at the end.
    assert printed[-1][0] - printed[0][0] > (STEPS - 2) * 0.5
    assert "── checkpoint step#3 (run 1) ──" in [line for _, line in logs.lines]
    assert [line for _, line in logs.lines[:2]] == [
        "── flow (run 1) ──",
        "waiting for the follower",
    ]


def test_watch_ends_when_the_execution_waits_or_fails(tmp_path: Path) -> None:
    flow, exec_id = start(tmp_path / "w", WAIT_AT_END="1", STEP_SECONDS="0.1")
    watch = kitaru_cli("executions", "watch", exec_id)
    assert watch.returncode == 0
    assert "waits at approve: Ship it?" in watch.stdout
    assert f"kitaru executions input {exec_id}" in watch.stdout.splitlines()[-1]
    flow.wait(30)

    flow, exec_id = start(tmp_path / "f", FAIL_AT_END="1", STEP_SECONDS="0.1")
    watch = kitaru_cli("executions", "watch", exec_id)
    assert watch.returncode == 1
    assert "it broke at the end" in watch.stdout.splitlines()[-1]
    flow.wait(30)


def test_a_resume_does_not_emit_again_the_events_of_completed_calls(tmp_path: Path) -> None:
    flow, exec_id = start(tmp_path, CRASH_AT="2", STEP_SECONDS="0.05")
    assert flow.wait(30) == 9
    resumed = kitaru_cli("executions", "resume", exec_id, "--project", str(tmp_path))
    assert resumed.returncode == 0, resumed
    watch = kitaru_cli("executions", "watch", exec_id, "--json")
    entries = [json.loads(line) for line in watch.stdout.splitlines()]
    progress = [(e["run"], e["data"]["done"]) for e in entries if e.get("name") == "progress"]
    # Run 1 emitted for steps 1 and 2, and for step 3 maybe (it crashed right after
    # emitting, before its call committed and before the feed's next write); run 2 read
    # steps 1 and 2 back and emitted only for the calls it ran.
    assert [p for p in progress if p[0] == 1] in ([(1, 1), (1, 2)], [(1, 1), (1, 2), (1, 3)])
    assert [p for p in progress if p[0] == 2] == [(2, 3), (2, 4)]
    plans = [e["run"] for e in entries if e.get("name") == "plan"]
    assert plans == [1, 2]  # the flow body runs again on every run, its emits too


def test_a_replay_shows_the_events_of_the_calls_it_reuses_marked_reused(tmp_path: Path) -> None:
    flow, source = start(tmp_path, STEP_SECONDS="0")
    assert flow.wait(30) == 0
    # step and step#3 are reused; step#2's output is replaced, so its events are not.
    replay = kitaru_cli(
        "executions", "replay", source, "--from", "step#4", "--override", "step#2=10",
        "--project", str(tmp_path), "--json",
    )  # fmt: skip
    assert replay.returncode == 0, replay
    exec_id = replay.json()["exec_id"]

    watch = kitaru_cli("executions", "watch", exec_id, "--json")
    assert watch.returncode == 0, watch
    entries = [json.loads(line) for line in watch.stdout.splitlines()][:-1]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    reused = [e for e in entries if e.get("reused")]
    assert [(e["run"], e["checkpoint"], e["data"]) for e in reused] == [
        (0, "step", {"done": 1}),
        (0, "step#3", {"done": 3}),
    ]
    assert entries[: len(reused)] == reused  # before the replay's own first run
    assert entries[len(reused)]["kind"] == "run_started"
    # The source's times: they happened there, when the source ran.
    source_feed = [
        json.loads(line)
        for line in kitaru_cli("executions", "watch", source, "--json").stdout.splitlines()
    ]
    times = {e["checkpoint"]: e["ts"] for e in source_feed if e.get("name") == "progress"}
    assert [e["ts"] for e in reused] == [times["step"], times["step#3"]]
    # What the replay ran emitted anew, in run 1, unmarked.
    fresh = [
        (e["run"], e["name"], e["data"])
        for e in entries
        if e["kind"] == "event" and not e.get("reused")
    ]
    assert fresh == [(1, "plan", {"steps": STEPS}), (1, "progress", {"done": 4})]

    text = kitaru_cli("executions", "watch", exec_id).stdout.splitlines()
    assert any(line.endswith('event progress in step {"done":1} (reused)') for line in text)

    # A replay of the replay reuses them again, through the same copy.
    again = kitaru_cli(
        "executions", "replay", exec_id, "--from", "step#4", "--project", str(tmp_path), "--json"
    )
    assert again.returncode == 0, again
    feed = kitaru_cli("executions", "watch", again.json()["exec_id"], "--json").stdout.splitlines()
    copied = [json.loads(line) for line in feed if '"reused":true' in line]
    assert [(e["checkpoint"], e["data"]) for e in copied] == [
        ("step", {"done": 1}),
        ("step#3", {"done": 3}),
    ]


def test_unknown_execution_is_exit_2() -> None:
    watch = kitaru_cli("executions", "watch", "kx_01a2493dcd6793d40ecb7c1b4c69")
    assert watch.returncode == 2 and "not found" in watch.stderr


@pytest.mark.parametrize("command", [["watch"], ["logs", "--follow"]])
def test_an_ended_execution_prints_its_feed_and_returns_at_once(
    tmp_path: Path, command: list[str]
) -> None:
    flow, exec_id = start(tmp_path, STEP_SECONDS="0")
    flow.wait(30)
    started = time.monotonic()
    done = kitaru_cli("executions", *command[:1], exec_id, *command[1:])
    assert done.returncode == 0 and time.monotonic() - started < 10


def test_fast_calls_are_compacted_and_watch_still_shows_each() -> None:
    from kitaru import checkpoint, flow
    from kitaru.journal import current_journal

    @checkpoint
    def tiny(i: int) -> int:
        return i

    @flow
    def loop() -> int:
        return sum(tiny(i) for i in range(300))

    handle = loop.run()
    feed = current_journal().events(handle.exec_id)
    compacted = [c["key"] for e in feed if e.kind == "calls_ended" for c in e.data["calls"]]
    single = [e.call_key for e in feed if e.kind == "call_ended"]
    assert sorted(compacted + single) == sorted(["tiny"] + [f"tiny#{i}" for i in range(2, 301)])
    assert len(feed) < 50  # not 600 rows
    watch = kitaru_cli("executions", "watch", handle.exec_id)
    assert watch.returncode == 0
    assert sum(" completed in " in line for line in watch.stdout.splitlines()) == 300


def test_a_call_slow_enough_to_watch_starts_before_its_output_and_ends_after() -> None:
    from kitaru import checkpoint, flow
    from kitaru.journal import current_journal

    @checkpoint
    def tiny(i: int) -> int:
        return i

    @checkpoint
    def slow() -> str:
        print("thinking")
        time.sleep(0.35)  # past a few writes of the feed
        print("done thinking")
        return "ok"

    @flow
    def mixed() -> str:
        for i in range(5):
            tiny(i)
        return slow()

    handle = mixed.run()
    feed = [e for e in current_journal().events(handle.exec_id) if e.call_key == "slow"]
    kinds = [e.kind for e in feed]
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended", kinds
    assert kinds.count("call_started") == 1 and kinds.count("call_ended") == 1
    text = "".join(e.data["text"] for e in feed if e.kind == "output")
    assert text == "thinking\ndone thinking\n"
    assert feed[-1].data["status"] == "completed"
