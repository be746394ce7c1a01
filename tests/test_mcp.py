"""`kitaru mcp serve`: flows as MCP tools, driven by the official MCP SDK's client over
stdio and over streamable HTTP, against real server processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import write_script
from pydantic import BaseModel

pytest.importorskip("mcp")

import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_http import McpHttp

AGENTS = """
import os
from pathlib import Path
import kitaru
from kitaru import checkpoint, flow

RAN = Path(os.environ["RAN_FILE"])
GATE = Path(os.environ["GATE_FILE"])

def ran(what):
    with RAN.open("a") as f:
        f.write(what + "\\n")

@checkpoint
def research(topic: str) -> str:
    ran("research")
    return f"notes on {topic}"

@checkpoint
def publish(notes: str, approved: bool) -> str:
    ran("publish")
    return ("published: " if approved else "held: ") + notes

@flow
def review(topic: str) -> str:
    \"\"\"Research a topic and publish it once a person approves.\"\"\"
    notes = research(topic)
    print("printed by the flow: must not reach the protocol stream")
    approved = kitaru.wait(name="approve", question=f"Publish the notes on {topic}?", schema=bool)
    return publish(notes, approved)

@checkpoint
def slow_step(i: int) -> int:
    ran(f"slow_step {i}")
    while i == 2 and not GATE.exists():
        import time; time.sleep(0.05)
    return i * 10

@flow
def long_job(n: int) -> int:
    return sum(slow_step(i) for i in range(1, n + 1))

@flow
def add(a: int, b: int = 2) -> int:
    return a + b

@flow
def odd_names(a: int, /, queue: str, ctx: int = 1) -> str:
    return f"{a} {queue} {ctx}"
"""

OTHER = """
import kitaru
from kitaru import flow

@flow
def admin_task() -> str:
    kitaru.wait(name="go", schema=bool)
    open("PWNED", "w").write("ran")
    return "done"

if __name__ == "__main__":
    print(admin_task.run().exec_id)
