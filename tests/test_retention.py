"""Retention: `kitaru gc` and `kitaru executions delete`, as real processes, on SQLite and
PostgreSQL, with artifacts on local disk and on S3 (moto). Every test ends by listing
the store and reading every journal table (tests/retention_world.py:check)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kitaru.artifacts
from kitaru._ids import new_id
from kitaru.artifacts import ArtifactStore
from kitaru.journal import open_journal
from tests import retention_world as world
from tests.artifacts.backends import make
from tests.journal.conftest import fresh_postgres_url

N = 5000


@dataclass
class Place:
    journal: Any
    store: ArtifactStore
    env: dict[str, str]

    def gc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.kitaru("gc", *args)

    def kitaru(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kitaru", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "kitaru", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def count(self) -> int:
        return int(self.journal._x("SELECT COUNT(*) FROM executions").fetchone()[0])

    def snapshot(self) -> dict[str, Any]:
        tables = ("executions", "calls", "waits", "logs", "events", "artifacts", "call_cache")
        counts = {t: self.journal._x(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        runs = self.journal._x("SELECT exec_id FROM schedule_runs ORDER BY tick").fetchall()
        return {**counts, "runs": runs, "objects": sorted(self.store.list())}


PLACES = [
    pytest.param(("sqlite", "local"), id="sqlite-local"),
    pytest.param(("sqlite", "s3-moto"), id="sqlite-s3", marks=pytest.mark.services),
    pytest.param(("postgres", "local"), id="postgres-local", marks=pytest.mark.services),
    pytest.param(("postgres", "s3-moto"), id="postgres-s3", marks=pytest.mark.services),
]


# Every store: the byte side is the ArtifactStore contract's `list` and `delete`.
EVERY_STORE = [
    *PLACES,
    pytest.param(("sqlite", "gcs"), id="sqlite-gcs", marks=pytest.mark.services),
    pytest.param(("sqlite", "azure"), id="sqlite-azure", marks=pytest.mark.services),
]


@pytest.fixture(params=PLACES)
def place(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Place]:
    kind, store_kind = request.param
    url = f"sqlite:///{tmp_path / 'journal.db'}" if kind == "sqlite" else fresh_postgres_url()
    backend = make(store_kind, tmp_path_factory)
    backend.apply(monkeypatch)
    kitaru.artifacts.reset_for_tests()
    store = kitaru.artifacts.open_store(backend.uri)
    env = {
        **backend.subprocess_env(),
        "KITARU_JOURNAL_URL": url,
        "KITARU_ARTIFACT_STORE": backend.uri,
        "KITARU_HOME": os.environ["KITARU_HOME"],
    }
    journal = open_journal(url)
    yield Place(journal, store, env)
    journal.close()
    kitaru.artifacts.reset_for_tests()


def test_gc_of_5000_executions_leaves_no_orphan_bytes_and_no_dangling_records(
    place: Place,
) -> None:
    made = world.build(place.journal, place.store, N)
    world.check(place.journal, place.store)
    before = place.snapshot()

    dry = place.gc("--older-than", "30d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert place.snapshot() == before  # --dry-run changes nothing
    said = _json(dry.stdout)
    assert said["dry_run"] and len(said["deleted"]) == len(made.old)

    done = place.gc("--older-than", "30d", "--json")
    assert done.returncode == 0, done.stderr
    report = _json(done.stdout)
    assert set(report["deleted"]) == made.old
    # The sources of live replays stay, and say why.
    assert set(report["kept"]) <= made.keep and report["kept"]
    assert all("is still going" in why for why in report["kept"].values())
    left = world.check(place.journal, place.store)
    assert left == made.keep
    # A schedule run keeps its tick with no execution.
    runs = place.journal._x("SELECT exec_id FROM schedule_runs").fetchall()
    assert len(runs) == len(before["runs"]) and any(r[0] is None for r in runs)

    again = place.gc("--older-than", "30d", "--json")
    assert again.returncode == 0 and _json(again.stdout)["deleted"] == []


@pytest.mark.parametrize("place", EVERY_STORE, indirect=True)
def test_lineage_kept_until_asked_and_the_live_replay_keeps_what_it_reuses(
    place: Place,
) -> None:
    made = world.build(place.journal, place.store, 500)
    assert place.gc("--older-than", "30d").returncode == 0
    sources = {
        e.replayed_from
        for e in place.journal.list_executions(limit=1000)
        if e.replayed_from and e.status in world.LIVE
    }
    assert sources and sources <= world.check(place.journal, place.store)

    done = place.gc("--older-than", "30d", "--with-lineage", "--json")
    assert done.returncode == 0, done.stderr
    assert set(_json(done.stdout)["deleted"]) == sources
    left = world.check(place.journal, place.store)  # reused objects and answers stay
    assert left == made.keep - sources


def test_a_gc_killed_midway_and_run_again_completes_cleanly(place: Place) -> None:
    # Every execution has objects on disk: a batch's bytes take long enough to die amid.
    local = place.store.uri.startswith("file:")
    made = world.build(place.journal, place.store, N, every_object=1 if local else 5)
    total = place.count()
    gc = place.popen("gc", "--older-than", "30d")
    # SIGKILL as soon as the first batch is committed: rows gone, bytes maybe not.
    while place.count() == total and gc.poll() is None:
        time.sleep(0.002)
    gc.send_signal(signal.SIGKILL)
    gc.wait()
    assert gc.returncode == -signal.SIGKILL, "gc ended before it could be killed"
    assert len(made.keep) < place.count() < total  # midway
    rerun = place.gc("--older-than", "30d", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert world.check(place.journal, place.store) == made.keep


def _json(text: str) -> Any:
    import json

    return json.loads(text)


@pytest.mark.parametrize("place", EVERY_STORE, indirect=True)
def test_orphans_of_ended_or_gone_executions_are_found_by_listing_the_store(
    place: Place,
) -> None:
    made = world.build(place.journal, place.store, 300)
    month_ago = time.time() - 40 * world.DAY
    live = next(e.exec_id for e in place.journal.list_executions(status="running"))
    old_gone = f"kx_{int(month_ago * 1000):012x}{'7' * 16}"
    young_gone = new_id("kx")
    ended = sorted(made.old)[0]
    # What processes killed between writing an output and recording it leave.
    left_by_crashes = {
        f"{old_gone}/{new_id('ka')}": True,  # an execution deleted (or never recorded)
        f"{ended}/{new_id('ka')}": True,  # a resume of it that died, long ago
        f"{young_gone}/{new_id('ka')}": False,  # inputs of an execution being created
        f"{live}/{new_id('ka')}": False,  # an output about to be recorded
        "notes/not-written-by-kitaru.txt": False,
    }
    for key in left_by_crashes:
        place.store.write(key, b"x" * 20000)

    dry = place.gc("--older-than", "30d", "--orphans", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert _json(dry.stdout)["orphans"] == 2
    assert set(left_by_crashes) <= set(place.store.list())
    done = place.gc("--older-than", "30d", "--orphans", "--json")
    assert done.returncode == 0, done.stderr
    assert _json(done.stdout)["orphans"] == 2
    listed = set(place.store.list())
    for key, orphan in left_by_crashes.items():
        assert (key not in listed) == orphan, key
        if not orphan:
            place.store.delete(key)
    assert world.check(place.journal, place.store) == made.keep


@pytest.mark.parametrize(
    "place",
    [
        PLACES[0],
        pytest.param(("postgres", "local"), id="postgres-local", marks=pytest.mark.services),
    ],
    indirect=True,
)
def test_two_collections_at_once_delete_each_execution_once_and_agree(place: Place) -> None:
    made = world.build(place.journal, place.store, N)
    both = [place.popen("gc", "--older-than", "30d", "--json") for _ in range(2)]
    reports = []
    for gc in both:
        out, err = gc.communicate(timeout=300)
        assert gc.returncode == 0, err
        reports.append(_json(out))
    first, second = ({*r["deleted"]} for r in reports)
    assert first | second == made.old and not first & second
    assert world.check(place.journal, place.store) == made.keep
