"""Deployments end to end on the Docker engine and registry of the test services: versions
with their own digests, image reuse, concurrent deploys, tags, a canary, rollback, and
invocations that run the deployed image (not the code on this machine) on the `docker`
orchestrator, from the CLI, from Python and through the server.

Image builds are slow on the engine's vfs storage: the module builds at most two images
(the example as shipped, usually found in the registry already, and the example with a
code change unique to the session, which reuses every cached layer but the project's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru.deployments import bucket
from tests.conftest import kitaru_cli, run_python
from tests.containers import container_of
from tests.deployments._project import register_docker_stack, restyle, services_env, write_project
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    env = services_env()
    register_docker_stack(env, "ship", "--use")
    project = write_project(tmp_path_factory.mktemp("deploy-agent"))
    state: dict[str, Any] = {"env": env, "project": project, "built": []}
    state["style"] = "session-" + uuid.uuid4().hex[:8]
    yield state
    # The image of this session's code change is never asked for again: drop it from the
    # engine (the registry keeps it), so that test runs do not fill the disk.
    import docker

    client = docker.DockerClient(base_url=env["DOCKER_HOST"])
    for tag in state["built"]:
        client.images.remove(tag)


def cli(shipped: dict[str, Any], *args: str, timeout: float = 900) -> Any:
    return kitaru_cli(*args, cwd=shipped["project"], env=shipped["env"], timeout=timeout)


def cli_json(shipped: dict[str, Any], *args: str) -> Any:
    result = cli(shipped, *args, "--json")
    assert result.returncode == 0, result
    return result.json()


def ids_for(flow: str, tag: str, canary: int, weight: int) -> tuple[str, str]:
    """An invocation id that lands on the canary and one that stays on the rest."""
    ids = [f"ticket-{n}" for n in range(200)]
    on_canary = next(i for i in ids if bucket(flow, tag, canary, i) < weight)
    on_rest = next(i for i in ids if bucket(flow, tag, canary, i) >= weight)
    return on_canary, on_rest


def test_versions_reuse_concurrency_canary_rollback_run_the_deployed_code(
    shipped: dict[str, Any],
) -> None:
    project: Path = shipped["project"]
    env = shipped["env"]

    # Version 1, from Python: `support.deploy()` in the example.
    first = run_python(project / "agent.py", "deploy", cwd=project, env=env, timeout=1200)
    assert first.returncode == 0, first
    assert "deployed support version 1" in first.stdout

    # The code changes; version 2 is a new image with its own digest.
    restyle(project, shipped["style"])
    second = cli_json(shipped, "deploy", f"{project}/agent.py:support")
    assert (second["version"], second["reused"]) == (2, False)
    shipped["built"].append(second["metadata"]["image_tag"])
    one = cli_json(shipped, "deployments", "show", "support", "1")
    assert second["digest"] != one["digest"]
    assert second["image"].startswith(f"{env['KITARU_TEST_REGISTRY']}/kitaru/deploy-agent@sha256:")
    assert second["lock_hash"] == one["lock_hash"]  # same dependencies
    assert second["source_hash"] != one["source_hash"]

    # Unchanged: version 3 reuses version 2's image, and says so.
    third = cli(shipped, "deploy", f"{project}/agent.py:support")
    assert third.returncode == 0, third
    assert "deployed support version 3 (tag default)" in third.stdout
    assert "reused: the project's lock and source are unchanged" in third.stdout
    assert cli_json(shipped, "deployments", "show", "support", "3")["digest"] == second["digest"]

    # Two deploys at once: each gets its own version number.
    racing = [
        subprocess.Popen(
            [sys.executable, "-m", "kitaru", "deploy", "agent.py:support", "--no-tag", "--json"],
            cwd=project, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in racing]
    assert all(p.returncode == 0 for p in racing), outputs
    assert sorted(json.loads(out)["version"] for out, _err in outputs) == [4, 5]

    listed = cli_json(shipped, "deployments", "list", "support")
    assert [(v["version"], [t["tag"] for t in v["tags"]]) for v in listed] == [
        (5, []), (4, []), (3, ["default"]), (2, []), (1, []),
    ]  # fmt: skip

    # The code here now differs from version 1's snapshot, not from version 3's.
    old = cli_json(shipped, "deployments", "show", "support", "1")["local"]
    assert (old["differs"], old["changed"], old["added"], old["removed"]) == (
        True, ["agent.py"], [], [],
    )  # fmt: skip
    assert cli_json(shipped, "deployments", "show", "support", "3")["local"]["differs"] is False
    shown = cli(shipped, "deployments", "show", "support", "1")
    assert "local code  differs from the snapshot" in shown.stdout
    assert "changed  agent.py" in shown.stdout

    # Roll back to version 1 (a tag move), then send half of the invocations to version 2.
    moved = cli(shipped, "deployments", "tag", "support", "1", "default")
    assert moved.stdout.strip() == "tag default of support -> version 1 (was version 3)"
    canary = cli_json(shipped, "deployments", "tag", "support", "2", "default", "--weight", "50")
    assert (canary["version"], canary["weight"], canary["rest_version"]) == (2, 50, 1)
    history = cli_json(shipped, "deployments", "history", "support")
    assert [(e["version"], e["weight"], e["from_version"]) for e in history] == [
        (1, 100, None), (2, 100, 1), (3, 100, 2), (1, 100, 3), (2, 50, 1),
    ]  # fmt: skip

    # Real invocations: the id picks the version, and each runs its own snapshot. Version
    # 1 replies in the style it was deployed with, although the code here changed since.
    to_new, to_old = ids_for("support", "default", 2, 50)
    ran_old = cli_json(
        shipped, "deployments", "invoke", "support", "--args",
        '{"ticket": "my order is late", "customer": "Ada"}',
        "--invocation-id", to_old, "--wait", "--timeout", "300",
    )  # fmt: skip
    assert ran_old["status"] == "completed", ran_old
    assert (ran_old["deployment_version"], ran_old["invocation_id"]) == (1, to_old)
    assert ran_old["result"]["style"] == "brief"
    assert ran_old["result"]["reply"].startswith("[brief] Hi Ada, about your shipping question")
    assert ran_old["metadata"]["image"] == one["image"]
    assert ran_old["result"]["host"].startswith("docker-")  # it ran in a container

    # From Python: the example's `support.invoke(...)` (its local code is the new style).
    ran_new = run_python(
        project / "agent.py", "invoke", "where is my refund", to_new,
        cwd=project, env=env, timeout=600,
    )  # fmt: skip
    assert ran_new.returncode == 0, ran_new
    answer = json.loads(ran_new.stdout.strip().splitlines()[-1])
    assert answer["result"]["style"] == shipped["style"]
    new_view = cli_json(shipped, "executions", "get", answer["exec_id"])
    assert new_view["deployment_version"] == 2 and new_view["invocation_id"] == to_new
    shipped["retry"] = (to_old, ran_old["exec_id"])

    header, *lines = cli(shipped, "executions", "list", "--flow", "support").stdout.splitlines()
    column = header.index("VERSION")
    versions = {line.split()[0]: line[column:].split()[0] for line in lines}
    assert versions == {ran_old["exec_id"]: "1", answer["exec_id"]: "2"}

    # Bad input: each a clear error, a non-zero exit, nothing changed.
    before = cli_json(shipped, "deployments", "history", "support")
    refused = cli(shipped, "deployments", "delete", "support", "1")
    assert refused.returncode == 2
    assert "version 1 of support is served by tag default" in refused.stderr
    for weight in ("0", "100"):
        bad = cli(shipped, "deployments", "tag", "support", "4", "default", "--weight", weight)
        assert bad.returncode == 2 and f"--weight {weight} is outside 1-99" in bad.stderr, bad
    missing = cli(shipped, "deployments", "tag", "support", "42", "default")
    assert missing.returncode == 2
    assert "flow 'support' has no deployment version 42; versions: 1, 2, 3, 4, 5" in missing.stderr
    for command in (("show", "support", "42"), ("delete", "support", "42")):
        gone = cli(shipped, "deployments", *command)
        assert gone.returncode == 2 and "version 42 of flow 'support' does not exist" in gone.stderr
    for invoke_args, message in [
        (("--version", "42"), "version 42 of flow 'support' does not exist"),
        (("--tag", "nope"), "flow 'support' has no tag 'nope'; tags: default"),
        (("--args", "{oops"), "--args is not valid JSON"),
        (("--args", '{"customer": "Ada"}'), "missing a required argument: 'ticket'"),
        (("--args", '{"ticket": 7}'), "argument 'ticket' must be a string (str), not 7"),
        (("--tag", "default", "--version", "1"), "give a tag or a version to invoke, not both"),
    ]:
        bad = cli(shipped, "deployments", "invoke", "support", *invoke_args)
        assert bad.returncode == 2 and message in bad.stderr, (invoke_args, bad)
    untag = cli(shipped, "deployments", "untag", "support", "nope")
    assert untag.returncode == 2 and "has no tag 'nope'; tags: default" in untag.stderr
    assert cli_json(shipped, "deployments", "history", "support") == before
    assert len(cli_json(shipped, "executions", "list", "--flow", "support")) == 2

    # A version no tag serves can go; its number is not given out again.
    assert cli_json(shipped, "deployments", "delete", "support", "4") == {
        "flow": "support", "deleted": 4,
    }  # fmt: skip
    assert [v["version"] for v in cli_json(shipped, "deployments", "list", "support")] == [
        5, 3, 2, 1,
    ]  # fmt: skip


def test_the_server_invokes_a_retried_invocation_on_the_same_version(
    shipped: dict[str, Any], tmp_path: Path
) -> None:
    """Through the deployments router: the server holds no code, only the journal and the
    stack; the same invocation id as an earlier invocation lands on the same version."""
    retry_id, first_exec = shipped.get("retry", (None, None))
    assert retry_id is not None, "runs after the test above"
    env = shipped["env"]
    server_env = {k: v for k, v in env.items() if not k.startswith("KITARU_")}
    server = ServerProcess(
        env["KITARU_JOURNAL_URL"],
        tmp_path / "server",
        store=cli_json(shipped, "stack", "show", "ship")["artifact_store"],
        env={**server_env, "DOCKER_HOST": env["DOCKER_HOST"]},
    )
    try:
        token = server.token("write")
        with server.http(token) as http:
            tags = http.get("/api/v1/deployments/support/tags").json()
            assert [(t["tag"], t["version"], t["weight"]) for t in tags] == [("default", 2, 50)]
            started = http.post(
                "/api/v1/deployments/support/invoke",
                json={"kwargs": {"ticket": "my order is late"}, "invocation_id": retry_id},
            )
            assert started.status_code == 202, started.text
            view = started.json()
            assert view["deployment_version"] == 1 and view["exec_id"] != first_exec
        # The stack removes containers once they end: read this one's settings while it runs.
        container = container_of(view["exec_id"], docker_host=env["DOCKER_HOST"], timeout=300)
        done = server.wait_for(token, view["exec_id"], {"completed", "failed"}, timeout=300)
        assert done["status"] == "completed", done
        assert done["result"]["style"] == "brief"
        # The container the server started reported to the server with a token minted
        # for its run, not to the database.
        assert container["Id"] == done["run_id"]
        container_env = dict(e.partition("=")[::2] for e in container["Config"]["Env"])
        assert "KITARU_JOURNAL_URL" not in container_env
        # Its own configured address (here the one it listens on), never a recorded one.
        assert container_env["KITARU_SERVER_URL"] == server.url
        assert "server_url" not in done["metadata"]
        assert container_env["KITARU_API_TOKEN"] != token
    finally:
        server.stop()


def test_an_invocation_put_in_a_queue_runs_on_a_worker_whose_code_is_its_snapshot(
    shipped: dict[str, Any],
) -> None:
    """`deployments invoke --queue`: no container starts; a worker started where the code
    lives runs the versions its code is the snapshot of (3: the code here), and leaves
    the others (1: an older style) queued for a worker that has their code."""
    assert "retry" in shipped, "runs after the tests above"
    project, env = shipped["project"], shipped["env"]
    args = ("--args", '{"ticket": "my order is late", "customer": "Ada"}', "--queue", "support-q")
    mine = cli_json(shipped, "deployments", "invoke", "support", "--version", "3", *args)
    older = cli_json(shipped, "deployments", "invoke", "support", "--version", "1", *args)
    for view in (mine, older):
        assert (view["status"], view["queue"], view["run_id"]) == ("queued", "support-q", None)
        assert "kitaru worker" in view["ready"]["where"]
    bad = cli(shipped, "deployments", "invoke", "support", "--queue", "no such")
    assert bad.returncode == 2 and "queue name 'no such' is not valid" in bad.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "kitaru", "worker", "--flows", "agent.py", "--queue", "support-q",
         "--name", "edge", "--json"],
        cwd=project, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while cli_json(shipped, "executions", "get", mine["exec_id"])["status"] != "completed":
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.5)
        time.sleep(2)  # the worker had every chance to take version 1 too
        older_now = cli_json(shipped, "executions", "get", older["exec_id"])
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0]
    done = cli_json(shipped, "executions", "get", mine["exec_id"])
    assert done["worker"] == "edge" and done["deployment_version"] == 3, output
    assert done["result"]["style"] == shipped["style"]
    assert not done["result"]["host"].startswith("docker-")  # no container: the worker ran it
    assert older_now["status"] == "queued" and older_now["worker"] is None, output
    assert '"support@3"' in output and '"support@1"' not in output
    assert cli(shipped, "executions", "cancel", older["exec_id"]).returncode == 0
