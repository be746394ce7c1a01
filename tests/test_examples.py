"""Every example runs, as the README tells users to run it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, kitaru_cli, run_python


def test_make_demo_script_runs_end_to_end(tmp_path: Path) -> None:
    result = run_python(
        REPO / "examples" / "demo.py", env={"KITARU_DEMO_HOME": str(tmp_path)}, timeout=300
    )
    assert result.returncode == 0, result
    out = result.stdout
    assert "process killed during 'synthesize'" in out
    assert "crashed" in out
    assert "from journal (run 1)" in out
    assert out.count("status     completed") >= 3
    assert "Where the data lives" in out and str(tmp_path / "journal.db") in out


def test_research_agent_crash_at_each_search_resumes(tmp_path: Path) -> None:
    crashed = run_python(
        REPO / "examples" / "research_agent.py", "kites", env={"KITARU_CRASH_AT": "search:blogs"}
    )
    assert crashed.returncode == 137
    [execution] = kitaru_cli("executions", "list", "--json").json()
    resumed = kitaru_cli("executions", "resume", execution["exec_id"], "--json").json()
    assert resumed["status"] == "completed"
    origins = {c["key"]: c["origin"] for c in resumed["checkpoints"]}
    assert origins == {
        "plan": "journal",
        "search": "journal",
        "search#2": "ran",
        "search#3": "ran",
        "synthesize": "ran",
        "write_report": "ran",
    }
    assert resumed["checkpoints"][0]["metadata"]["model"] == "offline-demo"


def test_parallel_research_crash_in_a_fan_out_resumes_each_call_with_its_own_output() -> None:
    crashed = run_python(
        REPO / "examples" / "parallel_research.py", "kites", env={"KITARU_CRASH_AT": "q5"}
    )
    assert crashed.returncode == 137, crashed
    [execution] = kitaru_cli("executions", "list", "--json").json()
    resumed = kitaru_cli("executions", "resume", execution["exec_id"], "--json").json()
    assert resumed["status"] == "completed"
    searches = [c for c in resumed["checkpoints"] if c["name"] == "search"]
    assert sorted(c["key"] for c in searches) == sorted(f"{i}/search" for i in range(1, 14))
    assert "journal" in {c["origin"] for c in searches}  # finished searches were read back
    assert resumed["result"].startswith("kites: 3 sources about q")
    # Groups are per run: the searches that finished before the crash ran 4 at a time.
    first = resumed["parallel_groups"][0]
    assert first["wall_s"] < first["sum_s"]


def test_worker_queue_example_runs_every_submitted_execution_on_its_workers(
    tmp_path: Path,
) -> None:
    result = run_python(
        REPO / "examples" / "worker_queue.py",
        cwd=tmp_path,
        env={"KITARU_HOME": str(tmp_path / "home"), "KITARU_WORKER_DEMO_PAUSE": "0.05"},
        timeout=300,
    )
    assert result.returncode == 0, result
    out = result.stdout
    assert "submitted 12 executions to queue 'reviews'" in out
    assert "concurrency  3" in out
    assert out.count(" completed ") == 12 and "it ships tomorrow" in out
    counts = json.loads(out.split("executions per worker: ", 1)[1].splitlines()[0])
    assert set(counts) <= {"worker-1", "worker-2"} and sum(counts.values()) == 12


def test_nightly_digest_example_fires_its_schedule_caches_and_sleeps() -> None:
    result = run_python(REPO / "examples" / "nightly_digest.py", timeout=180)
    assert result.returncode == 0, result
    history = kitaru_cli("schedules", "history", "digest", "--json").json()
    assert len(history) >= 2
    assert {h["status"] for h in history} == {"started"}
    assert {h["execution_status"] for h in history} == {"completed"}
    first = history[-1]["exec_id"]
    assert f"cache ({first})" in result.stdout
    shown = kitaru_cli("executions", "get", history[0]["exec_id"], "--json").json()
    assert shown["schedule"]["name"] == "digest"
    assert [w["status"] for w in shown["waits"]] == ["woke"]
