"""Parallel steps: keys by branch, input fingerprints, map/submit, timeouts, retry policy."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import kitaru
from kitaru import (
    KitaruClient,
    KitaruUsageError,
    RetryPolicy,
    checkpoint,
    flow,
)
from tests.conftest import kitaru_cli, run_python, write_script


def keys(exec_id: str) -> list[str]:
    return [c["key"] for c in KitaruClient().executions.get(exec_id).checkpoints]


def test_a_flow_without_tasks_or_threads_keeps_its_keys() -> None:
    @checkpoint
    def step(i: int) -> int:
        return i

    @flow
    def plain() -> int:
        return step(1) + step(2) + step.with_id("last")(3)

    handle = plain.run()
    assert handle.result() == 6
    assert keys(handle.exec_id) == ["step", "step#2", "last"]


def test_tasks_and_threads_key_calls_by_the_order_the_flow_started_them() -> None:
    @checkpoint
    async def search(q: str) -> str:
        return f"result for {q}"

    async def worker(q: str, delay: float) -> str:
        await asyncio.sleep(delay)  # the last one started reaches the checkpoint first
        return await search(q)

    @checkpoint
    def fetch(q: str) -> str:
        return q.upper()

    @flow
    async def fan_out() -> list[str]:
        found = await asyncio.gather(*[worker(q, d) for q, d in [("a", 0.06), ("b", 0.0)]])
        fetched = await asyncio.to_thread(lambda: list(ThreadPoolExecutor(2).map(fetch, "xy")))
        return [*found, *fetched]

    handle = fan_out.run()
    assert handle.result() == ["result for a", "result for b", "X", "Y"]
    assert sorted(keys(handle.exec_id)) == ["1/search", "2/search", "3.1/fetch", "3.2/fetch"]


def test_map_returns_results_in_input_order_within_the_concurrency_bound() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    @checkpoint
    def slow_square(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02 * (5 - i % 5))
        with lock:
            running[0] -= 1
        return i * i

    @flow
    def squares() -> list[int]:
        return slow_square.map(range(10), concurrency=3)

    handle = squares.run()
    assert handle.result() == [i * i for i in range(10)]
    assert peak[0] == 3
    assert sorted(keys(handle.exec_id)) == sorted(f"{i}/slow_square" for i in range(1, 11))


def test_map_of_an_async_checkpoint_and_of_several_iterables() -> None:
    @checkpoint
    async def join(a: str, b: int) -> str:
        await asyncio.sleep(0.01 * (3 - b))
        return f"{a}{b}"

    @flow
    async def joined() -> list[str]:
        return await join.map(["a", "b", "c"], [0, 1, 2], concurrency=2)

    assert joined.run().result() == ["a0", "b1", "c2"]
    with pytest.raises(KitaruUsageError, match="different lengths"):
        kitaru.map(len, [1, 2], [3])
    with pytest.raises(KitaruUsageError, match="concurrency must be 1 or more"):
        kitaru.map(len, ["a"], concurrency=0)


def test_a_failed_item_lets_running_items_finish_and_starts_no_more() -> None:
    started: list[int] = []

    @checkpoint
    def item(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("item 1 is broken")
        time.sleep(0.2 if i == 0 else 0)
        return i

    @flow
    def mapped() -> list[int]:
        return item.map(range(6), concurrency=2)

    handle = mapped.run()
    assert handle.status == "failed"
    assert "item 1 is broken" in (KitaruClient().executions.get(handle.exec_id).error or "")
    # Item 0 was running when item 1 failed: it finished and its output is kept.
    calls = {
        c["key"]: c["status"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints
    }
    assert calls["1/item"] == "completed" and calls["2/item"] == "failed"
    assert len(started) < 6


def test_submit_runs_calls_in_their_own_branches() -> None:
    @checkpoint
    def double(i: int) -> int:
        return 2 * i

    @checkpoint
    async def triple(i: int) -> int:
        return 3 * i

    @flow
    def sync_flow() -> int:
        futures = [double.submit(i) for i in range(4)]
        return sum(f.result() for f in futures)

    @flow
    async def async_flow() -> int:
        tasks = [triple.submit(i) for i in range(4)]
        return sum(await asyncio.gather(*tasks))

    sync_handle = sync_flow.run()
    assert sync_handle.result() == 12
    assert sorted(keys(sync_handle.exec_id)) == [f"{i}/double" for i in range(1, 5)]
    async_handle = async_flow.run()
    assert async_handle.result() == 18
    assert sorted(keys(async_handle.exec_id)) == [f"{i}/triple" for i in range(1, 5)]
    # Outside a flow they are plain parallel calls.
    assert double.submit(5).result() == 10
    assert kitaru.map(double, [1, 2]) == [2, 4]


def test_kitaru_llm_calls_fan_out_with_kitaru_map() -> None:
    from kitaru._llm import _aliases
    from tests.llm_server import LLMServer

    server = LLMServer().start()
    try:
        _aliases.register(
            _aliases.ModelAlias(name="fast", model="openai/gpt-4o-mini", base_url=server.base_url)
        )

        @flow
        def ask_all(questions: list[str]) -> list[str]:
            return kitaru.map(lambda q: kitaru.llm(q, model="fast"), questions, concurrency=2)

        handle = ask_all.run(["one", "two", "three"])
        assert handle.result() == ["echo: one", "echo: two", "echo: three"]
    finally:
        server.stop()
    assert sorted(keys(handle.exec_id)) == ["1/llm", "2/llm", "3/llm"]


def test_timeout_fails_the_attempt_and_a_retry_can_succeed() -> None:
    attempts: list[float] = []

    @checkpoint(timeout=0.2, retries=1)
    def sometimes_stuck() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            time.sleep(2)  # abandoned on its thread; its result is thrown away
            return "too late"
        return "in time"

    @checkpoint(timeout=0.1)
    async def always_stuck() -> str:
        await asyncio.sleep(5)
        return "never"

    @flow
    def timed() -> str:
        return sometimes_stuck()

    @flow
    async def stuck() -> str:
        return await always_stuck()

    started = time.monotonic()
    handle = timed.run()
    assert handle.result() == "in time"
    assert time.monotonic() - started < 1.9  # not the 2 s of the abandoned attempt
    [call] = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert call["attempts"] == 2

    failed = stuck.run()
    assert failed.status == "failed"
    view = KitaruClient().executions.get(failed.exec_id)
    assert "CheckpointTimeoutError" in (view.error or "")
    assert "timeout of 0.1 s" in (view.error or "")


def test_retry_policy_backs_off_caps_and_stops_on_non_retryable_errors() -> None:
    policy = RetryPolicy(max_attempts=5, delay=0.01, backoff=3, max_delay=0.05)
    waits = [policy.wait_before_next(n, RuntimeError()) for n in (1, 2, 3, 4, 5)]
    assert waits[:4] == pytest.approx([0.01, 0.03, 0.05, 0.05]) and waits[4] is None
    jittered = RetryPolicy(max_attempts=3, delay=1, jitter=0.5)
    assert 1 <= (jittered.wait_before_next(1, RuntimeError()) or 0) <= 1.5
    calls: list[str] = []

    @checkpoint(retry_policy=RetryPolicy(max_attempts=4, non_retryable=(ValueError,)))
    def picky(kind: str) -> str:
        calls.append(kind)
        raise ValueError("bad input") if kind == "value" else RuntimeError("flaky")

    @flow
    def run_picky(kind: str) -> str:
        return picky(kind)

    assert run_picky.run("value").status == "failed"
    assert calls == ["value"]
    assert run_picky.run("runtime").status == "failed"
    assert calls[1:] == ["runtime"] * 4
    with pytest.raises(KitaruUsageError, match="either retries/retry_delay or retry_policy"):
        checkpoint(retries=1, retry_policy=RetryPolicy())(lambda: None)
    with pytest.raises(KitaruUsageError, match="max_attempts must be 1 or more"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(KitaruUsageError, match="timeout must be a number"):
        checkpoint(timeout=0)(lambda: None)


def test_names_that_look_like_branch_keys_are_refused() -> None:
    with pytest.raises(KitaruUsageError, match="3/search"):
        checkpoint(name="2.1/search")(lambda: None)
    assert checkpoint(name="tools/search")(lambda: None).name == "tools/search"


SCRIPT = """
import os, sys
from concurrent.futures import ThreadPoolExecutor
from kitaru import checkpoint, flow

