"""Auth and bad input against a real server: 401/403 with nothing leaked, 422 with the
reason, 413 for oversized bodies, no path out of the store, no unpickling."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import write_script
from tests.server import flows
from tests.server.conftest import Client
from tests.server_process import ServerProcess

UNAUTHENTICATED = {"detail": "missing or invalid API token"}


def _routes(server: ServerProcess, token: str) -> list[tuple[str, str]]:
    """Every (method, path) of the API, with placeholders filled in."""
    with server.http(token) as http:
        document = http.get("/api/v1/openapi.json").json()
    filled = []
    for path, item in document["paths"].items():
        concrete = path.replace("{key:path}", "k/x")
        for name in ("exec_id", "key", "artifact_id", "method", "name"):
            concrete = concrete.replace("{" + name + "}", "x")
        filled += [(m.upper(), concrete) for m in item if m in ("get", "post", "put", "delete")]
    return filled


def test_every_endpoint_but_health_needs_a_valid_token(
    server: ServerProcess, write_token: str, read_token: str
) -> None:
    routes = [r for r in _routes(server, read_token) if not r[1].startswith("/health")]
    assert len(routes) > 20
    # The API, and /metrics for Prometheus (a read token, like any read).
    assert all(path.startswith("/api/v1/") or path == "/metrics" for _m, path in routes)
    assert ("GET", "/metrics") in routes
    with server.http(None) as anonymous:
        assert anonymous.get("/health").json()["status"] == "ok"
        assert anonymous.get("/health/ready").status_code == 200
        assert anonymous.get("/api/v1/openapi.json").status_code == 401
        for method, path in routes:
            if path.startswith("/api/v1/hooks/"):
                continue  # signed URLs: tested below
            for headers in ({}, {"Authorization": "Bearer kt_0000_wrong"}, {"Authorization": "x"}):
                answer = anonymous.request(method, path, headers=headers, json={})
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.json() == UNAUTHENTICATED  # no hint what was wrong


def test_a_read_token_reads_and_is_refused_every_change(
    server: ServerProcess, read_token: str
) -> None:
    with server.http(read_token) as http:
        assert http.get("/api/v1/executions").status_code == 200
        assert http.get("/api/v1/records/executions").status_code == 200
        for method, path in [
            ("POST", "/api/v1/executions/kx_1/resume"),
            ("POST", "/api/v1/executions/kx_1/cancel"),
            ("POST", "/api/v1/executions/kx_1/replay"),
            ("POST", "/api/v1/executions/kx_1/input"),
            ("POST", "/api/v1/executions/kx_1/waits/approve/webhook"),
            ("POST", "/api/v1/executions"),
            ("POST", "/api/v1/runner/executions/kx_1/calls"),
            ("POST", "/api/v1/runner/executions/kx_1/lease"),
            ("POST", "/api/v1/executions/kx_1/waits/approve/answer"),
            ("PUT", "/api/v1/store/objects/kx_1/ka_1"),
            ("DELETE", "/api/v1/store/objects/kx_1/ka_1"),
        ]:
            answer = http.request(method, path, params={"root": server.store}, json={})
            assert answer.status_code == 403, (method, path, answer.text)
            assert "read-only" in answer.json()["detail"]
        for method, path in [
            ("POST", "/api/v1/stacks"),
            ("POST", "/api/v1/stacks/local/activate"),
            ("DELETE", "/api/v1/stacks/local"),
        ]:
            answer = http.request(method, path, json={})
            assert answer.status_code == 403, (method, path, answer.text)
            assert "admin token" in answer.json()["detail"]


def test_a_revoked_token_is_refused_within_a_second(server: ServerProcess) -> None:
    token = server.token("write", name="short-lived")
    with server.http(token) as http:
        assert http.get("/api/v1/info").status_code == 200
        token_id = token.split("_")[1]
        listed = json.loads(server.cli("server", "token", "list", "--json").stdout)
        [mine] = [t for t in listed if t["token_id"] == token_id]
        assert mine["name"] == "short-lived" and mine["scope"] == "write" and "token" not in mine
        assert server.cli("server", "token", "revoke", token_id).returncode == 0
        # The server keeps a verified token for at most a second before asking again.
        deadline = time.monotonic() + 3
        while http.get("/api/v1/info").status_code == 200:
            assert time.monotonic() < deadline, "the revoked token still works"
            time.sleep(0.1)
        assert http.get("/api/v1/info").json() == UNAUTHENTICATED
    unknown = server.cli("server", "token", "revoke", "nope")
    assert unknown.returncode == 2 and "no API token" in unknown.stderr
    bad_scope = server.cli("server", "token", "create", "--scope", "root")
    assert bad_scope.returncode == 2 and "use read, write or admin" in bad_scope.stderr


def test_a_client_with_a_wrong_token_gets_one_clear_line(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = Client(server, "kt_0000_wrong", tmp_path / "home")
    result = client.cli("executions", "list")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: the Kitaru server at")
    assert "KITARU_API_TOKEN" in result.stderr and "Traceback" not in result.stderr
    down = Client(server, "kt_0000_wrong", tmp_path / "home")
    down.env["KITARU_SERVER_URL"] = "http://127.0.0.1:9"
    # Clients wait out a restarting server (30 s by default); this one gives up at once.
    down.env["KITARU_SERVER_RETRY_SECONDS"] = "0.5"
    unreachable = down.cli("executions", "list")
    assert unreachable.returncode == 1 and "cannot reach the Kitaru server" in unreachable.stderr
    assert "KITARU_SERVER_RETRY_SECONDS" in unreachable.stderr


@pytest.fixture(scope="module")
def waiting(server: ServerProcess, write_token: str, tmp_path_factory: Any) -> dict[str, Any]:
    """An execution waiting for a model answer and then an int."""
    folder = tmp_path_factory.mktemp("form")
    script = write_script(folder / "triage.py", flows.FORM)
    started = Client(server, write_token, folder / "home").start(script, "one two three")
    assert started["status"] == "waiting"
    return started


def test_bad_input_gets_422_with_the_reason_and_changes_nothing(
    server: ServerProcess, write_token: str, waiting: dict[str, Any]
) -> None:
    exec_id = waiting["exec_id"]
    url = f"/api/v1/executions/{exec_id}/input"
    with server.http(write_token) as http:
        broken = http.post(
            url,
            content=b'{"wait": "review", "value": ',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
        missing = http.post(url, json={"wait": "review"})
        assert missing.status_code == 422 and "value" in missing.json()["detail"]
        wrong = http.post(url, json={"wait": "review", "value": {"approved": "maybe", "score": 3}})
        assert wrong.status_code == 422
        assert "approved" in wrong.json()["detail"] and "boolean" in wrong.json()["detail"]
        partial = http.post(url, json={"wait": "review", "value": {"approved": True}})
        assert partial.status_code == 422 and "score" in partial.json()["detail"]
        unknown = http.post(url, json={"wait": "nope", "value": 1})
        assert unknown.status_code == 404 and "review" in unknown.json()["detail"]
        runner = f"/api/v1/runner/executions/{exec_id}"
        rpc = http.post(
            f"{runner}/heartbeat", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert rpc.status_code == 422 and "not valid JSON" in rpc.json()["detail"]
        args = http.post(f"{runner}/heartbeat", json={"exec": 1})
        assert args.status_code == 422 and "owner" in args.json()["detail"]
        assert "exec: Extra inputs are not permitted" in args.json()["detail"]
        assert http.post(f"{runner}/drop_everything", json={}).status_code == 404
        # Text PostgreSQL cannot hold (a NUL character) is the caller's mistake too.
        nul = http.post(
            "/api/v1/executions",
            json={"execution": {"exec_id": "kx_nul", "flow": "f", "status": "failed",
                                "created_at": 1.0, "updated_at": 1.0, "error": "a\u0000b"}},
        )  # fmt: skip
        assert nul.status_code == 422 and "NUL" in nul.json()["detail"], nul.text
        view = http.get(f"/api/v1/executions/{exec_id}").json()
    assert view["status"] == "waiting"
    assert [w["status"] for w in view["waits"]] == ["pending"]


def test_oversized_bodies_are_refused(server: ServerProcess, write_token: str) -> None:
    big = b"x" * (1024 * 1024 + 1)  # the server was started with --max-upload-mb 1
    with server.http(write_token) as http:
        put = http.put(
            "/api/v1/store/objects/kx_1/ka_big", params={"root": server.store}, content=big
        )
        assert put.status_code == 413 and "limit" in put.json()["detail"]
        # JSON routes have their own, smaller limit (--max-json-mb, 4 MiB by default).
        rpc = http.post("/api/v1/runner/executions/kx_1/logs", content=b"[" * (4 * 1024 * 1024 + 1))
        assert rpc.status_code == 413

        def chunks() -> Any:
            for _ in range(3):
                yield b"y" * (512 * 1024)

        streamed = http.put(
            "/api/v1/store/objects/kx_1/ka_streamed", params={"root": server.store},
            content=chunks(),
        )  # fmt: skip
        assert streamed.status_code == 413
        assert (
            http.get(
                "/api/v1/store/objects/kx_1/ka_streamed", params={"root": server.store}
            ).status_code
            == 404
        )


def test_nothing_outside_the_store_can_be_read_or_written(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    store = server.store
    with server.http(write_token) as http:
        for key in [
            "../secret.txt",
            "kx_1/../../secret.txt",
            "%2e%2e/secret.txt",
            ".hidden/x",
            "a//b",
        ]:
            answer = http.get(f"/api/v1/store/objects/{key}", params={"root": store})
            assert answer.status_code in (404, 422), (key, answer.text)
            assert "top secret" not in answer.text
        foreign = http.get("/api/v1/store/keys", params={"root": tmp_path.as_uri()})
        assert foreign.status_code == 404 and "does not serve" in foreign.json()["detail"]
        # A record that points outside the store (a write token can write records).
        now = time.time()
        record = {
            "exec_id": "kx_evil", "flow": "evil", "status": "completed", "created_at": now,
            "updated_at": now, "flow_ref": "m:f", "artifact_store": tmp_path.as_uri(),
        }  # fmt: skip
        evil = {
            "artifact_id": "ka_evil", "exec_id": "kx_evil", "name": "x", "version": 1,
            "producer": "input", "producer_key": None, "type_ref": "builtins:str",
            "serializer": "bytes", "content_hash": "0", "size": 10, "uri": secret.as_uri(),
            "created_at": now,
        }  # fmt: skip
        inside = dict(evil, artifact_id="ka_evil2", uri=f"{store}/../secret.txt")
        assert (
            http.post(
                "/api/v1/executions", json={"execution": record, "inputs": [evil, inside]}
            ).status_code
            == 201
        )
        for artifact_id in ("ka_evil", "ka_evil2"):
            download = http.get(f"/api/v1/artifacts/{artifact_id}/download")
            assert download.status_code == 404, download.text
            assert "top secret" not in download.text
            meta = http.get(f"/api/v1/artifacts/{artifact_id}").json()
            assert "top secret" not in json.dumps(meta)


def test_pickled_artifacts_are_never_unpickled_by_the_server(
    server: ServerProcess, client: Client, write_token: str, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "pickled.py", flows.PICKLED)
    marker = tmp_path / "unpickled"
    started = client.start(script, str(marker))
    assert started["status"] == "completed"
    exec_id = started["exec_id"]
    with server.http(write_token) as http:
        view = http.get(f"/api/v1/executions/{exec_id}").json()
        assert view["result"] is None  # not JSON, and not opened
        artifacts = http.get(f"/api/v1/executions/{exec_id}/artifacts").json()
        pickled = [a for a in artifacts if a["serializer"] == "pickle"]
        assert pickled
        for a in pickled:
            meta = http.get(f"/api/v1/artifacts/{a['artifact_id']}").json()
            assert meta["preview"]["kind"] == "binary"
            raw = http.get(f"/api/v1/artifacts/{a['artifact_id']}/download")
            assert raw.status_code == 200 and raw.headers["x-kitaru-serializer"] == "pickle"
        assert (
            http.get("/api/v1/artifacts/diff", params={"a": exec_id, "b": exec_id}).status_code
            == 200
        )
    with httpx.Client(base_url=server.url, cookies={"kitaru_session": write_token}) as browser:
        assert browser.get(f"/ui/executions/{exec_id}").status_code == 200
    assert not marker.exists()


def test_webhook_urls_answer_one_wait_and_only_while_valid(
    server: ServerProcess, write_token: str, waiting: dict[str, Any]
) -> None:
    exec_id = waiting["exec_id"]
    with server.http(write_token) as http:
        made = http.post(
            f"/api/v1/executions/{exec_id}/waits/review/webhook", json={"expires_in": 60}
        )
        assert made.status_code == 200
        url = httpx.URL(made.json()["url"])
        too_long = http.post(
            f"/api/v1/executions/{exec_id}/waits/review/webhook", json={"expires_in": 1e9}
        )
        assert too_long.status_code == 422
    params = dict(url.params)
    hook = f"{server.url}{url.path}"
    forged = {
        "tampered signature": {**params, "sig": "0" * 64},
        "later expiry": {**params, "expires": str(int(params["expires"]) + 3600)},
        "expired": {**params, "expires": str(int(time.time()) - 10)},
    }
    for what, query in forged.items():
        answer = httpx.post(hook, params=query, json={"approved": True, "score": 5})
        assert answer.status_code == 401, what
        assert answer.json() == {"detail": "webhook signature invalid or expired"}
    other_wait = hook.replace("/review", "/copies")
    assert httpx.post(other_wait, params=params, json=3).status_code == 401
    invalid = httpx.post(hook, params=params, json={"approved": True, "score": "high"})
    assert invalid.status_code == 422 and "score" in invalid.json()["detail"]
    not_json = httpx.post(hook, params=params, content=b"{")
    assert not_json.status_code == 422
    accepted = httpx.post(hook, params=params, json={"approved": True, "score": 5})
    assert accepted.status_code == 202, accepted.text
    # The server runs no flow code: answered, the local-stack execution is ready to continue.
    view = server.wait_for(write_token, exec_id, {"queued"})
    assert view["ready"]["command"] == f"kitaru executions resume {exec_id}"
    answered = {w["key"]: w["status"] for w in view["waits"]}
    assert answered["review"] == "answered"
