"""kitaru.sleep(): the process exits while the execution sleeps; a sweep wakes it later."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru._errors import KitaruUsageError
from kitaru.journal import current_journal
from tests.conftest import kitaru_cli, run_python, write_script

NAP = """
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def before() -> str:
    print("before ran")
    return "a"

@checkpoint
def after(x: str) -> str:
    return x + "b"

@flow
def nap(seconds: float) -> str:
    first = before()
    kitaru.sleep(seconds)
    return after(first)

if __name__ == "__main__":
    import sys

    nap.run(float(sys.argv[1]))
"""


def _start(tmp_path: Path, seconds: float) -> tuple[str, float]:
    """Run the nap script; the execution's id and the wake time it recorded."""
    script = write_script(tmp_path / "nap.py", NAP)
    ran = run_python(script, str(seconds), env={"KITARU_QUIET": "0"})
    assert ran.returncode == 0, ran
    assert "is sleeping until" in ran.stderr
    [sleep] = [w for w in current_journal().pending_waits()]
    assert sleep.timeout_at is not None
    return sleep.exec_id, sleep.timeout_at


def test_a_two_second_sleep_releases_the_process_and_a_sweep_finishes_it(tmp_path: Path) -> None:
    exec_id, wake = _start(tmp_path, 2)
    # The process that ran the flow has exited: the sleep holds none.
    record = current_journal().get_execution(exec_id)
    assert record is not None and record.status == "waiting" and record.owner is None
    time.sleep(max(0.0, wake - time.time()) + 0.1)
    swept = kitaru_cli("executions", "sweep", "--json")
    assert swept.returncode == 0, swept
    assert [e["status"] for e in swept.json()] == ["completed"]
    done = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert done["result"] == "ab"
    assert datetime.fromisoformat(done["ended_at"]).timestamp() >= wake
    assert [w["status"] for w in done["waits"]] == ["woke"]
    logs = kitaru_cli("executions", "logs", exec_id).stdout
    assert logs.count("before ran") == 1  # read back after the sleep, never run again


def test_before_its_time_a_sleep_shows_and_keeps_sleeping(tmp_path: Path) -> None:
    exec_id, wake = _start(tmp_path, 600)
    shown = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert shown["status"] == "waiting"
    assert datetime.fromisoformat(shown["sleeping_until"]).timestamp() == pytest.approx(wake, abs=1)
    assert [(w["key"], w["kind"], w["status"]) for w in shown["waits"]] == [
        ("sleep", "sleep", "sleeping")
    ]
    assert "sleeping   until" in kitaru_cli("executions", "get", exec_id).stdout
    early = kitaru_cli("executions", "resume", exec_id)
    assert early.returncode == 0, early
    assert "sleeping until" in early.stderr and "keeps sleeping" in early.stderr
    assert kitaru_cli("executions", "sweep").stdout.strip() == "no timed-out waits"
    again = kitaru_cli("executions", "get", exec_id, "--json").json()
    assert again["status"] == "waiting" and again["sleeping_until"] == shown["sleeping_until"]
    assert again["runs"] == 1  # the early resume did not run the flow
    refused = kitaru_cli("executions", "input", exec_id, "sleep", "null")
    assert refused.returncode != 0 and "kitaru.sleep()" in refused.stderr


def test_sleep_until_a_passed_instant_returns_at_once_and_timedelta_works() -> None:
    @checkpoint
    def one() -> int:
        return 1

    @flow
    def quick() -> int:
        kitaru.sleep(until=datetime.now(UTC) - timedelta(seconds=1))
        kitaru.sleep(timedelta(0))
        return one()

    handle = quick.run()
    assert handle.status == "completed" and handle.result() == 1
    keys = [w.key for w in current_journal().waits(handle.exec_id)]
    assert keys == ["sleep", "sleep#2"]


def test_a_resume_reads_the_recorded_wake_time_back() -> None:
    @flow
    def later() -> str:
        kitaru.sleep(0.5)
        return "up"

    handle = later.run()
    assert handle.status == "waiting"
    [recorded] = current_journal().waits(handle.exec_id)
    time.sleep(0.6)
    client = KitaruClient()
    assert client.executions.resume(handle.exec_id).status == "completed"
    [after] = current_journal().waits(handle.exec_id)
    assert after.timeout_at == recorded.timeout_at and after.status == "answered"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "not both and not neither"),
        ((1,), {"until": datetime.now(UTC)}, "not both and not neither"),
        ((-1,), {}, "0 or more"),
        ((), {"until": datetime(2030, 1, 1)}, "no time zone"),
    ],
)
def test_bad_sleeps_say_what_to_write(args: tuple, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    @flow
    def bad() -> None:
        kitaru.sleep(*args, **kwargs)

    handle = bad.run()
    record = current_journal().get_execution(handle.exec_id)
    assert record is not None and record.status == "failed" and message in str(record.error)


def test_outside_a_flow_sleep_is_time_sleep() -> None:
    started = time.monotonic()
    kitaru.sleep(0.05)
    assert time.monotonic() - started >= 0.05
    with pytest.raises(KitaruUsageError):
        kitaru.sleep()
