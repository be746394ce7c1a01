"""A failed flow's full traceback is kept with its run's output (kitaru/_tracebacks.py)
and shown by `executions get` (the `traceback` field) and `executions logs`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kitaru import KitaruClient, checkpoint, flow
from tests.conftest import kitaru_cli, run_python, write_script

FLOW = """
import os
from kitaru import checkpoint, flow

@checkpoint
def fetch(n: int) -> int:
    print("fetched", n)
    return n

def parse(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise RuntimeError(f"run {os.environ['RUN']}: cannot parse {text!r}") from exc

@flow
def pipeline(text: str) -> int:
    return fetch(1) + parse(text)

if __name__ == "__main__":
    print(pipeline.run("seven").exec_id)
"""


def test_the_traceback_of_a_failure_in_the_flow_body_and_its_cause(tmp_path: Path) -> None:
    script = write_script(tmp_path / "pipeline.py", FLOW)
    started = run_python(script, cwd=tmp_path, env={"RUN": "one", "KITARU_QUIET": "1"})
    assert started.returncode == 0 and started.stderr == "", started
    exec_id = started.stdout.strip().splitlines()[-1]

    view = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert view["status"] == "failed"
    assert view["error"].startswith("RuntimeError: run one: cannot parse 'seven' (at pipeline.py:")
    trace = view["traceback"]
    assert trace.startswith("Traceback (most recent call last):\n"), trace
    assert "ValueError: invalid literal for int() with base 10: 'seven'\n" in trace
    assert "The above exception was the direct cause of the following exception:" in trace
    assert ", in pipeline\n" in trace and ", in parse\n" in trace
    assert trace.endswith("RuntimeError: run one: cannot parse 'seven'\n"), trace

    logs = kitaru_cli("executions", "logs", exec_id)
    assert logs.returncode == 0, logs
    flow_part = logs.stdout.split("── flow (run 1) ──\n", 1)[1]
    assert flow_part == f"ERROR kitaru: execution {exec_id} failed in run 1\n" + trace

    # A resume that fails again shows its own run's traceback, not the first one's.
    resumed = kitaru_cli("executions", "resume", exec_id, env={"RUN": "two"})
    assert resumed.returncode == 1, resumed
    assert "RuntimeError: run two: cannot parse 'seven'" in resumed.stdout
    view = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert view["runs"] == 2
    assert view["traceback"].endswith("RuntimeError: run two: cannot parse 'seven'\n")
    assert "run one" not in view["traceback"]


def test_no_traceback_for_an_execution_that_did_not_fail(tmp_path: Path) -> None:
    script = write_script(tmp_path / "pipeline.py", FLOW.replace('"seven"', '"7"'))
    started = run_python(script, cwd=tmp_path, env={"RUN": "one"})
    exec_id = started.stdout.strip().splitlines()[-1]
    view = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert view["status"] == "completed" and view["traceback"] is None


def test_an_async_flow_traceback_starts_at_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_QUIET", "1")

    @checkpoint
    async def step(x: int) -> int:
        return 1 // x

    @flow
    async def divide(x: int) -> int:
        return await step(x)

    handle = divide.run(0)
    trace = KitaruClient().executions.get(handle.exec_id).traceback
    assert trace is not None
    frames = re.findall(r'^  File "(.*)", line \d+, in (\w+)$', trace, re.MULTILINE)
    assert frames[0] == (__file__, "divide"), trace  # no runtime or event loop frame above
    assert frames[-1] == (__file__, "step"), trace
    assert trace.endswith("ZeroDivisionError: integer division or modulo by zero\n")
