"""The deployments router of a real server: list, show, tag, untag, history and the bad
input of each (running a deployed version through it is in
tests/deployments/test_docker_deployments.py, where a Docker engine runs it)."""

from __future__ import annotations

import time

from kitaru.journal import DeploymentRecord, open_journal
from tests.server_process import ServerProcess


def _deploy(server: ServerProcess, flow: str, digest: str) -> int:
    """A version recorded as `kitaru deploy` records it, in the server's journal."""
    record = DeploymentRecord(
        flow=flow,
        version=0,
        image=f"127.0.0.1:5000/kitaru/{flow}@{digest}",
        digest=digest,
        content_hash="c" * 64,
        lock_hash="l" * 64,
        source_hash="s" * 64,
        kitaru_version="1.0.0",
        signature=[{"name": "ticket", "kind": "POSITIONAL_OR_KEYWORD", "required": True,
                    "annotation": "str", "json_type": "string"}],
        flow_ref=f"agent:{flow}",
        flow_file="agent.py",
        import_path=".",
        project_root="/home/me/agent",
        stack="box",
        orchestrator="docker",
        builder="docker",
        reused=False,
        created_by="me@laptop",
        created_at=time.time(),
        manifest={"agent.py": "ab" * 32},
    )  # fmt: skip
    return open_journal(server.journal_url).create_deployment(record, tag="default").version


def test_versions_tags_canary_rollback_and_history_over_http(
    server: ServerProcess, write_token: str, read_token: str, admin_token: str
) -> None:
    for digest in ("sha256:01", "sha256:02", "sha256:03"):
        _deploy(server, "triage", digest)
    with (
        server.http(read_token) as reader,
        server.http(write_token) as deployer,
        server.http(admin_token) as writer,
    ):
        listed = reader.get("/api/v1/deployments", params={"flow": "triage"}).json()
        assert [(v["version"], v["tags"]) for v in listed] == [
            (3, [{"tag": "default", "weight": 100}]),
            (2, []),
            (1, []),
        ]
        shown = reader.get("/api/v1/deployments/triage/2").json()
        assert shown["digest"] == "sha256:02" and shown["signature"][0]["name"] == "ticket"
        assert shown["files"] == 1 and "local" not in shown  # no local code on a server

        # Moving a tag is an admin's change: a write token deploys and invokes only.
        refused = deployer.put("/api/v1/deployments/triage/tags/default", json={"version": 2})
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]

        canary = writer.put(
            "/api/v1/deployments/triage/tags/default", json={"version": 2, "weight": 10}
        )
        assert canary.status_code == 200, canary.text
        assert (canary.json()["version"], canary.json()["rest_version"]) == (2, 3)
        rollback = writer.put("/api/v1/deployments/triage/tags/default", json={"version": 1})
        assert rollback.json()["weight"] == 100 and rollback.json()["rest_version"] is None
        writer.put("/api/v1/deployments/triage/tags/stable", json={"version": 3})
        tags = reader.get("/api/v1/deployments/triage/tags").json()
        assert [(t["tag"], t["version"]) for t in tags] == [("default", 1), ("stable", 3)]
        removed = writer.delete("/api/v1/deployments/triage/tags/stable")
        assert removed.json()["removed"]["version"] == 3

        history = reader.get("/api/v1/deployments/triage/history").json()
        assert [(e["tag"], e["action"], e["version"], e["weight"]) for e in history] == [
            ("default", "tag", 1, 100),
            ("default", "tag", 2, 100),
            ("default", "tag", 3, 100),
            ("default", "tag", 2, 10),
            ("default", "tag", 1, 100),
            ("stable", "tag", 3, 100),
            ("stable", "untag", None, None),
        ]
        assert history[3]["by"].startswith("token ")  # who moved it: the token's id

        # The same tag as a record, as the HTTP journal reads it.
        record = reader.get("/api/v1/records/deployments/triage/tags/default")
        assert record.json()["version"] == 1


def test_bad_input_is_refused_with_the_reason_and_changes_nothing(
    server: ServerProcess, write_token: str, read_token: str, admin_token: str
) -> None:
    _deploy(server, "refunds", "sha256:0a")
    before = None
    with (
        server.http(read_token) as reader,
        server.http(write_token) as writer,
        server.http(admin_token) as admin,
    ):
        before = reader.get("/api/v1/deployments/refunds/history").json()
        for weight in (0, 100, -5):
            answer = admin.put(
                "/api/v1/deployments/refunds/tags/default", json={"version": 1, "weight": weight}
            )
            assert answer.status_code == 422, answer.text
            assert "weight" in answer.json()["detail"]
        missing = admin.put("/api/v1/deployments/refunds/tags/default", json={"version": 9})
        assert missing.status_code == 404
        assert missing.json()["detail"].endswith(
            "no deployment version 9; versions: 1 (see `kitaru deployments list refunds`)"
        )
        assert reader.get("/api/v1/deployments/refunds/9").status_code == 404
        assert reader.get("/api/v1/deployments/nothing/1").status_code == 404
        bad_tag = admin.put("/api/v1/deployments/refunds/tags/no%20spaces", json={"version": 1})
        assert bad_tag.status_code == 409 and "not a valid tag name" in bad_tag.json()["detail"]
        assert admin.delete("/api/v1/deployments/refunds/tags/nope").status_code == 404

        # Invoking: a flow without deployments, a tag that does not exist, arguments that
        # do not fit the deployed signature. Nothing is started.
        none = writer.post("/api/v1/deployments/ghost/invoke", json={})
        assert none.status_code == 404 and "has no deployments" in none.json()["detail"]
        no_tag = writer.post("/api/v1/deployments/refunds/invoke", json={"tag": "canary"})
        assert no_tag.status_code == 404 and "tags: default" in no_tag.json()["detail"]
        wrong = writer.post("/api/v1/deployments/refunds/invoke", json={"kwargs": {"ticket": 5}})
        assert wrong.status_code == 422
        assert "argument 'ticket' must be a string (str), not 5" in wrong.json()["detail"]
        extra = writer.post(
            "/api/v1/deployments/refunds/invoke", json={"kwargs": {"ticket": "x", "urgent": True}}
        )
        assert extra.status_code == 422 and "it takes: ticket" in extra.json()["detail"]
        both = writer.post(
            "/api/v1/deployments/refunds/invoke", json={"tag": "default", "version": 1}
        )
        assert both.status_code == 409

        # A read token reads but changes nothing.
        assert (
            reader.put("/api/v1/deployments/refunds/tags/default", json={"version": 1}).status_code
            == 403
        )
        assert reader.post("/api/v1/deployments/refunds/invoke", json={}).status_code == 403
        assert reader.get("/api/v1/deployments/refunds/history").json() == before
        assert reader.get("/api/v1/executions", params={"flow": "refunds"}).json() == []
