"""Schedules on a journal: ticks, catchup, claims, failures (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kitaru import _schedules
from kitaru._errors import InvalidInputError
from kitaru.journal import Journal, connect_journal, open_journal
from kitaru.journal._schedules import ScheduleRecord
from tests.conftest import kitaru_cli, write_script
from tests.journal.conftest import fresh_postgres_url

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    if request.param == "sqlite":
        return open_journal(f"sqlite:///{tmp_path / 'journal.db'}")
    return open_journal(fresh_postgres_url())


def schedule(
    name: str, cron: str, catchup: str, *, start: float = T0, **target: object
) -> ScheduleRecord:
    return ScheduleRecord(
        name=name, flow="hello", cron=cron, timezone="UTC", catchup=catchup,
        args={"args": [], "kwargs": {"name": "x"}, "inputs": {"name": "x"}},
        target={"kind": "flow", "flow_ref": "sflows:hello", "stack": "local",
                "artifact_store": "memory://unused", "queue": "default", **target},
        next_tick=_schedules.next_after(cron, "UTC", start), created_at=start, updated_at=start,
    )  # fmt: skip


def started_ticks(journal: Journal, name: str) -> list[float]:
    return sorted(r.tick for r in journal.schedule_runs(name) if r.status == "started")


def test_catchup_all_starts_every_missed_tick_once(journal: Journal, tmp_path: Path) -> None:
    journal.put_schedule(schedule("every", "* * * * * *", "all", artifact_store=_store(tmp_path)))
    runs = _schedules.fire_due(journal, by="test", now=T0 + 5.5)
    assert [r.tick - T0 for r in runs] == [1, 2, 3, 4, 5]
    assert _schedules.fire_due(journal, by="test", now=T0 + 5.5) == []  # nothing owed twice
    executions = journal.list_executions(flow="hello")
    assert sorted(e.metadata["schedule"]["name"] for e in executions) == ["every"] * 5
    assert all(e.status == "queued" and e.queue == "default" for e in executions)
    [shown] = [e for e in executions if e.exec_id == runs[0].exec_id]
    assert shown.metadata["schedule"]["tick"] == "2026-06-01T12:00:01.000Z"
    inputs = journal.list_artifacts(shown.exec_id, producer="input")
    assert [a.name for a in inputs] == ["name"]


def test_catchup_latest_starts_only_the_newest_and_records_the_skipped(
    journal: Journal, tmp_path: Path
) -> None:
    journal.put_schedule(
        schedule("newest", "* * * * * *", "latest", artifact_store=_store(tmp_path))
    )
    [run] = _schedules.fire_due(journal, by="test", now=T0 + 5.5)
    assert run.tick == T0 + 5
    history = journal.schedule_runs("newest")
    assert [(r.status, r.tick - T0) for r in history] == [("started", 5), ("skipped", 1)]
    assert "4 tick(s)" in (history[1].error or "")


def test_catchup_skip_starts_nothing_late_then_the_next_tick_on_time(
    journal: Journal, tmp_path: Path
) -> None:
    journal.put_schedule(schedule("hourly", "0 * * * *", "skip", artifact_store=_store(tmp_path)))
    # Down from 12:00 to 14:30: the 13:00 and 14:00 ticks are over an hour late.
    assert _schedules.fire_due(journal, by="test", now=T0 + 2.5 * 3600) == []
    found = journal.get_schedule("hourly")
    assert found is not None and found.next_tick == T0 + 3 * 3600
    [run] = _schedules.fire_due(journal, by="test", now=T0 + 3 * 3600 + 2)
    assert run.tick == T0 + 3 * 3600
    assert [r.status for r in journal.schedule_runs("hourly")] == ["started", "skipped"]


def test_two_schedulers_racing_start_each_tick_once(journal: Journal, tmp_path: Path) -> None:
    journal.put_schedule(schedule("race", "* * * * * *", "all", artifact_store=_store(tmp_path)))
    others = [connect_journal(journal.url) for _ in range(4)]
    gate = threading.Barrier(len(others))
    won: list[list[object]] = []

    def scheduler(j: Journal, i: int) -> None:
        gate.wait()
        for second in range(1, 21):
            won.append(list(_schedules.fire_due(j, by=f"s{i}", now=T0 + second + 0.5)))

    threads = [threading.Thread(target=scheduler, args=(j, i)) for i, j in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ticks = [r.tick for runs in won for r in runs]  # type: ignore[attr-defined]
    assert sorted(ticks) == [T0 + s for s in range(1, 21)]  # each once, none missed
    per_tick: dict[str, int] = {}
    for e in journal.list_executions(flow="hello", limit=1000):
        per_tick[e.metadata["schedule"]["tick"]] = (
            per_tick.get(e.metadata["schedule"]["tick"], 0) + 1
        )
    assert len(per_tick) == 20 and set(per_tick.values()) == {1}


def test_a_tick_that_cannot_start_is_recorded_failed_and_others_still_fire(
    journal: Journal, tmp_path: Path
) -> None:
    broken_one = schedule("broken", "* * * * * *", "latest")
    del broken_one.target["flow_ref"]  # a record damaged in the journal
    journal.put_schedule(broken_one)
    ghost = schedule("ghost", "* * * * * *", "latest")
    ghost.flow, ghost.target = "ghost", {"kind": "deployment", "tag": None}
    journal.put_schedule(ghost)
    journal.put_schedule(schedule("fine", "* * * * * *", "latest", artifact_store=_store(tmp_path)))
    runs = _schedules.fire_due(journal, by="test", now=T0 + 1.5)
    assert [r.schedule for r in runs] == ["fine"]
    [broken] = [r for r in journal.schedule_runs("broken") if r.status != "skipped"]
    assert broken.status == "failed" and broken.exec_id is None and broken.error
    [missing] = journal.schedule_runs("ghost")
    assert missing.status == "failed" and "no deployment" in (missing.error or "").lower()
    # A failed tick is still a claimed tick: it does not start again at the next pass.
    assert _schedules.fire_due(journal, by="test", now=T0 + 1.5) == []


def test_a_paused_schedule_fires_nothing_and_resumes_from_now(
    journal: Journal, tmp_path: Path
) -> None:
    journal.put_schedule(schedule("p", "* * * * * *", "all", artifact_store=_store(tmp_path)))
    journal.pause_schedule("p", paused=True, next_tick=None, now=T0)
    assert _schedules.fire_due(journal, by="test", now=T0 + 100) == []
    found = journal.get_schedule("p")
    assert found is not None
    journal.pause_schedule(
        "p", paused=False, next_tick=_schedules.resume_tick(found, T0 + 100), now=T0 + 100
    )
    assert [r.tick for r in _schedules.fire_due(journal, by="test", now=T0 + 101.5)] == [T0 + 101]


def test_ticks_across_dst_changes_are_each_once_in_local_time() -> None:
    ny = ZoneInfo("America/New_York")
    # 2:30 does not exist on 8 March 2026 (clocks jump 2:00 -> 3:00); it starts once, at 3:00.
    start = datetime(2026, 3, 7, 12, 0, tzinfo=ny).timestamp()
    ticks = [start]
    for _ in range(3):
        ticks.append(_schedules.next_after("30 2 * * *", "America/New_York", ticks[-1]))
    local = [datetime.fromtimestamp(t, ny).strftime("%d %H:%M") for t in ticks[1:]]
    assert local == ["08 03:00", "09 02:30", "10 02:30"]
    # 1:30 happens twice on 1 November 2026 (2:00 -> 1:00): it starts once.
    start = datetime(2026, 10, 31, 12, 0, tzinfo=ny).timestamp()
    ticks = [start]
    for _ in range(3):
        ticks.append(_schedules.next_after("30 1 * * *", "America/New_York", ticks[-1]))
    days = [datetime.fromtimestamp(t, ny).day for t in ticks[1:]]
    assert days == [1, 2, 3] and ticks == sorted(set(ticks))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *"], "cron expression"),
        (["--cron", "* * * *"], "cron expression"),
        (["--cron", "0 * * * *", "--timezone", "Mars/Olympus"], "time zone"),
        (["--cron", "0 * * * *", "--args", "{bad"], "not valid JSON"),
        (["--cron", "0 * * * *", "--args", '{"nobody": 1}'], "do not fit"),
        (["--cron", "0 * * * *", "--catchup", "some"], "catchup"),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_stored(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _flows(tmp_path)
    result = kitaru_cli("schedules", "create", "s", "--flow", "sflows:hello", *args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert kitaru_cli("schedules", "list", "--json").json() == []


def test_an_unknown_flow_or_a_module_that_fails_to_import_is_refused(tmp_path: Path) -> None:
    _flows(tmp_path)
    write_script(tmp_path / "broken.py", "raise RuntimeError('boom at import')\n")
    for spec, message in [
        ("sflows:nope", "no flow named 'nope'"),
        ("missing_mod:hello", "cannot import"),
        ("broken:hello", "boom at import"),
    ]:
        result = kitaru_cli("schedules", "create", "s", "--flow", spec, "--cron", "0 * * * *",
                            cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result


def test_the_cli_creates_shows_pauses_and_deletes(tmp_path: Path) -> None:
    _flows(tmp_path)
    made = kitaru_cli("schedules", "create", "nightly", "--flow", "sflows:hello", "--cron",
                      "30 2 * * *", "--timezone", "Europe/Berlin", "--args", '{"name": "kit"}',
                      "--json", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made
    shown = made.json()
    assert shown["flow"] == "hello" and shown["timezone"] == "Europe/Berlin"
    tick = datetime.fromisoformat(shown["next_tick"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (tick.hour, tick.minute) == (2, 30)
    again = kitaru_cli("schedules", "create", "nightly", "--flow", "sflows:hello", "--cron",
                       "0 * * * *", "--args", '{"name": "kit"}', cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and "exists" in again.stderr
    assert kitaru_cli("schedules", "pause", "nightly", "--json").json()["paused"] is True
    assert kitaru_cli("schedules", "resume", "nightly", "--json").json()["paused"] is False
    assert kitaru_cli("schedules", "history", "nightly", "--json").json() == []
    assert kitaru_cli("schedules", "delete", "nightly").returncode == 0
    gone = kitaru_cli("schedules", "show", "nightly")
    assert gone.returncode == 2 and "no schedule named" in gone.stderr


def test_names_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        _schedules.check_name("../etc")


def _store(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


def _flows(folder: Path) -> None:
    write_script(
        folder / "sflows.py",
        """
        from kitaru import flow

        @flow
        def hello(name: str) -> str:
            return "hi " + name
        """,
    )


DOOMED_SCHEDULER = """
import sys, time
from kitaru import _schedules
from kitaru.deployments import _invoke
from kitaru.journal import open_journal

