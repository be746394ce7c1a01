"""Every write route of a real server (SQLite, which stores whatever type it is given),
fed ill-typed bodies by hypothesis: no answer is a 500, and nothing stored makes a later
read fail. The bodies use each route's own member names (from the OpenAPI document)
with values of any JSON type, nested, non-finite numbers, unknown members, and bodies
that are not objects at all."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server_process import ServerProcess

READS = [
    "/api/v1/executions",
    "/api/v1/records/executions",
    "/api/v1/executions/kx_fuzz",
    "/api/v1/records/executions/kx_fuzz",
    "/api/v1/records/executions/kx_fuzz/calls",
    "/api/v1/records/executions/kx_fuzz/waits",
    "/api/v1/records/executions/kx_fuzz/logs",
    "/api/v1/executions/kx_fuzz/artifacts",
    "/api/v1/waits",
    "/api/v1/records/waits",
    "/api/v1/stacks",
    "/api/v1/deployments",
    "/api/v1/records/deployments",
]
PATH_VALUES = {
    "exec_id": "kx_fuzz",
    "key": "approve",
    "name": "local",
    "flow": "fuzzflow",
    "version": "1",
    "tag": "default",
    "artifact_id": "ka_fuzz",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("fuzzed")
    proc = ServerProcess(
        f"sqlite:///{workdir / 'journal.db'}", workdir, args=("--sweep-interval", "0")
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> str:
    token = server.token("admin", name="fuzzer")
    now = time.time()
    with server.http(token) as http:
        made = http.post(
            "/api/v1/executions",
            json={
                "execution": {
                    "exec_id": "kx_fuzz", "flow": "fuzzflow", "status": "running",
                    "created_at": now, "updated_at": now, "owner": "fuzz:1:0:1",
                    "lease_until": now + 3600, "artifact_store": server.store,
                },
                "inputs": [],
            },
        )  # fmt: skip
        assert made.status_code == 201, made.text
    return token


def _routes(server: ServerProcess, token: str) -> list[tuple[str, str, list[str]]]:
    """(method, path, body member names) of every route that changes something."""
    with server.http(token) as http:
        document = http.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in ("post", "put", "delete", "patch"):
                continue
            members: list[str] = []
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                schema = body["schema"]
                for option in schema.get("anyOf", [schema]):
                    ref = option.get("$ref")
                    if ref:
                        members = list(schemas[ref.rsplit("/", 1)[-1]].get("properties", {}))
            concrete = path
            for name, value in PATH_VALUES.items():
                concrete = concrete.replace("{" + name + "}", value)
            concrete = concrete.replace("{key:path}", "kx_fuzz/x")
            found.append((method.upper(), concrete, members))
    return found


def _body(draw: Any, members: list[str]) -> bytes:
    shape = draw(st.sampled_from(["members", "members", "any", "not json"]))
    if shape == "not json":
        return draw(st.binary(max_size=40))
    if shape == "any" or not members:
        value: Any = draw(json_values)
    else:
        value = {name: draw(json_values) for name in members if draw(st.booleans())}
        if draw(st.booleans()):
            value[draw(st.text(max_size=8))] = draw(json_values)
    # Python writes NaN and Infinity, which JSON does not have: the server must say so.
    return json.dumps(value, allow_nan=True).encode()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_write_route_answers_500_or_stores_what_breaks_a_read(
    server: ServerProcess, admin: str, data: st.DataObject
) -> None:
    routes = _cached_routes(server, admin)
    method, path, members = data.draw(st.sampled_from(routes), label="route")
    body = _body(data.draw, members)
    with server.http(admin) as http:
        answer = http.request(
            method,
            path,
            content=body,
            params={"root": server.store},
            headers={"content-type": "application/json"},
        )
        assert answer.status_code < 500, (method, path, body[:300], answer.text)
        for read in READS:
            got = http.get(read)
            assert got.status_code in (200, 404), (method, path, body[:300], read, got.text)


_ROUTES: dict[str, list[tuple[str, str, list[str]]]] = {}


def _cached_routes(server: ServerProcess, token: str) -> list[tuple[str, str, list[str]]]:
    if server.url not in _ROUTES:
        routes = _routes(server, token)
        assert len(routes) > 25
        _ROUTES[server.url] = routes
    return _ROUTES[server.url]


# Literals Python's json module reads but no JSON answer can carry, and where a valid
# body leaves room for them (a member of any type: metadata, a schema, a signature).
UNSENDABLE = ["NaN", "Infinity", "-Infinity", "1e999", "-2e308", '"\\ud800"', '"x\\udc80y"']
_NOW = time.time()
FREE_FORM = {
    "/api/v1/executions": (
        '{"execution": {"exec_id": "kx_@ID@", "flow": "f", "status": "completed", '
        f'"created_at": {_NOW}, "updated_at": {_NOW}, "metadata": @FREE@}}}}'
    ),
    "/api/v1/runner/executions/kx_fuzz/metadata": '{"metadata": @FREE@}',
    "/api/v1/runner/executions/kx_fuzz/waits": (
        '{"owner": "fuzz:1:0:1", "wait": {"exec_id": "kx_fuzz", "key": "k@ID@", '
        f'"name": "k", "seq": 1, "schema": @FREE@, "created_at": {_NOW}}}}}'
    ),
    "/api/v1/deployments": (
        '{"deployment": {"flow": "fuzzflow", "version": 0, "image": "i", "digest": "d", '
        '"content_hash": "c", "lock_hash": "l", "source_hash": "s", "kitaru_version": "1", '
        '"signature": [@FREE@], "flow_ref": "m:f", "project_root": "/app", "stack": "s", '
        '"orchestrator": "docker", "builder": "docker", "reused": false, "created_by": "x", '
        f'"created_at": {_NOW}}}}}'
    ),
    "/api/v1/executions/kx_fuzz/waits/approve/answer": '{"value": @FREE@}',
}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_route_stores_nan_infinity_or_a_lone_surrogate(
    server: ServerProcess, admin: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(sorted(FREE_FORM)), label="route")
    bad = data.draw(st.sampled_from(UNSENDABLE), label="value")
    # Somewhere inside an otherwise valid value of the free-form member.
    where = data.draw(json_values.filter(lambda v: isinstance(v, dict | list)), label="around")
    text = json.dumps(where)
    if isinstance(where, dict):
        text = text[:-1] + (", " if where else "") + '"k": ' + "@BAD@" + "}"
        if bad.startswith('"') and data.draw(st.booleans(), label="as a key"):
            text = text.replace('"k": @BAD@', bad + ": 1")
    else:
        text = text[:-1] + (", " if where else "") + "@BAD@]"
    body = FREE_FORM[path].replace("@FREE@", text).replace("@BAD@", bad)
    body = body.replace("@ID@", data.draw(st.text("abcdef0123456789", min_size=8, max_size=8)))
    with server.http(admin) as http:
        answer = http.post(
            path, content=body.encode(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, (path, body[:300], answer.text)
        for read in READS:
            got = http.get(read)
            assert got.status_code in (200, 404), (path, body[:300], read, got.text)
