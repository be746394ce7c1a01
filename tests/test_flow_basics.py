"""Flows and checkpoints in one process: results, keys, reuse, typed outputs."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pydantic import BaseModel

import kitaru
from kitaru import KitaruClient, checkpoint, flow


class Report(BaseModel):
    title: str
    score: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


@checkpoint
def make_report(title: str) -> Report:
    return Report(title=title, score=0.5)


@checkpoint
def make_point(x: int) -> Point:
    return Point(x, x + 1)


@checkpoint
def make_reports(n: int) -> list[Report]:
    return [Report(title=str(i), score=i) for i in range(n)]


@checkpoint
def plain(i: int) -> dict[str, object]:
    return {"i": i, "tuple": (1, 2)}


@flow
def typed_flow(title: str) -> Report:
    report = make_report(title)
    point = make_point(3)
    reports = make_reports(2)
    assert isinstance(report, Report)
    assert point == Point(3, 4)
    assert reports[1] == Report(title="1", score=1)
    plain(1)
    plain(2)
    return report


def test_run_returns_handle_with_result_and_typed_artifacts() -> None:
    handle = typed_flow.run("hello")
    assert handle.exec_id.startswith("kx_")
    assert handle.status == "completed"
    assert handle.result() == Report(title="hello", score=0.5)

    execution = KitaruClient().executions.get(handle.exec_id)
    assert [c["key"] for c in execution.checkpoints] == [
        "make_report",
        "make_point",
        "make_reports",
        "plain",
        "plain#2",
    ]
    assert execution.result == {"title": "hello", "score": 0.5}

    artifacts = {a.name: a for a in KitaruClient().artifacts.list(handle.exec_id)}
    assert artifacts["make_report"].load() == Report(title="hello", score=0.5)
    assert artifacts["make_point"].load() == Point(3, 4)
    assert artifacts["make_report"].serializer == "pydantic"
    assert artifacts["make_point"].serializer == "dataclass"
    assert artifacts["title"].producer == "input"


def test_calling_a_flow_runs_it_durably_and_returns_its_value() -> None:
    assert typed_flow("direct") == Report(title="direct", score=0.5)
    executions = KitaruClient().executions.list(flow="typed_flow")
    assert len(executions) == 1 and executions[0].status == "completed"


def test_checkpoint_outside_a_flow_is_a_plain_call() -> None:
    assert make_point(1) == Point(1, 2)
    assert KitaruClient().executions.list() == []


def test_explicit_ids_and_named_checkpoints() -> None:
    @checkpoint(name="fetch")
    def fetch_page(url: str) -> str:
        return url.upper()

    @flow(name="crawler")
    def crawl(urls: list[str]) -> list[str]:
        return [fetch_page.with_id(f"fetch-{u}")(u) for u in urls] + [fetch_page("z")]

    handle = crawl.run(["a", "b"])
    assert handle.result() == ["A", "B", "Z"]
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert keys == ["fetch-a", "fetch-b", "fetch"]


def test_async_checkpoints_and_flows() -> None:
    @checkpoint
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @flow
    async def parallel(n: int) -> list[int]:
        return list(await asyncio.gather(*(double(i) for i in range(n))))

    handle = parallel.run(4)
    assert handle.result() == [0, 2, 4, 6]
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert sorted(keys) == ["double", "double#2", "double#3", "double#4"]
    assert asyncio.run(parallel(2)) == [0, 2]


def test_save_load_and_log() -> None:
    @checkpoint
    def research(topic: str) -> str:
        kitaru.log(tokens=12, model="offline")
        kitaru.save("notes", {"topic": topic})
        kitaru.save("notes", {"topic": topic, "v": 2})
        return f"notes on {topic}"

    @flow
    def agent(topic: str) -> str:
        kitaru.log(customer="acme")
        return research(topic)

    handle = agent.run("durability")
    assert kitaru.load(handle.exec_id, "notes") == {"topic": "durability", "v": 2}
    assert kitaru.load(handle.exec_id, "research") == "notes on durability"
    execution = KitaruClient().executions.get(handle.exec_id)
    assert execution.checkpoints[0]["metadata"] == {"tokens": 12, "model": "offline"}
    assert execution.data["metadata"] == {"customer": "acme"}
    versions = [
        a.version for a in KitaruClient().artifacts.list(handle.exec_id) if a.name == "notes"
    ]
    assert versions == [1, 2]


def test_unserializable_output_names_checkpoint_type_and_fix() -> None:
    @checkpoint
    def bad() -> object:
        return Opaque(1)

    @flow
    def uses_bad() -> None:
        bad()

    handle = uses_bad.run()
    assert handle.status == "failed"
    with pytest.raises(kitaru.ExecutionFailedError) as info:
        handle.result()
    message = str(info.value)
    assert "checkpoint 'bad'" in message and "Opaque" in message and "allow_pickle=True" in message


class Opaque:
    def __init__(self, v: int) -> None:
        self.v = v


def test_pickle_is_a_named_fallback() -> None:
    @checkpoint(allow_pickle=True)
    def pickled() -> Opaque:
        return Opaque(3)

    @flow
    def uses_pickle() -> int:
        return pickled().v

    handle = uses_pickle.run()
    assert handle.result() == 3
    artifact = next(a for a in KitaruClient().artifacts.list(handle.exec_id) if a.name == "pickled")
    assert artifact.serializer == "pickle"


def test_checkpoint_retries() -> None:
    attempts: list[int] = []

    @checkpoint(retries=2)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("transient")
        return "ok"

    @flow
    def retrying() -> str:
        return flaky()

    handle = retrying.run()
    assert handle.result() == "ok"
    assert KitaruClient().executions.get(handle.exec_id).checkpoints[0]["attempts"] == 3


def test_public_surface_is_pinned() -> None:
    assert sorted(kitaru.__all__) == sorted(
        [
            "Checkpoint",
            "CheckpointTimeoutError",
            "ConfigurationError",
            "ExecutionFailedError",
            "ExecutionHandle",
            "ExecutionWaitingError",
            "Flow",
            "InvalidConfigurationError",
            "JournalDamagedError",
            "JournalUnavailableError",
            "KitaruClient",
            "KitaruError",
            "KitaruUsageError",
            "LLMError",
            "MissingAPIKeyError",
            "ModelNotFoundError",
            "NonDeterminismError",
            "NotFoundError",
            "ProviderError",
            "RetryPolicy",
            "SerializationError",
            "WaitTimeoutError",
            "__version__",
            "checkpoint",
            "emit",
            "flow",
            "llm",
            "load",
            "log",
            "map",
            "save",
            "sleep",
            "submit",
            "wait",
        ]
    )


def test_a_dataclass_argument_with_a_field_not_set_yet_is_taken_as_it_is() -> None:
    @dataclasses.dataclass
    class Job:
        name: str
        notes: list[str] = dataclasses.field(init=False)  # set later, if ever

    @checkpoint
    def run_job(job: Job) -> str:
        return f"ran {job.name}"

    @flow
    def jobs() -> str:
        return run_job(Job("a"))

    assert jobs.run().result() == "ran a"
