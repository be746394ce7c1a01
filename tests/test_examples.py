"""Every example runs, as the README tells users to run it."""

from __future__ import annotations

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
