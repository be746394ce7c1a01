"""kitaru.wait(): the process exits while waiting; input from elsewhere continues the flow."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import BaseModel

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from tests.conftest import REPO, kitaru_cli, run_python, write_script


def test_review_flow_waits_then_input_from_another_process_and_directory(tmp_path: Path) -> None:
    started = run_python(REPO / "examples" / "review_flow.py", "kites", cwd=tmp_path)
    assert started.returncode == 0, started
    assert "is waiting" in started.stdout
    [execution] = kitaru_cli("executions", "list", "--json").json()
    exec_id = execution["exec_id"]
    assert execution["status"] == "waiting"

    waits = kitaru_cli("executions", "waits", "--json").json()
    assert [(w["exec_id"], w["key"], w["schema"]) for w in waits] == [
        (exec_id, "approve_draft", {"type": "bool"})
    ]
    assert waits[0]["question"] == "Publish this draft about 'kites'?"

    elsewhere = tmp_path / "other-dir"
    elsewhere.mkdir()
    bad = kitaru_cli("executions", "input", exec_id, "approve_draft", '"yes"', cwd=elsewhere)
    assert bad.returncode == 2
    assert "expected bool" in bad.stderr
    assert kitaru_cli("executions", "get", exec_id, "--json").json()["status"] == "waiting"

    not_json = kitaru_cli("executions", "input", exec_id, "approve_draft", "yes", cwd=elsewhere)
    assert not_json.returncode == 2 and "not valid JSON" in not_json.stderr

    answered = kitaru_cli(
        "executions", "input", exec_id, "approve_draft", "true", "--json", cwd=elsewhere
    )
    assert answered.returncode == 0, answered
    view = answered.json()
    assert view["status"] == "completed"
    assert view["result"] == {"published": True, "words": 13}
    assert [c["origin"] for c in view["checkpoints"]] == ["journal", "journal", "ran"]

    again = kitaru_cli("executions", "input", exec_id, "approve_draft", "false")
    assert again.returncode == 2 and "already answered" in again.stderr


class Budget(BaseModel):
    amount: int
    currency: str = "EUR"


def test_waits_return_typed_values_loops_and_defaults() -> None:
    seen: list[object] = []

    @checkpoint
    def ask_count() -> int:
        return 2

    @flow
    def planner() -> dict[str, object]:
        budget = kitaru.wait("budget", schema=Budget, question="How much?")
        seen.append(budget)
        answers = [kitaru.wait("review", schema=int) for _ in range(ask_count())]
        return {"budget": budget.amount, "answers": answers}

    handle = planner.run()
    assert handle.status == "waiting"
    with pytest.raises(kitaru.ExecutionWaitingError, match="'budget'"):
        handle.result()

    client = KitaruClient()
    with pytest.raises(kitaru.KitaruUsageError):
        client.executions.input(handle.exec_id, "budget", {"currency": "USD"})
    assert handle.status == "waiting"
    client.executions.input(handle.exec_id, "budget", {"amount": 5})
    assert isinstance(seen[-1], Budget) and seen[-1] == Budget(amount=5)
    client.executions.input(handle.exec_id, "review", 1)
    keys = [w["key"] for w in client.executions.get(handle.exec_id).waits]
    assert keys == ["budget", "review", "review#2"]
    client.executions.input(handle.exec_id, "review#2", 2)
    assert handle.result() == {"budget": 5, "answers": [1, 2]}


def test_wait_timeout_takes_default_or_fails() -> None:
    @flow
    def with_default() -> str:
        return str(kitaru.wait("ok", schema=str, timeout=0.2, default="auto"))

    @flow
    def without_default() -> str:
        return str(kitaru.wait("ok", schema=str, timeout=0.2))

    client = KitaruClient()
    a, b = with_default.run(), without_default.run()
    assert a.status == b.status == "waiting"
    time.sleep(0.3)
    assert [w["status"] for w in client.executions.waits()] == ["timed_out", "timed_out"]
    assert client.executions.resume(a.exec_id).status == "completed"
    assert a.result() == "auto"
    resumed = client.executions.resume(b.exec_id)
    assert resumed.status == "failed" and "timed out" in str(resumed.error)


def test_sweep_resumes_executions_whose_waits_timed_out(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "timeouts.py",
        """
        import kitaru
        from kitaru import flow

        @flow
        def patient() -> str:
            return str(kitaru.wait("ok", schema=str, timeout=0.2, default="auto"))

        @flow
        def strict() -> str:
            return str(kitaru.wait("ok", schema=str, timeout=0.2))

        @flow
        def forever() -> str:
            return str(kitaru.wait("ok", schema=str))

        for f in (patient, strict, forever):
            f.run()
    """,
    )
    assert run_python(script).returncode == 0
    time.sleep(0.3)
    swept = kitaru_cli("executions", "sweep", "--json")
    assert swept.returncode == 0, swept
    outcome = {e["flow"]: e["status"] for e in swept.json()}
    assert outcome == {"patient": "completed", "strict": "failed"}
    statuses = {e["flow"]: e["status"] for e in kitaru_cli("executions", "list", "--json").json()}
    assert statuses == {"patient": "completed", "strict": "failed", "forever": "waiting"}
    assert kitaru_cli("executions", "sweep").stdout.strip() == "no timed-out waits"


def test_wait_is_not_swallowed_by_except_exception() -> None:
    @flow
    def careless() -> str:
        try:
            kitaru.wait("go", schema=bool)
        except Exception:
            return "swallowed"
        return "continued"

    handle = careless.run()
    assert handle.status == "waiting"
    KitaruClient().executions.input(handle.exec_id, "go", True)
    assert handle.result() == "continued"


def test_wait_misuse_is_refused() -> None:
    @checkpoint
    def inside() -> None:
        kitaru.wait("nope")

    @flow
    def bad_place() -> None:
        inside()

    @flow
    def two_sites() -> None:
        kitaru.wait("same")
        kitaru.wait("same")

    @flow
    def bad_schema() -> None:
        kitaru.wait("x", schema=set)

    client = KitaruClient()
    with pytest.raises(kitaru.KitaruUsageError, match="inside a @flow"):
        kitaru.wait("outside")

    failed = client.executions.get(bad_place.run().exec_id)
    assert failed.status == "failed" and "inside a checkpoint" in str(failed.error)

    waiting = two_sites.run()
    resumed = client.executions.input(waiting.exec_id, "same", 1)
    assert resumed.status == "failed" and "used at two places" in str(resumed.error)

    failed = client.executions.get(bad_schema.run().exec_id)
    assert "not supported" in str(failed.error)


def test_input_for_unknown_wait_or_execution(tmp_path: Path) -> None:
    unknown = kitaru_cli("executions", "input", "kx_nope", "w", "1")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: execution kx_nope")
    assert "Traceback" not in unknown.stderr

    @flow
    def one_wait() -> None:
        kitaru.wait("approve", schema=bool)

    handle = one_wait.run()
    missing = kitaru_cli("executions", "input", handle.exec_id, "aprove", "true")
    assert missing.returncode == 2 and "its waits: approve" in missing.stderr


def test_script_flow_waits_and_resumes_detached(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "job.py",
        """
        import kitaru
        from kitaru import flow, checkpoint

        @checkpoint
        def before() -> int:
            return 1

        @flow
        def job() -> int:
            value = before()
            return value + int(kitaru.wait("number", schema=int))

        job.run()
    """,
    )
    assert run_python(script).returncode == 0
    [execution] = kitaru_cli("executions", "list", "--json").json()
    exec_id = execution["exec_id"]
    detached = kitaru_cli(
        "executions", "input", exec_id, "number", "41", "--detach", "--json", cwd=tmp_path.parent
    )
    assert detached.returncode == 0, detached
    deadline = time.time() + 30
    while time.time() < deadline:
        view = kitaru_cli("executions", "get", exec_id, "--json").json()
        if view["status"] == "completed":
            break
        time.sleep(0.2)
    assert view["status"] == "completed" and view["result"] == 42
    assert len(kitaru_cli("executions", "list", "--json").json()) == 1
