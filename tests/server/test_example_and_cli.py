"""The server example as its docstring tells users to run it, the OpenAPI document, and
`kitaru server` bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.conftest import REPO, kitaru_cli
from tests.server.conftest import Client
from tests.server_process import ServerProcess


def test_the_server_example_runs_through_the_server(
    server: ServerProcess, client: Client, write_token: str
) -> None:
    result = client.python(REPO / "examples" / "server_client.py", "kites")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    exec_id = lines[0].split()[1]
    assert lines[0] == f"execution {exec_id} is waiting"
    assert "outline    ran" in result.stdout and "write      ran" in result.stdout
    assert f"{server.url}/ui/executions/{exec_id}" in result.stdout
    done = client.cli_json("executions", "input", exec_id, "approve", "true")
    assert done["status"] == "completed" and done["result"].startswith("## what kites are")
    # Nothing was kept on the client's machine.
    assert not (client.home / "journal.db").exists()


def test_openapi_document_covers_the_api(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    result = kitaru_cli("server", "openapi", "--out", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    paths = document["paths"]
    for path in [
        "/api/v1/executions",
        "/api/v1/executions/{exec_id}",
        "/api/v1/executions/{exec_id}/logs",
        "/api/v1/executions/{exec_id}/resume",
        "/api/v1/executions/{exec_id}/cancel",
        "/api/v1/executions/{exec_id}/replay",
        "/api/v1/executions/{exec_id}/input",
        "/api/v1/executions/{exec_id}/checkpoints",
        "/api/v1/artifacts/{artifact_id}",
        "/api/v1/artifacts/{artifact_id}/download",
        "/api/v1/artifacts/diff",
        "/api/v1/waits",
        "/api/v1/executions/{exec_id}/waits/{key}/webhook",
        "/api/v1/hooks/waits/{exec_id}/{key}",
        "/api/v1/executions/{exec_id}/waits/{key}/answer",
        "/api/v1/records/executions/{exec_id}",
        "/api/v1/runner/executions/{exec_id}/lease",
        "/api/v1/runner/executions/{exec_id}/calls",
        "/api/v1/runner/executions/{exec_id}/finish",
        "/api/v1/stacks",
        "/api/v1/stacks/{name}",
        "/api/v1/stacks/{name}/activate",
        "/api/v1/flavors",
        "/api/v1/flavors/{name}",
        "/health",
    ]:
        assert path in paths, path
    assert set(paths["/api/v1/stacks"]) == {"get", "post"}
    assert set(paths["/api/v1/stacks/{name}"]) == {"get", "delete"}
    replay = paths["/api/v1/executions/{exec_id}/replay"]["post"]
    schema_ref = replay["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert body["required"] == ["from"]
    register = paths["/api/v1/stacks"]["post"]["requestBody"]["content"]["application/json"]
    stack_body = document["components"]["schemas"][register["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert stack_body["required"] == ["name", "orchestrator", "artifact_store"]
    assert "settings" in stack_body["properties"] and "replace" in stack_body["properties"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_server_start_bad_input_is_one_line(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    try:
        busy = kitaru_cli("server", "start", "--port", port, "--journal", journal)
    finally:
        taken.close()
    assert busy.returncode == 1 and "cannot listen on 127.0.0.1" in busy.stderr
    assert "Traceback" not in busy.stderr
    unreachable = kitaru_cli(
        "server", "start", "--port", "0", "--journal", "postgresql://kitaru@127.0.0.1:9/none"
    )
    assert unreachable.returncode == 1 and "127.0.0.1:9" in unreachable.stderr
    itself = kitaru_cli("server", "start", "--journal", "http://127.0.0.1:8080")
    assert itself.returncode == 2 and "is a server, not a journal" in itself.stderr
    tokens = kitaru_cli("server", "token", "list", "--journal", journal)
    assert tokens.returncode == 0 and "kitaru server token create" in tokens.stdout
    no_server = kitaru_cli("server", "webhook", "kx_1", "approve")
    assert no_server.returncode == 2 and "set KITARU_SERVER_URL" in no_server.stderr
    helptext = kitaru_cli("server", "start", "--help")
    assert "KITARU_SERVER_URL" in helptext.stdout and "--journal" in helptext.stdout
