"""The docs run: every fenced Python block marked `<!-- runnable -->` (the line before the
fence; GitHub renders nothing for it) in README.md and docs/*.md runs on a fresh home, and
every command of the README's "Command line" section that needs no server or cloud exits
0 on a real execution. Blocks that need a server, a cloud or a model stay unmarked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, Proc, kitaru_cli, run_python

MARKER = "<!-- runnable -->"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def runnable_blocks() -> list[tuple[str, int, str]]:
    """(file, line of the fence, code) of every marked Python block."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for i, line in enumerate(lines[:-1]):
            if line.strip() == MARKER:
                assert lines[i + 1].startswith("```python"), f"{doc.name}:{i + 1}: {MARKER} "
                "must stand on the line before a ```python fence"
                end = lines.index("```", i + 2)
                found.append((doc.name, i + 2, "\n".join(lines[i + 2 : end]) + "\n"))
    return found


BLOCKS = runnable_blocks()


def test_the_readme_quick_start_is_marked() -> None:
    assert any(
        name == "README.md" and "In five minutes" in _heading(line) for name, line, _ in BLOCKS
    )


def _heading(line: int) -> str:
    before = (REPO / "README.md").read_text().splitlines()[:line]
    return next(h for h in reversed(before) if h.startswith("## "))


@pytest.mark.parametrize(("doc", "line", "code"), BLOCKS, ids=[f"{d}:{n}" for d, n, _ in BLOCKS])
def test_runnable_block(doc: str, line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(code)
    ran = run_python(script, cwd=tmp_path, env={"KITARU_HOME": str(tmp_path / "home")})
    assert ran.returncode == 0, f"{doc}:{line} failed: {ran}"


def command_lines() -> list[str]:
    """The commands the README's "Command line" section lists, one per line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    return [line.split("  ")[0].strip() for line in block.splitlines() if line.strip()]


# README commands that cannot run offline on a fresh home, and why.
NEEDS_MORE = {
    "kitaru executions logs <id> --orchestrator": "a container orchestrator",
    "kitaru stack preview|provision": "Pulumi and a cloud account",
    "kitaru stack destroy": "Pulumi and a cloud account",
    "kitaru deploy ": "a Docker engine and a registry",
    "kitaru deployments tag": "a deployed version (Docker)",
    "kitaru deployments invoke": "a deployed version (Docker)",
    "kitaru server ": "the server extra and a running server",
    "kitaru mcp serve": "a long-running server for an MCP client (tests/test_mcp.py drives it)",
}


def test_every_offline_command_of_the_readme_runs(tmp_path: Path) -> None:
    home = {"KITARU_HOME": str(tmp_path / "home")}
    quick_start = next(code for name, _, code in BLOCKS if name == "README.md")
    script = tmp_path / "writer.py"
    script.write_text(quick_start)
    started = run_python(script, cwd=tmp_path, env=home)
    assert started.returncode == 0, started
    exec_id, status = started.stdout.split()[:2]
    assert status == "waiting"

    ran: list[str] = []

    def cli(*args: str) -> Proc:
        done = kitaru_cli(*args, cwd=tmp_path, env=home)
        assert done.returncode == 0, f"kitaru {' '.join(args)}: {done}"
        ran.append(" ".join(args[:2]))
        return done

    cli("doctor")
    cli("doctor", "--json")
    cli("executions", "waits")
    cli("executions", "waits", "--json")
    cli("executions", "input", exec_id, "approve", "true")
    cli("executions", "list")
    assert cli("executions", "list", "--flow", "writer", "--status", "completed", "--json").json()
    assert cli("executions", "get", exec_id, "--json").json()["status"] == "completed"
    cli("executions", "get", exec_id)
    cli("executions", "logs", exec_id)
    cli("executions", "logs", exec_id, "--checkpoint", "draft")
    cli("executions", "logs", exec_id, "--follow")
    cli("executions", "watch", exec_id)
    replay = cli(
        "executions",
        "replay",
        exec_id,
        "--from",
        "draft",
        "--override",
        'research="new"',
        "--json",
    ).json()["exec_id"]
    cli("executions", "resume", replay)
    cli("executions", "cancel", replay)
    cli("executions", "sweep")
    artifacts = cli("artifacts", "list", exec_id, "--json").json()
    cli("artifacts", "list", exec_id)
    cli("artifacts", "get", artifacts[0]["artifact_id"], "--out", str(tmp_path / "out"))
    cli("artifacts", "get", artifacts[0]["artifact_id"], "--json")
    cli("artifacts", "diff", exec_id, replay)
    cli("artifacts", "diff", exec_id, replay, "--json")
    bundle = str(tmp_path / "run.kitaru")
    cli("executions", "export", replay, "-o", bundle, "--with-lineage")
    elsewhere = {"KITARU_HOME": str(tmp_path / "elsewhere")}
    imported = kitaru_cli("executions", "import", bundle, "--json", cwd=tmp_path, env=elsewhere)
    assert [d["outcome"] for d in imported.json()] == ["imported", "imported"], imported
    ran.append("executions import")
    cli("stack", "list")
    cli("stack", "flavors")
    cli("stack", "flavors", "local")
    store = (tmp_path / "store").as_uri()
    cli("stack", "register", "here", "-o", "local", "-a", store)
    cli("stack", "use", "here")
    cli("stack", "show", "here")
    cli("stack", "use", "local")
    cli("stack", "delete", "here")
    cli("model", "register", "fast", "openai/gpt-4o-mini", "--api-key-env", "OPENAI_API_KEY")
    cli("model", "list")
    cli("model", "list", "--json")
    cli("model", "remove", "fast")
    cli("deployments", "list")
    cli("deployments", "history", "writer")
    cli("queues", "set", "docs", "--concurrency", "2")
    cli("queues", "list")
    assert cli("queues", "show", "docs", "--json").json()["concurrency"] == 2
    cli("worker", "--flows", str(script), "--queue", "docs", "--until-empty")
    assert replay in cli("gc", "--older-than", "0s", "--dry-run", "--json").json()["deleted"]
    cli("executions", "delete", replay)
    cli("gc", "--older-than", "30d")

    for line in command_lines():
        if any(line.startswith(prefix) for prefix in NEEDS_MORE):
            continue
        noun, verbs = [*line.split(), ""][1:3]
        wanted = (
            {noun} if verbs[:1] in ("", "[", "<") else {f"{noun} {v}" for v in verbs.split("|")}
        )
        assert wanted <= set(ran), f"the README shows `{line}` but the test never runs it"


def test_json_of_a_listing_parses(tmp_path: Path) -> None:
    listed = kitaru_cli("stack", "list", "--json", env={"KITARU_HOME": str(tmp_path / "h")})
    assert listed.returncode == 0, listed
    assert any(s["name"] == "local" for s in json.loads(listed.stdout))


def test_markers_only_stand_before_python_fences() -> None:
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if MARKER in line:
                assert line.strip() == MARKER, f"{doc.name}:{n}: put {MARKER} on a line of its own"
