"""The stacks and flavors routers of a real server: what they answer is what `kitaru stack
... --json` prints, a stack registered through them is the one the CLI sees, and every
refusal says why and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli, write_script
from tests.server.conftest import Client
from tests.server_process import ServerProcess

WAITING = """
import json
import kitaru
from kitaru import flow


@flow
def approval() -> bool:
    return kitaru.wait("approve", schema=bool, question="Ship it?")


if __name__ == "__main__":
    handle = approval.run()
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


@pytest.fixture
def client(server: ServerProcess, admin_token: str, tmp_path: Path) -> Client:
    """Stacks are an admin's to change: this module's client holds an admin token."""
    return Client(server, admin_token, tmp_path / "client-home")


def _registered(stacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All but the built-in stack (whose artifact store is each machine's own)."""
    return [s for s in stacks if s["name"] != "local"]


def test_register_list_show_activate_delete_and_the_cli_sees_the_same(
    server: ServerProcess, admin_token: str, read_token: str, client: Client, tmp_path: Path
) -> None:
    with server.http(read_token) as reader, server.http(admin_token) as writer:
        [local] = reader.get("/api/v1/stacks").json()
        assert (local["name"], local["active"], local["built_in"]) == ("local", True, True)

        made = writer.post(
            "/api/v1/stacks",
            json={
                "name": "bg",
                "orchestrator": "local",
                "artifact_store": (tmp_path / "bg").as_uri(),
                "settings": {
                    "mode": "subprocess",
                    "environment": {"AGENT_MODE": "fast"},
                    "secret_environment": {"OPENAI_API_KEY": "env:OPENAI_API_KEY"},
                },
            },
        )
        assert made.status_code == 201, made.text
        bg = made.json()
        assert (bg["name"], bg["orchestrator"], bg["active"]) == ("bg", "local", False)
        assert bg["settings"] == {
            "mode": "subprocess",
            "environment": {"AGENT_MODE": "fast"},
            "secret_environment": {"OPENAI_API_KEY": "env:OPENAI_API_KEY"},
        }
        assert bg["schema"]["mode"]["set"] is True
        box = writer.post(
            "/api/v1/stacks",
            json={
                "name": "box",
                "orchestrator": "docker",
                "artifact_store": "s3://agents/box",
                "registry": "127.0.0.1:5000/kitaru",
                "settings": {"cpus": 1.5, "remove_containers": True},
            },
        )
        assert box.status_code == 201, box.text
        assert box.json()["builder"] == "docker"  # the flavor's default builder
        assert box.json()["journal"] == "(the journal it is registered in)"

        listed = reader.get("/api/v1/stacks").json()
        assert [s["name"] for s in listed] == ["local", "bg", "box"]
        assert reader.get("/api/v1/stacks/bg").json() == bg
        # The CLI of a machine that only knows the server prints the same stacks.
        assert _registered(client.cli_json("stack", "list")) == _registered(listed)
        assert client.cli_json("stack", "show", "box") == box.json()

        active = writer.post("/api/v1/stacks/bg/activate")
        assert active.status_code == 200 and active.json()["active"] is True
        assert [s["name"] for s in reader.get("/api/v1/stacks").json() if s["active"]] == ["bg"]
        assert client.cli_json("stack", "show")["name"] == "bg"

        # A name that is taken is refused unless replaced; replacing keeps it active.
        again = writer.post(
            "/api/v1/stacks",
            json={"name": "bg", "orchestrator": "local", "artifact_store": bg["artifact_store"]},
        )
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        assert reader.get("/api/v1/stacks/bg").json() == {**bg, "active": True}
        replaced = writer.post(
            "/api/v1/stacks",
            json={
                "name": "bg",
                "orchestrator": "local",
                "artifact_store": bg["artifact_store"],
                "replace": True,
            },
        )
        assert replaced.status_code == 201, replaced.text
        assert replaced.json()["settings"]["mode"] == "in_process"  # the default again
        assert replaced.json()["active"] is True

        # Deleting the active stack makes local active again, as `kitaru stack delete` does.
        gone = writer.delete("/api/v1/stacks/bg")
        assert gone.status_code == 200 and gone.json() == {"deleted": "bg"}
        assert [(s["name"], s["active"]) for s in reader.get("/api/v1/stacks").json()] == [
            ("local", True),
            ("box", False),
        ]
        assert client.cli_json("stack", "show")["name"] == "local"
        missing = reader.get("/api/v1/stacks/bg")
        assert missing.status_code == 404
        assert missing.json()["detail"] == (
            "stack 'bg' does not exist; registered stacks: local, box"
        )
        assert writer.delete("/api/v1/stacks/box").json() == {"deleted": "box"}

    # And the other way round: a stack the CLI registers through the server is listed.
    made_by_cli = client.cli(
        "stack", "register", "cli-made", "-o", "local", "-a", (tmp_path / "c").as_uri()
    )
    assert made_by_cli.returncode == 0, made_by_cli.stderr
    with server.http(read_token) as reader, server.http(admin_token) as writer:
        assert reader.get("/api/v1/stacks/cli-made").json()["orchestrator"] == "local"
        assert writer.delete("/api/v1/stacks/cli-made").status_code == 200


def test_a_stack_with_unfinished_executions_is_deleted_only_with_force(
    server: ServerProcess, admin_token: str, client: Client, tmp_path: Path
) -> None:
    with server.http(admin_token) as writer:
        made = writer.post(
            "/api/v1/stacks",
            json={
                "name": "held",
                "orchestrator": "local",
                "artifact_store": (tmp_path / "held").as_uri(),
            },
        )
        assert made.status_code == 201, made.text
        script = write_script(tmp_path / "approval.py", WAITING)
        result = client.python(script, env={"KITARU_STACK": "held"})
        assert result.returncode == 0, result.stderr
        exec_id = json.loads(result.stdout.strip().splitlines()[-1])["exec_id"]
        assert writer.get(f"/api/v1/executions/{exec_id}").json()["stack"] == "held"

        busy = writer.delete("/api/v1/stacks/held")
        assert busy.status_code == 409
        assert busy.json()["detail"] == (
            f"stack 'held' has executions that are not finished ({exec_id}); they resume on "
            "it, so cancel them or let them end first (or pass --force)"
        )
        assert writer.get("/api/v1/stacks/held").status_code == 200
        forced = writer.delete("/api/v1/stacks/held", params={"force": "true"})
        assert forced.status_code == 200 and forced.json() == {"deleted": "held"}


def test_refusals_say_why_and_store_nothing(
    server: ServerProcess, admin_token: str, read_token: str, tmp_path: Path
) -> None:
    store = (tmp_path / "art").as_uri()
    base = {"name": "bad", "orchestrator": "local", "artifact_store": store}
    unprocessable: list[tuple[dict[str, Any], str]] = [
        (
            {"settings": {"environment": {"OPENAI_API_KEY": "sk-" + "a1B2" * 8}}},
            "setting 'environment.OPENAI_API_KEY' looks like a secret and secrets are never "
            "stored in plain text",
        ),
        (
            {"settings": {"environment": {"DATABASE": "postgresql://me:hunter2@db/app"}}},
            "setting 'environment.DATABASE' looks like a secret",
        ),
        (
            {"settings": {"secret_environment": {"TOKEN": "plain-value"}}},
            "secret_environment.TOKEN: 'plain-value' is not a reference",
        ),
        ({"settings": {"mood": "happy"}}, "the local stack has no setting 'mood'"),
        ({"settings": {"mode": "thread"}}, "setting 'mode': Input should be 'in_process' or"),
        (
            {
                "orchestrator": "aws_batch",
                "artifact_store": "s3://bucket/x",
                "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com/kitaru",
                "settings": {"region": "us-east-1"},
            },
            "setting 'job_queue' is required for a aws_batch stack (AWS Batch job queue name",
        ),
        (
            {
                "orchestrator": "kubernetes",
                "artifact_store": "s3://bucket/x",
                "registry": "localhost:5000/k",
                "settings": {"memory": 2},
            },
            "setting 'memory': Input should be a valid string",
        ),
        ({"orchestrator": "nomad"}, "unknown orchestrator flavor 'nomad'; installed: aws_batch"),
        ({"name": "Bad Name"}, "stack name 'Bad Name' is not valid"),
        ({"artifact_store": "my-bucket/prefix"}, "'my-bucket/prefix' is not a valid artifact"),
        (
            {"journal": "postgresql://me:hunter2@db:5432/kitaru"},
            "--journal contains a password, and secrets are never stored in plain text",
        ),
        (
            {"orchestrator": "kubernetes", "artifact_store": "s3://bucket/x"},
            "--registry is required for a kubernetes stack",
        ),
        ({"builder": "docker"}, "the local orchestrator runs the project as it is"),
        (
            {"orchestrator": "docker", "registry": "localhost:5000/k", "builder": "kaniko"},
            "--builder: unknown builder flavor 'kaniko'; installed: docker",
        ),
        ({"settings": "mode=subprocess"}, "invalid request: settings: Input should be"),
        ({"orchestrator": None}, "invalid request: orchestrator: Input should be a valid string"),
        ({"use": True}, "invalid request: use: Extra inputs are not permitted"),
    ]
    with server.http(read_token) as reader, server.http(admin_token) as writer:
        before = reader.get("/api/v1/stacks").json()
        for change, reason in unprocessable:
            answer = writer.post("/api/v1/stacks", json={**base, **change})
            assert answer.status_code == 422, (change, answer.text)
            assert reason in answer.json()["detail"], (change, answer.text)
        taken = writer.post("/api/v1/stacks", json={**base, "name": "local"})
        assert taken.status_code == 409
        assert "the name 'local' belongs to the built-in stack" in taken.json()["detail"]
        built_in = writer.delete("/api/v1/stacks/local")
        assert built_in.status_code == 409
        assert built_in.json()["detail"] == "the local stack is built in and cannot be deleted"
        assert writer.delete("/api/v1/stacks/ghost").status_code == 404
        assert writer.post("/api/v1/stacks/ghost/activate").status_code == 404

        # Read and write tokens read but change no stack (an admin's change); no token
        # reads nothing.
        for method, path in [
            ("POST", "/api/v1/stacks"),
            ("DELETE", "/api/v1/stacks/local"),
            ("POST", "/api/v1/stacks/local/activate"),
            ("PUT", "/api/v1/settings/active_stack"),
        ]:
            for token in (read_token, server.token("write")):
                with server.http(token) as other:
                    answer = other.request(method, path, json=base)
                assert answer.status_code == 403, (method, path, answer.text)
                assert "admin token" in answer.json()["detail"]
        with server.http(None) as anonymous:
            for path in ("/api/v1/stacks", "/api/v1/stacks/local", "/api/v1/flavors"):
                assert anonymous.get(path).status_code == 401
            assert anonymous.post("/api/v1/stacks", json=base).status_code == 401
        assert reader.get("/api/v1/stacks").json() == before


def test_flavors_are_what_kitaru_stack_flavors_prints(
    server: ServerProcess, read_token: str
) -> None:
    with server.http(read_token) as reader:
        listed = reader.get("/api/v1/flavors").json()
        assert listed == kitaru_cli("stack", "flavors", "--json").json()
        assert [f["flavor"] for f in listed] == [
            "aws_batch",
            "azure_container_apps",
            "docker",
            "gcp_cloud_run",
            "kubernetes",
            "local",
        ]
        batch = reader.get("/api/v1/flavors/aws_batch").json()
        assert batch == kitaru_cli("stack", "flavors", "aws_batch", "--json").json()
        assert (batch["builder"], batch["needs_registry"]) == ("docker", True)
        schema = batch["settings_schema"]
        assert {"job_queue", "region"} <= set(schema["required"])
        assert schema["properties"]["memory_mib"]["default"] == 2048
        assert batch["settings"]["job_queue"] == {
            "required": True,
            "default": None,
            "description": "AWS Batch job queue name or ARN",
        }
        assert batch["infrastructure"]  # the settings `kitaru stack provision` takes
        local = reader.get("/api/v1/flavors/local").json()
        assert local["builder"] is None and local["infrastructure"] is None
        assert local["settings_schema"]["properties"]["mode"]["enum"] == [
            "in_process",
            "subprocess",
        ]
        unknown = reader.get("/api/v1/flavors/nomad")
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith(
            "unknown orchestrator flavor 'nomad'; installed: aws_batch, azure_container_apps"
        )
