"""`kitaru mcp serve --deployments`: deployed flows as MCP tools, driven by the official
MCP SDK's client over stdio, each call running the deployed image on the `docker`
orchestrator of the test services.

The module deploys the example as shipped (examples/deploy_agent: `support`, and
`refund`, which waits for a person) on a stack with the settings of
test_docker_deployments.py, so the image is the one that module pushed: found in the
registry, not built again."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import pytest

from tests.conftest import kitaru_cli, run_python
from tests.deployments._project import register_docker_stack, services_env, write_project

pytest.importorskip("mcp")

import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.mcp_http import McpHttp

# The first test deploys: on a registry without the example's image yet, that is a build.
pytestmark = pytest.mark.timeout(900)

TICKET = "my order is late"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = services_env()
    register_docker_stack(env, "mcp")
    project = write_project(tmp_path_factory.mktemp("deploy-agent"))
    for flow in ("support", "refund"):
        done = kitaru_cli(
            "deploy", f"{project}/agent.py:{flow}", "--stack", "mcp", "--json",
            cwd=project, env=env, timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done
    return {"env": env, "project": project}


def server(deployed: dict[str, Any]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "kitaru", "mcp", "serve", "--deployments", "--stdio"],
        cwd=str(deployed["project"]),
        env={**os.environ, **deployed["env"]},
    )


def outcome(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return dict(json.loads(result.content[0].text))


def approve(answer: bool) -> Any:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert params.message == "Refund 12.50 for a shipping ticket?"
        assert params.requested_schema["properties"]["value"]["type"] == "boolean"
        return types.ElicitResult(action="accept", content={"value": answer})

    return elicit


def test_a_deployment_tool_runs_the_deployed_image_and_its_wait_asks_the_client(
    deployed: dict[str, Any],
) -> None:
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def main() -> tuple[Any, Any]:
        async with Client(server(deployed), elicitation_callback=approve(True)) as c:
            listed = await c.list_tools()
            refunded = await c.call_tool(
                "refund", {"ticket": TICKET, "amount": 12.5}, progress_callback=on_progress
            )
            return listed, refunded

    listed, refunded = anyio.run(main)
    tools = {t.name: t for t in listed.tools}
    assert set(tools) >= {"support", "refund", "kitaru_list", "kitaru_answer", "kitaru_result"}
    # The input schema recorded at deploy time: types, defaults, which are required.
    schema = tools["support"].input_schema
    assert schema["required"] == ["ticket"]
    assert schema["properties"]["ticket"]["type"] == "string"
    assert schema["properties"]["customer"]["default"] == "there"
    assert tools["refund"].input_schema["properties"]["amount"]["type"] == "number"
    assert "once a person approves" in (tools["refund"].description or "")

    # The wait came back as a question; the answer ran the execution on, in a new
    # container of the same image.
    paid = outcome(refunded)
    assert paid["status"] == "completed", paid
    assert (paid["result"]["refunded"], paid["result"]["style"]) == (12.5, "brief")
    assert paid["result"]["host"].startswith("docker-")  # it ran in the deployed image
    assert progress[0] == f"execution {paid['exec_id']} started"
    assert any("classify completed" in p for p in progress), progress
    view = kitaru_cli("executions", "get", paid["exec_id"], "--json", env=deployed["env"]).json()
    assert view["deployment_version"] == 1 and view["runs"] == 2, view


def test_operator_tools_answer_cancel_and_get_results_of_deployments_only(
    deployed: dict[str, Any],
) -> None:
    env, project = deployed["env"], deployed["project"]
    args = json.dumps({"ticket": TICKET, "amount": 3})
    waiting = kitaru_cli(
        "deployments", "invoke", "refund", "--args", args, "--wait", "--timeout", "300", "--json",
        env=env, timeout=600,
    ).json()  # fmt: skip
    assert waiting["status"] == "waiting", waiting
    # Put in a queue no worker serves: it stays queued until cancelled.
    queued = kitaru_cli(
        "deployments", "invoke", "refund", "--args", args, "--queue", "nobody", "--json", env=env
    ).json()
    # The same flow run here from its code (not a deployment), waiting in the same journal:
    # answering it through a deployments server would run this machine's code.
    here = project / "run_here.py"
    here.write_text("from agent import refund\nprint(refund.run('late', 1.0).exec_id)\n")
    ran = run_python(here, cwd=project, env=env, timeout=120)
    assert ran.returncode == 0, ran
    foreign = ran.stdout.split()[-1]

    async def main() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with Client(server(deployed)) as c:
            for tool, call in {
                "foreign_answer": ("kitaru_answer", {"exec_id": foreign, "wait": "approve", "value": True}),
                "foreign_result": ("kitaru_result", {"exec_id": foreign}),
                "foreign_cancel": ("kitaru_cancel", {"exec_id": foreign}),
                "get": ("kitaru_get", {"exec_id": waiting["exec_id"]}),
                "answer": ("kitaru_answer", {"exec_id": waiting["exec_id"], "wait": "approve", "value": False}),
                "result": ("kitaru_result", {"exec_id": waiting["exec_id"]}),
                "cancel": ("kitaru_cancel", {"exec_id": queued["exec_id"]}),
                "list": ("kitaru_list", {"flow": "refund"}),
            }.items():  # fmt: skip
                got[tool] = await c.call_tool(*call)
        return got

    got = anyio.run(main)
    for tool in ("foreign_answer", "foreign_result", "foreign_cancel"):
        assert got[tool].is_error, tool
        assert "of the flows this server serves (refund (deployed)" in got[tool].content[0].text
    foreign_now = kitaru_cli("executions", "get", foreign, "--json", env=env).json()
    assert foreign_now["status"] == "waiting" and foreign_now["runs"] == 1, foreign_now

    assert outcome(got["get"])["status"] == "waiting"
    answered = outcome(got["answer"])
    assert answered["status"] == "completed" and answered["result"]["refunded"] == 0.0
    assert answered["result"]["host"].startswith("docker-")
    assert outcome(got["result"]) == answered
    assert outcome(got["cancel"]) == {"exec_id": queued["exec_id"], "status": "cancelled"}
    listed = [e["exec_id"] for e in outcome(got["list"])["executions"]]
    assert waiting["exec_id"] in listed and foreign not in listed


def test_over_http_a_read_token_lists_but_cannot_invoke_a_deployment(
    deployed: dict[str, Any],
) -> None:

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from kitaru.journal import open_journal
    from kitaru.server import _tokens

    env = deployed["env"]
    journal = open_journal(env["KITARU_JOURNAL_URL"])
    reader = _tokens.create(journal, scope="read")[0]
    journal.close()
    server = McpHttp(["--deployments"], deployed["project"], {**os.environ, **env})
    url = server.url
    try:
        before = kitaru_cli("executions", "list", "--flow", "refund", "--json", env=env).json()

        async def as_reader() -> tuple[Any, Any]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {reader}"}, timeout=60)
            async with Client(streamable_http_client(url, http_client=http)) as c:
                listed = await c.call_tool("kitaru_list", {})
                started = await c.call_tool("refund", {"ticket": TICKET, "amount": 1})
                return listed, started

        listed, started = anyio.run(as_reader)
    finally:
        server.kill()
    assert not listed.is_error
    assert started.is_error and "needs a write token" in started.content[0].text
    after = kitaru_cli("executions", "list", "--flow", "refund", "--json", env=env).json()
    assert len(after) == len(before)  # nothing was invoked
