"""The whole life of a flow through a real server, on PostgreSQL (for teams) and on SQLite
(one machine): a client that knows only KITARU_SERVER_URL and a token runs it, it crashes,
resumes, waits, is answered through a webhook URL and through the API, is replayed, and
the two executions are diffed.

The server runs no flow code: what it continues on the local stack (a resume, an answer,
a replay, a timed-out wait) becomes `queued`, ready to continue, with the command that
continues it; the client, where the code lives, runs that command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import write_script
from tests.journal.conftest import fresh_postgres_url
from tests.server import flows
from tests.server.conftest import Client
from tests.server_process import ServerProcess


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """This module's server: the conftest's on PostgreSQL, and the same on a SQLite file."""
    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    journal = (
        fresh_postgres_url()
        if request.param == "postgresql"
        else f"sqlite:///{workdir / 'journal.db'}"
    )
    proc = ServerProcess(journal, workdir, args=("--sweep-interval", "0.5", "--max-upload-mb", "1"))
    try:
        yield proc
    finally:
        proc.stop()


def _counts(script: Path) -> dict[str, int]:
    folder = script.with_name("counts")
    if not folder.is_dir():
        return {}
    return {p.name: len(p.read_text()) for p in folder.iterdir()}


def _continue(client: Client, exec_id: str) -> None:
    """What a person does where the code lives when the server says an execution is ready."""
    result = client.cli("executions", "resume", exec_id)
    assert result.returncode == 0, result.stderr


def test_crash_resume_webhook_replay_and_diff_through_the_server(
    server: ServerProcess, client: Client, write_token: str, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "project" / "review.py", flows.REVIEW)

    crashed = client.python(script, "llamas", env={"CRASH_IN_DRAFT": "1"})
    assert crashed.returncode == 9, crashed.stderr
    [listed] = client.cli_json("executions", "list")
    exec_id = listed["exec_id"]
    assert listed["status"] == "crashed"
    # The client keeps nothing: no journal, no artifact files.
    assert not (client.home / "journal.db").exists()
    assert not (client.home / "artifacts").exists()

    # Resume through the server's API: the server runs no code, so a local-stack
    # execution is left ready to continue, with the command that continues it.
    with server.http(write_token) as http:
        asked = http.post(f"/api/v1/executions/{exec_id}/resume")
    assert asked.status_code == 202, asked.text
    ready = asked.json()
    assert ready["status"] == "queued"
    assert ready["ready"]["command"] == f"kitaru executions resume {exec_id}"
    assert _counts(script) == {"research": 1, "draft": 1}  # nothing ran on the server
    _continue(client, exec_id)
    view = server.wait_for(write_token, exec_id, {"waiting", "failed"})
    assert view["status"] == "waiting", view
    assert _counts(script) == {"research": 1, "draft": 2}
    origins = {c["key"]: c["origin"] for c in view["checkpoints"]}
    assert origins == {"research": "journal", "draft": "ran"}

    # The 40 KB research output went through the API into the server's own store.
    research = view["checkpoints"][0]["output"]
    assert research["uri"].startswith(server.store)
    assert Path(research["uri"].removeprefix("file://")).is_file()
    text = client.cli("artifacts", "get", research["artifact_id"])
    assert text.returncode == 0 and text.stdout.startswith("notes on llamas: zzz")

    # Answer the wait through a signed webhook URL: no token travels with it.
    hook = client.cli_json("server", "webhook", exec_id, "approve", "--expires-in", "600")
    assert "kt_" not in hook["url"]
    answered = httpx.post(hook["url"], content=b"true", timeout=30)
    assert answered.status_code == 202, answered.text
    assert server.wait_for(write_token, exec_id, {"queued"})["status"] == "queued"
    _continue(client, exec_id)
    done = server.wait_for(write_token, exec_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["result"] == "published: NOTES ON LLAMAS"
    assert _counts(script) == {"research": 1, "draft": 2, "publish": 1}
    # A webhook URL answers its wait once.
    again = httpx.post(hook["url"], content=b"false", timeout=30)
    assert again.status_code == 409 and "already answered" in again.json()["detail"]

    # Replay from `draft` with an override, answer it through the API, then diff.
    with server.http(write_token) as http:
        started = http.post(
            f"/api/v1/executions/{exec_id}/replay",
            json={"from": "draft", "overrides": {"draft": "EDITED"}},
        )
        assert started.status_code == 202, started.text
        replay_id = started.json()["exec_id"]
        assert started.json()["status"] == "queued"
        _continue(client, replay_id)
        assert server.wait_for(write_token, replay_id, {"waiting"})["status"] == "waiting"
        given = http.post(
            f"/api/v1/executions/{replay_id}/input", json={"wait": "approve", "value": True}
        )
        assert given.status_code == 202, given.text
        assert given.json()["status"] == "queued"
        _continue(client, replay_id)
        replayed = server.wait_for(write_token, replay_id, {"completed", "failed"})
        assert replayed["result"] == "published: EDITED"
        assert replayed["replayed_from"] == exec_id
        lineage = http.get(f"/api/v1/executions/{exec_id}/lineage").json()
        assert [r["exec_id"] for r in lineage["replays"]] == [replay_id]
        ancestry = http.get(f"/api/v1/executions/{replay_id}/lineage").json()
        assert [a["exec_id"] for a in ancestry["ancestors"]] == [exec_id]
        diff = http.get("/api/v1/artifacts/diff", params={"a": exec_id, "b": replay_id}).json()
    # research reused, draft overridden: only draft and publish changed.
    assert _counts(script) == {"research": 1, "draft": 2, "publish": 2}
    assert diff["changed"] == ["draft", "publish"]
    assert {c["key"]: c["status"] for c in diff["checkpoints"]}["research"] == "same"
    assert client.cli_json("artifacts", "diff", exec_id, replay_id)["changed"] == diff["changed"]


def test_the_cli_does_through_the_server_what_it_does_locally(
    client: Client, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "project" / "review.py", flows.REVIEW)
    crashed = client.python(script, "otters", env={"CRASH_IN_DRAFT": "1"})
    assert crashed.returncode == 9
    exec_id = client.cli_json("executions", "list", "--flow", "review")[0]["exec_id"]

    # Resume runs in the client's own process, its journal being the server.
    resumed = client.cli_json("executions", "resume", exec_id)
    assert resumed["status"] == "waiting"
    assert [w["key"] for w in client.cli_json("executions", "waits")] == ["approve"]
    bad = client.cli("executions", "input", exec_id, "approve", '"yes"')
    assert bad.returncode == 2 and "expected bool" in bad.stderr
    done = client.cli_json("executions", "input", exec_id, "approve", "true")
    assert done["status"] == "completed" and done["result"] == "published: NOTES ON OTTERS"
    logs = client.cli_json("executions", "logs", exec_id)
    assert any("researching otters" in g["text"] for g in logs)

    replay = client.cli_json("executions", "replay", exec_id, "--from", "publish")
    assert replay["status"] == "completed" and replay["replayed_from"] == exec_id
    assert _counts(script)["publish"] == 2
    missing = client.cli("executions", "get", "kx_nope")
    assert missing.returncode == 2 and "not found" in missing.stderr

    # A waiting execution is cancelled through the server too.
    second = client.start(script, "bees")
    cancelled = client.cli_json("executions", "cancel", second["exec_id"])
    assert cancelled["status"] == "cancelled"


def test_a_ready_execution_whose_flow_cannot_load_says_why_and_stays_ready(
    server: ServerProcess, client: Client, write_token: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    script = write_script(project / "review.py", flows.REVIEW)
    crashed = client.python(script, "owls", env={"CRASH_IN_DRAFT": "1"})
    assert crashed.returncode == 9
    exec_id = client.cli_json("executions", "list", "--flow", "review")[0]["exec_id"]
    with server.http(write_token) as http:
        assert http.post(f"/api/v1/executions/{exec_id}/resume").json()["status"] == "queued"
    script.rename(project / "renamed.py")

    resumed = client.cli("executions", "resume", exec_id, cwd=project)
    # The reason the flow did not load, not an error about releasing the execution.
    assert resumed.returncode == 1, resumed.stderr
    assert "which no longer exists" in resumed.stderr, resumed.stderr
    with server.http(write_token) as http:
        view = http.get(f"/api/v1/executions/{exec_id}").json()
        record = http.get(f"/api/v1/records/executions/{exec_id}").json()
    assert view["status"] == "queued" and view["ready"]["command"].endswith(exec_id)
    assert record["owner"] is None and "no longer exists" in record["error"]


def test_the_server_readies_an_execution_whose_wait_timed_out(
    server: ServerProcess, client: Client, write_token: str, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "project" / "deadline.py", flows.TIMEOUT)
    started = client.start(script)
    assert started["status"] == "waiting"
    time.sleep(1.0)  # the wait's timeout; nothing polls but the server's sweeper
    view = server.wait_for(write_token, started["exec_id"], {"queued"}, timeout=30)
    assert view["status"] == "queued" and "timed out" in view["ready"]["reason"]
    _continue(client, started["exec_id"])
    view = server.wait_for(write_token, started["exec_id"], {"completed", "failed"}, timeout=30)
    assert view["status"] == "completed" and view["result"] == "timed out"