journal_url, crash = sys.argv[1], sys.argv[2]
invoke = _invoke.invoke


def held_at_the_crash_point(*args, **kwargs):
    # The test kills this process (SIGKILL) once it says where it is.
    if crash == "before-invoking":
        print("claimed", flush=True)
        time.sleep(600)
    try:
        invoke(*args, **kwargs)
    finally:
        print("invoked", flush=True)
        time.sleep(600)


_invoke.invoke = held_at_the_crash_point
_schedules.fire_due(open_journal(journal_url), by="doomed")
"""


@pytest.mark.parametrize("crash", ["before-invoking", "after-invoking"])
def test_a_deployment_tick_left_starting_by_a_killed_scheduler_starts_once(
    tmp_path: Path, crash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler is SIGKILLed after claiming a deployment's tick, before or after the
    invocation stored its execution; the next pass after STALLED seconds, from another
    process, finishes the tick: one execution for it, whichever way it died."""
    import signal
    import subprocess
    import sys
    import time

    from kitaru.journal import DeploymentRecord

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    monkeypatch.setenv("KITARU_JOURNAL_URL", url)  # the stack's journal too, and the script's
    journal = open_journal(url)
    made = kitaru_cli("stack", "register", "bg", "-o", "local", "-a", _store(tmp_path),
                      "--set", "mode=subprocess")  # fmt: skip
    assert made.returncode == 0, made
    param = {"name": "day", "kind": "POSITIONAL_OR_KEYWORD", "required": True,
             "annotation": "str", "json_type": "string"}  # fmt: skip
    journal.create_deployment(
        DeploymentRecord(
            flow="nightly", version=0, image="img@sha256:01", digest="sha256:01",
            content_hash="c" * 64, lock_hash="l" * 64, source_hash="s" * 64,
            kitaru_version="1.0.0", signature=[param], flow_ref="agent:nightly",
            flow_file="agent.py", import_path=".", project_root=str(tmp_path), stack="bg",
            orchestrator="local", builder="docker", reused=False, created_by="me",
            created_at=time.time(),
        ),
        tag="default",
    )  # fmt: skip
    now = time.time()
    journal.put_schedule(
        ScheduleRecord(
            name="leap", flow="nightly", target={"kind": "deployment", "tag": None},
            cron="0 0 29 2 *", timezone="UTC", args={"args": ["mon"], "kwargs": {}},
            catchup="latest", next_tick=now - 1, created_at=now - 60, updated_at=now - 60,
        )
    )  # fmt: skip
    script = write_script(tmp_path / "doomed.py", DOOMED_SCHEDULER)
    doomed = subprocess.Popen([sys.executable, str(script), url, crash], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() in ("claimed", "invoked")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    [left] = journal.schedule_runs("leap")
    assert (left.status, left.by) == ("starting", "doomed")
    key = f"schedule:leap:{_schedules._iso(left.tick)}"
    before = journal.list_executions(idempotency_key=key)
    assert len(before) == (0 if crash == "before-invoking" else 1)

    # Not yet stalled: a live but slow scheduler is left alone.
    assert _schedules.fire_due(journal, by="next", now=time.time()) == []
    assert journal.schedule_runs("leap")[0].status == "starting"
    later = time.time() + _schedules.STALLED + 1
    _schedules.fire_due(journal, by="next", now=later)
    [done] = journal.schedule_runs("leap")
    executions = journal.list_executions(idempotency_key=key)
    assert len(executions) == 1  # the tick started once, whichever way its scheduler died
    assert done.status in ("started", "failed") and done.by == "next"
    if before:
        assert (done.status, done.exec_id) == ("started", before[0].exec_id)
    # Nothing is left to recover: a later pass starts nothing more.
    assert _schedules.fire_due(journal, by="third", now=later + 2 * _schedules.STALLED) == []
    assert len(journal.list_executions(flow="nightly")) == 1
