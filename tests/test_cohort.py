"""Replay many: `kitaru executions replay --flow F --from KEY` replays a cohort of past
executions with the current code and prints what changed, per execution and checkpoint."""

from __future__ import annotations

from pathlib import Path

from conftest import kitaru_cli, run_python, write_script

WRITER = """
import os, sys
from pathlib import Path
from kitaru import checkpoint, flow

RAN = Path(os.environ["RAN_FILE"])

def ran(name):
    with RAN.open("a") as f:
        f.write(name + "\\n")

@checkpoint
def research(topic: str) -> str:
    ran("research")
    return f"notes on {topic}"

@checkpoint
def draft(notes: str) -> str:
    ran("draft")
    if os.environ.get("REFUSE") == notes[-1]:
        raise RuntimeError("the model refused")
    return os.environ.get("STYLE", "plain") + ": " + notes

@checkpoint
def title(topic: str) -> str:
    ran("title")
    return topic.upper()

@flow
def writer(topic: str) -> dict:
    return {"draft": draft(research(topic)), "title": title(topic)}

if __name__ == "__main__":
    for topic in sys.argv[1:]:
        print(writer.run(topic).exec_id)
"""


def _cohort(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    ran = tmp_path / "ran.txt"
    env = {"KITARU_HOME": str(tmp_path / "home"), "RAN_FILE": str(ran)}
    script = write_script(tmp_path / "writer.py", WRITER)
    done = run_python(script, "a", "b", "c", env=env, cwd=tmp_path)
    assert done.returncode == 0, done
    ran.write_text("")
    return done.stdout.split(), env, ran


def test_a_changed_step_shows_per_execution_and_checkpoint(tmp_path: Path) -> None:
    ids, env, ran = _cohort(tmp_path)
    changed = {**env, "STYLE": "fancy", "REFUSE": "b"}
    done = kitaru_cli(
        "executions", "replay", "--flow", "writer", "--from", "draft", "--json",
        env=changed, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done  # one replay failed
    data = done.json()
    assert data["checkpoints"] == ["research", "draft", "title"]
    rows = {row["source"]: row for row in data["executions"]}
    assert set(rows) == set(ids)
    a, b, c = (rows[i] for i in ids)
    for row in (a, c):
        assert row["status"] == "completed"
        assert row["checkpoints"] == {"research": "same", "draft": "changed", "title": "same"}
        assert row["result"] == "changed"
    assert b["status"] == "failed" and b["result"] == "failed"
    assert b["checkpoints"] == {"research": "same", "draft": "failed", "title": "missing"}
    assert data["summary"] == {"replayed": 3, "same": 0, "changed": 2, "failed": 1, "other": 0}
    # Above --from nothing ran again: research was reused in every replay.
    assert sorted(ran.read_text().split()) == ["draft"] * 3 + ["title"] * 2

    # The replays are not a cohort of their own next time.
    again = kitaru_cli(
        "executions", "replay", "--flow", "writer", "--from", "title", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again
    assert {row["source"] for row in again.json()["executions"]} == set(ids)


def test_unchanged_code_is_all_same_and_ci_can_fail_on_change(tmp_path: Path) -> None:
    _ids, env, _ran = _cohort(tmp_path)
    same = kitaru_cli(
        "executions", "replay", "--flow", "writer", "--from", "draft", "--concurrency", "2",
        "--fail-on-change", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert same.returncode == 0, same
    assert "3 replayed: 3 all same, 0 changed, 0 failed" in same.stdout
    assert "RESEARCH" in same.stdout and "= same" in same.stdout

    styled = {**env, "STYLE": "fancy"}
    changed = kitaru_cli(
        "executions", "replay", "--flow", "writer", "--from", "draft", "--limit", "1",
        "--fail-on-change", env=styled, cwd=tmp_path,
    )  # fmt: skip
    assert changed.returncode == 1, changed
    assert "1 replayed: 0 all same, 1 changed, 0 failed" in changed.stdout


def test_bad_cohort_inputs_say_what_to_do(tmp_path: Path) -> None:
    ids, env, ran = _cohort(tmp_path)
    cases = {
        ("--from", "draft"): "--flow F to replay many",
        ("--flow", "nope", "--from", "draft"): "no completed execution of flow 'nope'",
        ("--flow", "writer", "--from", "draft", "--since", "soon"): "30d, 12h, 90m",
        ("--flow", "writer", "--from", "draft", "--limit", "0"): "--limit 0",
        ("--flow", "writer", "--from", "draft", "--concurrency", "0"): "--concurrency 0",
        (ids[0], "--flow", "writer", "--from", "draft"): "give no execution id",
    }
    for args, message in cases.items():
        done = kitaru_cli("executions", "replay", *args, env=env, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (args, done)
    assert ran.read_text() == ""  # nothing ran


SLOW_SCRIPT = """
import time
from kitaru import flow

@flow
def slow(x: int) -> int:
    return helper(x)

time.sleep(0.5)  # a script whose top level takes a while after the flow is defined

def helper(x):
    return x + 1
"""

LOAD_TWICE = """
import sys, threading
from kitaru import _loader
from kitaru.journal import ExecutionRecord

record = ExecutionRecord(
    exec_id="kx_1", flow="slow", status="completed", created_at=0, updated_at=0,
    flow_ref="__main__:slow", flow_file=sys.argv[1],
)
got = []
threads = [
    threading.Thread(target=lambda: got.append(_loader.load_flow(record))) for _ in range(2)
]
for t in threads:
    t.start()
for t in threads:
    t.join()
module = sys.modules["__kitaru_main__"]
print(len(got), got[0] is got[1], hasattr(module, "helper"))
"""


def test_two_threads_loading_one_script_both_get_it_whole(tmp_path: Path) -> None:
    # Replays side by side (--concurrency) load the flow's script in threads: the second
    # must not see the module, or the flow, before the script's top level has run.
    script = write_script(tmp_path / "slow.py", SLOW_SCRIPT)
    loader = write_script(tmp_path / "load_twice.py", LOAD_TWICE)
    done = run_python(loader, str(script), env={"KITARU_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done
    assert done.stdout.split() == ["2", "True", "True"]


TEN_STEPS = """
import sys
from kitaru import checkpoint, flow

def make(i):
    @checkpoint(name=f"s{i}")
    def step(x: int) -> int:
        return x + 1
    return step

STEPS = [make(i) for i in range(10)]

@flow
def ten(x: int) -> int:
    for step in STEPS:
        x = step(x)
    return x

if __name__ == "__main__":
    for i in range(int(sys.argv[1])):
        ten.run(i)
"""


def test_five_hundred_executions_replay_from_the_middle_and_print_the_matrix(
    tmp_path: Path,
) -> None:
    env = {"KITARU_HOME": str(tmp_path / "home"), "KITARU_QUIET": "1"}
    script = write_script(tmp_path / "ten.py", TEN_STEPS)
    made = run_python(script, "500", env=env, cwd=tmp_path, timeout=300)
    assert made.returncode == 0, made
    done = kitaru_cli(
        "executions", "replay", "--flow", "ten", "--from", "s5", "--limit", "500",
        env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["SOURCE", "REPLAY", *(f"S{i}" for i in range(10)), "RESULT"]
    rows = [line for line in lines[1:] if line.startswith("kx_")]
    assert len(rows) == 500
    assert all(row.split()[2:] == ["="] * 10 + ["same"] for row in rows)
    assert "500 replayed: 500 all same, 0 changed, 0 failed" in done.stdout


def test_sources_are_found_behind_many_earlier_cohorts(tmp_path: Path) -> None:
    env = {"KITARU_HOME": str(tmp_path / "home"), "KITARU_QUIET": "1"}
    script = write_script(tmp_path / "ten.py", TEN_STEPS)
    assert run_python(script, "110", env=env, cwd=tmp_path).returncode == 0
    for limit in ("110", "5"):
        done = kitaru_cli(
            "executions", "replay", "--flow", "ten", "--from", "s9", "--limit", limit,
            "--json", env=env, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done
        assert done.json()["summary"]["replayed"] == int(limit)
