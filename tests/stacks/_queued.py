"""An execution queued on a stack whose orchestrator talks to a local stand-in of its
platform (tests/stacks/_recorder.py), without building an image: the record is created
as `Flow.run` creates it, then handed to the orchestrator by the same `_submit` every
submission goes through. What the user sees is then read with the CLI, in another
process, as a user would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kitaru import _execute, _flow_inputs, flow
from kitaru.journal import current_journal
from kitaru.stacks import _resolve
from kitaru.stacks._submit import _submit, make_orchestrator
from tests.conftest import kitaru_cli

IMAGE = "registry.example/agents/agent@sha256:" + "a" * 64


@flow
def agent(topic: str) -> str:
    return topic.upper()


def queue(stack_name: str, image: str = IMAGE) -> str:
    """Queue an execution of `agent` on the stack; its run id is the orchestrator's."""
    journal = current_journal()
    stack = _resolve.get_stack(journal, stack_name)
    record = _execute.new_record(
        agent, stack=stack.name, artifact_store=stack.artifact_store, now=time.time(), owner=None
    )
    record.status = "queued"
    record.orchestrator = stack.orchestrator
    record.project_root = str(Path(__file__).parent)
    record.metadata = {"image": image}
    journal.create_execution(
        record,
        _flow_inputs.input_artifacts(
            record.exec_id, stack.artifact_store, agent.fn, {"topic": "tides"}
        ),
    )
    _submit(journal, record, stack, make_orchestrator(stack))
    return record.exec_id


def get(exec_id: str) -> dict[str, Any]:
    shown = kitaru_cli("executions", "get", exec_id, "--json")
    view: dict[str, Any] = shown.json()
    # The exit code says how the execution is doing: 1 once it failed.
    assert shown.returncode == (1 if view["status"] in ("failed", "crashed") else 0), shown
    return view


def settled(exec_id: str, timeout: float = 60) -> dict[str, Any]:
    """`executions get` until the execution is no longer queued. A reader asks the
    orchestrator only once an execution has been queued a few seconds
    (kitaru/stacks/_reconcile.py QUEUED_CHECK_AFTER), so this takes that long."""
    deadline = time.monotonic() + timeout
    view = get(exec_id)
    while view["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.5)
        view = get(exec_id)
    return view


def still_queued_after_asking(exec_id: str, asked: Any, timeout: float = 60) -> dict[str, Any]:
    """`executions get` until `asked()` says the platform was asked about the run."""
    deadline = time.monotonic() + timeout
    while not asked() and time.monotonic() < deadline:
        get(exec_id)  # each read past a few seconds queued asks the platform
        time.sleep(0.5)
    assert asked(), "no reader asked the platform about the run"
    return get(exec_id)


def run_of(exec_id: str) -> str:
    """The run id the orchestrator gave the execution, as `executions get` shows it."""
    run_id: str = get(exec_id)["run_id"]
    return run_id


def failed(exec_id: str, timeout: float = 60) -> str:
    """`executions get` until the execution settles, which must be `failed`; its error."""
    view = settled(exec_id, timeout=timeout)
    assert view["status"] == "failed", view
    error: str = view["error"]
    return error


def until(what: Any, timeout: float = 120, said: str = "the platform did not get there") -> None:
    """Poll `what()` until it is true."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, said
        time.sleep(0.3)


def register_cloud_run(api_url: str, tmp_path: Path, *extra: str) -> Any:
    """`kitaru stack register cloud` on GCP Cloud Run, its API at `api_url` (a stand-in)."""
    return kitaru_cli(
        "stack", "register", "cloud",
        "--orchestrator", "gcp_cloud_run",
        # Containers would read the journal URL from Secret Manager; here it is SQLite.
        "--journal", "secret:kitaru-journal",
        "--artifact-store", (tmp_path / "artifacts").as_uri(),
        "--registry", f"{api_url.removeprefix('http://')}/kitaru",
        "--set", "project=p",
        "--set", "region=europe-west1",
        "--set", f"api_endpoint={api_url}",
        *extra,
    )  # fmt: skip
