"""The execution's trace (`traceparent` metadata) through the runner API: a traced run
sets it once; a run token cannot move the execution into another trace or store
anything but a W3C traceparent under that key."""

from __future__ import annotations

from tests.server.hostile import create, run_token
from tests.server_process import ServerProcess

FIRST = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
OTHER = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"


def test_the_trace_is_set_once_and_only_as_a_traceparent(
    server: ServerProcess, write_token: str
) -> None:
    with server.http(write_token) as http:
        exec_id = create(http)
    runner = f"/api/v1/runner/executions/{exec_id}/metadata"
    with server.http(run_token(server, exec_id)) as run:
        for bad in ("not a traceparent", 7, {"trace": FIRST}, FIRST + "-extra"):
            refused = run.post(runner, json={"metadata": {"traceparent": bad}})
            assert refused.status_code == 422 and "W3C traceparent" in refused.text
        assert run.post(runner, json={"metadata": {"traceparent": FIRST}}).json() == {
            "merged": True
        }
        # The same again is harmless (a retried request); another trace is refused.
        assert run.post(runner, json={"metadata": {"traceparent": FIRST}}).status_code == 200
        moved = run.post(runner, json={"metadata": {"traceparent": OTHER}})
        assert moved.status_code == 422 and "set once" in moved.text
    with server.http(write_token) as http:
        shown = http.get(f"/api/v1/records/executions/{exec_id}").json()
    assert shown["metadata"]["traceparent"] == FIRST


def test_a_run_notes_its_span_and_clears_it_when_it_ends(
    server: ServerProcess, write_token: str
) -> None:
    # What a traced run sends (kitaru/_otel.py): its span while it runs, then nothing, so
    # that a resume knows whether the run before it ended.
    with server.http(write_token) as http:
        exec_id = create(http)
    runner = f"/api/v1/runner/executions/{exec_id}/metadata"
    going = {"run": 1, "span": OTHER, "parent": FIRST, "started_at": 1796525117.25}
    with server.http(run_token(server, exec_id)) as run:
        assert run.post(runner, json={"metadata": {"traceparent.run": going}}).status_code == 200
        with server.http(write_token) as http:
            record = http.get(f"/api/v1/records/executions/{exec_id}").json()
        assert record["metadata"]["traceparent.run"] == going
        assert run.post(runner, json={"metadata": {"traceparent.run": None}}).status_code == 200