"""


class Project:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "project"
        write_script(self.dir / "agents.py", AGENTS)
        self.ran = tmp_path / "ran.txt"
        self.gate = tmp_path / "gate"
        self.env = {
            **os.environ,
            "KITARU_HOME": str(tmp_path / "home"),
            "RAN_FILE": str(self.ran),
            "GATE_FILE": str(self.gate),
        }

    def ran_lines(self) -> list[str]:
        return self.ran.read_text().splitlines() if self.ran.exists() else []

    def stdio(self) -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "kitaru", "mcp", "serve", "--flows", "agents.py", "--stdio"],
            cwd=str(self.dir),
            env=self.env,
        )


def approve(answer: bool) -> Any:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert params.message == "Publish the notes on durable agents?"
        assert params.requested_schema["properties"]["value"]["type"] == "boolean"
        return types.ElicitResult(action="accept", content={"value": answer})

    return elicit


def outcome(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return dict(json.loads(result.content[0].text))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_stdio_tools_run_flows_and_a_wait_asks_the_client(tmp_path: Path, mode: str) -> None:
    """`auto` speaks the current protocol (the wait comes back as `input_required` and
    the client retries with the answer); `legacy` is asked mid-call (elicitation)."""
    project = Project(tmp_path)
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def main() -> tuple[Any, Any, Any]:
        async with Client(project.stdio(), elicitation_callback=approve(True), mode=mode) as c:
            listed = await c.list_tools()
            added = await c.call_tool("add", {"a": 40})
            reviewed = await c.call_tool(
                "review", {"topic": "durable agents"}, progress_callback=on_progress
            )
            return listed, added, reviewed

    listed, added, reviewed = anyio.run(main)
    tools = {t.name: t for t in listed.tools}
    assert set(tools) >= {"review", "add", "kitaru_list", "kitaru_result", "kitaru_answer"}
    assert tools["add"].input_schema["required"] == ["a"]
    assert tools["add"].input_schema["properties"]["b"]["default"] == 2
    assert "once a person approves" in (tools["review"].description or "")
    assert outcome(added)["result"] == 42

    done = outcome(reviewed)
    assert done["status"] == "completed"
    assert done["result"] == "published: notes on durable agents"
    assert progress[0] == f"execution {done['exec_id']} started"
    assert any("research completed" in p for p in progress)
    assert project.ran_lines() == ["research", "publish"]  # nothing ran twice


class HttpServer(McpHttp):
    def __init__(self, project: Project) -> None:
        super().__init__(["--flows", "agents.py"], project.dir, project.env)

    def client(self, token: str, **kwargs: Any) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return Client(streamable_http_client(self.url, http_client=http), **kwargs)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def tokens(project: Project) -> dict[str, str]:
    from kitaru.journal import open_journal
    from kitaru.server import _tokens

    journal = open_journal(f"sqlite:///{Path(project.env['KITARU_HOME']) / 'journal.db'}")
    made = {scope: _tokens.create(journal, scope=scope)[0] for scope in ("read", "write")}
    journal.close()
    return made


@pytest.fixture
def http(project: Project, tokens: dict[str, str]) -> Iterator[HttpServer]:
    server = HttpServer(project)
    yield server
    server.kill()


def test_http_needs_a_token_and_a_read_token_cannot_run(
    project: Project, tokens: dict[str, str], http: HttpServer
) -> None:
    for headers in ({}, {"Authorization": "Bearer kt_forged_token"}):
        refused = httpx2.post(http.url, headers=headers, json={}, timeout=10)
        assert refused.status_code == 401 and "Kitaru API token" in refused.text

    async def as_reader() -> tuple[Any, Any]:
        async with http.client(tokens["read"]) as c:
            listed = await c.call_tool("kitaru_list", {})
            started = await c.call_tool("add", {"a": 1})
            return listed, started

    listed, started = anyio.run(as_reader)
    assert not listed.is_error
    assert started.is_error and "needs a write token" in started.content[0].text
    assert project.ran_lines() == []

    async def as_writer() -> Any:
        async with http.client(tokens["write"], elicitation_callback=approve(False)) as c:
            return await c.call_tool("review", {"topic": "durable agents"})

    done = outcome(anyio.run(as_writer))
    assert done["result"] == "held: notes on durable agents"


def test_a_server_killed_mid_run_is_resumed_and_the_client_gets_its_result(
    project: Project, tokens: dict[str, str]
) -> None:
    first = HttpServer(project)
    seen: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async def start_and_lose() -> None:
        async with first.client(tokens["write"]) as c:
            with anyio.move_on_after(60):
                async with anyio.create_task_group() as tg:

                    async def call() -> None:
                        try:
                            await c.call_tool("long_job", {"n": 3}, progress_callback=on_progress)
                        except Exception:
                            pass  # the server died under the call

                    tg.start_soon(call)
                    while not any("slow_step completed" in m for m in seen):
                        await anyio.sleep(0.05)
                    while project.ran_lines()[-1:] != ["slow_step 2"]:
                        await anyio.sleep(0.05)
                    first.kill()
                    tg.cancel_scope.cancel()

    try:
        anyio.run(start_and_lose)
    finally:
        first.kill()
    exec_id = seen[0].split()[1]
    assert project.ran_lines() == ["slow_step 1", "slow_step 2"]

    project.gate.touch()
    second = HttpServer(project)
    try:

        async def collect() -> Any:
            async with second.client(tokens["write"]) as c:
                return await c.call_tool("kitaru_result", {"exec_id": exec_id})

        done = outcome(anyio.run(collect))
    finally:
        second.kill()
    assert done == {"exec_id": exec_id, "status": "completed", "result": 60}
    # The step committed before the kill was read back, not run again.
    assert project.ran_lines() == ["slow_step 1", "slow_step 2", "slow_step 2", "slow_step 3"]


def test_tools_reach_only_the_served_flows_and_say_kitaru_errors(project: Project) -> None:
    """An execution of a flow this server does not serve (another script's, waiting in
    the same journal) is out of the tools' reach: answering it would run that script."""
    other = write_script(project.dir / "other.py", OTHER)
    started = subprocess.run(
        [sys.executable, str(other)], cwd=project.dir, env=project.env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    foreign = started.stdout.split()[-1]

    async def main() -> dict[str, Any]:
        async with Client(project.stdio()) as c:
            got = {}
            for tool, args in {
                "kitaru_answer": {"exec_id": foreign, "wait": "go", "value": True},
                "kitaru_result": {"exec_id": foreign},
                "kitaru_get": {"exec_id": foreign},
                "kitaru_replay": {"exec_id": foreign, "from_checkpoint": "x"},
                "kitaru_cancel": {"exec_id": foreign},
            }.items():
                got[tool] = await c.call_tool(tool, args)
            got["odd"] = await c.call_tool("odd_names", {"a": 1, "queue": "q", "ctx": 3})
            added = outcome(await c.call_tool("add", {"a": 1}))
            got["bad_wait"] = await c.call_tool(
                "kitaru_answer", {"exec_id": added["exec_id"], "wait": "nope", "value": 1}
            )
            got["list"] = await c.call_tool("kitaru_list", {})
            return got

    got = anyio.run(main)
    for tool in ("kitaru_answer", "kitaru_result", "kitaru_get", "kitaru_replay", "kitaru_cancel"):
        assert got[tool].is_error, tool
        assert "of the flows this server serves" in got[tool].content[0].text, tool
    assert not (project.dir / "PWNED").exists()
    listed = outcome(got["list"])["executions"]
    assert sorted(e["flow"] for e in listed) == ["add", "odd_names"], listed
    assert foreign not in json.dumps(listed)
    assert outcome(got["odd"])["result"] == "1 q 3", got["odd"]
    assert got["bad_wait"].is_error and "nope" in got["bad_wait"].content[0].text


class Order(BaseModel):
    item: str
    quantity: int = 1


def _refund(
    ticket: str, order: Order, amount: float = 2.5, *notes: str, more: list[Order] | None = None
) -> None: ...


def test_a_deployment_tool_schema_is_the_recorded_one_and_old_records_still_serve() -> None:
    """The schema a deploy records (pydantic's, with defaults and models), and what a
    version deployed before schemas were recorded still gives: its JSON types."""
    from dataclasses import replace

    from kitaru._mcp._deployments import input_schema
    from kitaru.deployments import signature_of
    from kitaru.journal import DeploymentRecord

    record = DeploymentRecord(
        "refund", 1, "img", "d", "c", "l", "s", "1", signature_of(_refund), "m:f", "f.py", ".",
        "/p", "box", "docker", "docker", False, "me", 0.0,
    )  # fmt: skip
    schema = input_schema(record)
    assert schema["required"] == ["ticket", "order"]
    assert set(schema["properties"]) == {"ticket", "order", "amount", "more"}
    assert schema["properties"]["amount"] == {"type": "number", "title": "Amount", "default": 2.5}
    assert schema["properties"]["order"]["required"] == ["item"]
    # A model inside another type is a reference into the tool schema's own $defs.
    assert schema["properties"]["more"]["anyOf"][0]["items"] == {"$ref": "#/$defs/Order"}
    assert schema["$defs"]["Order"]["required"] == ["item"]

    old = replace(
        record, signature=[{k: v for k, v in p.items() if k != "schema"} for p in record.signature]
    )
    assert input_schema(old)["properties"] == {
        "ticket": {"type": "string", "title": "Ticket"},
        "order": {"title": "Order"},
        "amount": {"type": "number", "title": "Amount"},
        "more": {"title": "More"},
    }


def test_serve_says_what_to_give_when_there_is_nothing_to_serve(tmp_path: Path) -> None:
    from conftest import kitaru_cli

    env = {"KITARU_HOME": str(tmp_path / "home")}
    nothing = kitaru_cli("mcp", "serve", "--stdio", env=env)
    assert nothing.returncode == 2
    assert "nothing to serve: give --flows MODULE" in nothing.stderr
    tag_alone = kitaru_cli("mcp", "serve", "--flows", "x.py", "--tag", "canary", "--stdio", env=env)
    assert tag_alone.returncode == 2 and "add --deployments" in tag_alone.stderr
    only_a_tag = kitaru_cli("mcp", "serve", "--tag", "canary", "--stdio", env=env)
    assert only_a_tag.returncode == 2 and "add --deployments" in only_a_tag.stderr
    missing = kitaru_cli("mcp", "serve", "--flows", "no_such_module", "--stdio", env=env)
    assert missing.returncode == 2
    assert "cannot import no_such_module" in missing.stderr and "worker" not in missing.stderr
    undeployed = kitaru_cli("mcp", "serve", "--deployments", "--stdio", env=env)
    assert undeployed.returncode == 2
    assert "no flow has a deployment tagged 'default'" in undeployed.stderr
    assert "kitaru deploy path/to/module.py:flow" in undeployed.stderr
    # A port that cannot be is said first, before the journal is read.
    bad_port = kitaru_cli("mcp", "serve", "--deployments", "--http", "-5", env=env)
    assert bad_port.returncode == 2 and "-5 is not in the range 0<=x<=65535" in bad_port.stderr


def test_serve_on_a_taken_port_says_so_and_how_to_pick_another(project: Project) -> None:
    import socket

    from conftest import kitaru_cli

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        refused = kitaru_cli(
            "mcp", "serve", "--flows", "agents.py", "--http", port, env=project.env,
            cwd=project.dir,
        )  # fmt: skip
    assert refused.returncode == 1, refused
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert "--http PORT (0 takes a free one)" in refused.stderr