@checkpoint
def search(q: str) -> str:
    if os.environ.get("DIE_AT") == q:
        os._exit(9)
    return f"result for {q}"

@checkpoint
def summary(topic: str) -> str:
    return f"summary of {topic}"

@flow
def agent(topic: str) -> dict:
    head = summary(os.environ.get("TOPIC", topic))
    qs = [f"q{i}" for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda q: search.with_id(q)(q), qs))
    return {"head": head, "found": dict(zip(qs, found))}

if __name__ == "__main__":
    print(agent.run("owls").exec_id)
"""


def test_with_id_calls_on_threads_resume_by_id(tmp_path: Path) -> None:
    script = write_script(tmp_path / "agent.py", SCRIPT)
    crashed = run_python(script, env={"DIE_AT": "q5"})
    assert crashed.returncode == 9
    [execution] = KitaruClient().executions.list()
    resumed = kitaru_cli("executions", "resume", execution.exec_id, "--json")
    assert resumed.returncode == 0, resumed
    found = resumed.json()["result"]["found"]
    assert found == {f"q{i}": f"result for q{i}" for i in range(8)}


def test_a_resumed_call_with_other_inputs_fails_and_names_the_argument(tmp_path: Path) -> None:
    script = write_script(tmp_path / "agent.py", SCRIPT)
    crashed = run_python(script, env={"DIE_AT": "q2"})
    assert crashed.returncode == 9
    [execution] = KitaruClient().executions.list()
    resumed = kitaru_cli("executions", "resume", execution.exec_id, env={"TOPIC": "bats"})
    assert resumed.returncode == 1
    error = KitaruClient().executions.get(execution.exec_id).error or ""
    assert "NonDeterminismError" in error and "'summary'" in error
    assert "argument 0 differs" in error
    assert "other inputs than the journal recorded" in error
    # Nothing stored was lost: with the same inputs it resumes.
    again = kitaru_cli("executions", "resume", execution.exec_id, "--json")
    assert again.returncode == 0, again
    assert again.json()["result"]["head"] == "summary of owls"


def test_executions_get_shows_a_fan_out_as_one_group_with_its_wall_time() -> None:
    @checkpoint
    def search(q: str) -> str:
        time.sleep(0.1)
        return q

    @checkpoint
    def join(found: list[str]) -> str:
        return ",".join(found)

    @flow
    def research() -> str:
        return join(search.map([f"q{i}" for i in range(8)], concurrency=4))

    handle = research.run()
    view = kitaru_cli("executions", "get", handle.exec_id, "--json").json()
    [group] = view["parallel_groups"]
    assert (group["first"], group["last"], group["calls"]) == (0, 7, 8)
    # Four at a time: the group's wall time is well under the sum of its calls' times
    # (about a quarter; half leaves room for a busy machine).
    assert 0.75 < group["sum_s"] and group["wall_s"] < group["sum_s"] / 2
    assert [c["group"] for c in view["checkpoints"]] == [0] * 8 + [None]
    assert {c["branch"] for c in view["checkpoints"][:8]} == {str(i) for i in range(1, 9)}
    text = kitaru_cli("executions", "get", handle.exec_id).stdout
    [row] = [line for line in text.splitlines() if line.startswith("search ×8")]
    # The row shows the group's wall time and the sum of its calls, as judged above.
    from kitaru.cli._output import duration

    assert "(1/search … 8/search)" in row and f"in parallel (sum {duration(group['sum_s'])})" in row
    assert row.split("ran")[1].split()[0] == duration(group["wall_s"]), row
