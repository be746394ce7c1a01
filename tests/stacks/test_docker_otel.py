"""One trace across a container stack run: the submitting process starts the trace and
hands each container its context (TRACEPARENT); the runs in the containers send their
spans to the same OTLP/HTTP receiver (host networking: the containers reach it on the
loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli, run_python
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.stacks._services import extra_ca, fresh_bucket, fresh_database, need, write_project

SERVICES = (
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
    "KITARU_TEST_POSTGRES_URL",
    "KITARU_TEST_MOTO_URL",
)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def traced_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: OTLPReceiver
) -> dict[str, Any]:
    env = need(*SERVICES)
    moto = env["KITARU_TEST_MOTO_URL"]
    bucket = fresh_bucket(moto)
    for key, value in {
        "KITARU_JOURNAL_URL": fresh_database(),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # The submitting side (the script, the CLI) traces too.
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "submitter",
    }.items():
        monkeypatch.setenv(key, value)
    registered = kitaru_cli(
        "stack", "register", "traced", "--orchestrator", "docker",
        "--artifact-store", f"s3://{bucket}/runs",
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        "--set", "remove_containers=true",
        "--set", f"environment.AWS_ENDPOINT_URL={moto}",
        "--set", "environment.AWS_DEFAULT_REGION=us-east-1",
        "--set", "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
        "--set", "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
        # What turns tracing on in the containers (and the otel extra in the image).
        "--set", f"environment.OTEL_EXPORTER_OTLP_ENDPOINT={receiver.endpoint}",
        "--set", "environment.OTEL_SERVICE_NAME=container",
        "--use",
    )  # fmt: skip
    assert registered.returncode == 0, registered
    return {"project": write_project(tmp_path / "project")}


def status(exec_id: str) -> str:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return str(view["status"])


def until(exec_id: str, wanted: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while (now := status(exec_id)) != wanted and time.monotonic() < deadline:
        if now not in ("queued", "running"):
            break
        time.sleep(0.5)
    return now


def named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first build of the image with the otel extra
def test_container_runs_continue_the_submitters_trace(
    traced_stack: dict[str, Any], receiver: OTLPReceiver
) -> None:
    project = traced_stack["project"]
    started = run_python(project / "agent.py", "kites", cwd=project, timeout=1200)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]
    assert until(exec_id, "waiting") == "waiting"
    answered = kitaru_cli("executions", "input", exec_id, "approve", "true", "--json")
    assert answered.returncode == 0, answered
    assert until(exec_id, "completed") == "completed"

    spans = receiver.wait_for(lambda s: len(named(s, "kitaru.run agent")) == 2, timeout=60)
    assert len({s.trace_id for s in spans}) == 1
    [execution] = named(spans, "kitaru.execution agent")
    assert execution.parent_id == "" and execution.service == "submitter"
    submits = named(spans, "kitaru.submit agent")
    assert len(submits) == 2  # the first run, and the run after the answer
    assert {s.parent_id for s in submits} == {execution.span_id}
    assert {s.service for s in submits} == {"submitter"}
    assert {s.attr("kitaru.orchestrator") for s in submits} == {"docker"}

    runs = sorted(named(spans, "kitaru.run agent"), key=lambda s: s.attr("kitaru.run"))
    # Each container's run is the child of the submission that started it.
    assert [r.parent_id for r in runs] == [
        s.span_id for s in sorted(submits, key=lambda s: s.start_ns)
    ]
    assert {r.service for r in runs} == {"container"}
    assert [r.attr("kitaru.run.status") for r in runs] == ["waiting", "completed"]
    children = [
        sorted(
            (s.name, s.attr("kitaru.checkpoint.origin")) for s in spans if s.parent_id == r.span_id
        )
        for r in runs
    ]
    assert children == [
        [("draft", "ran"), ("fetch", "ran")],
        [("draft", "reused"), ("fetch", "reused")],
    ]
    fetch = next(s for s in spans if s.name == "fetch" and s.parent_id == runs[0].span_id)
    assert fetch.attr("kitaru.checkpoint.output.size") > 30_000  # ~40 KB of text, as JSON
    assert [e[1]["kitaru.wait.outcome"] for r in runs for e in r.events] == ["waiting", "answered"]
