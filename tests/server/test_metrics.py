"""`/metrics` of a real server: flows that complete (with model calls against a local
model server), fail, wait, crash, wait in a queue and run on a worker, all through the
server as a client would; then the page is parsed with prometheus_client's parser and
every number is checked against the journal, read directly. Scrapes without a token,
with a run token, and what the page must never show, as an attacker would try them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kitaru._lease import effective_status
from kitaru.journal import CallRecord, ExecutionRecord, Journal, open_journal
from kitaru.journal._stats import DURATION_BUCKETS
from tests.llm_server import LLMServer
from tests.server.conftest import running_server
from tests.server.hostile import run_token
from tests.server_process import ServerProcess
from tests.workers.support import Workers, env_through_server, wait_until

SECRET = "5ecret-d0-not-show"

FLOWS = f"""
import json, os, sys
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def outline(topic: str) -> str:
    return "outline of " + topic


@checkpoint
def explode(topic: str) -> str:
    raise RuntimeError("the tool broke on {SECRET}")


@checkpoint
def die() -> str:
    os._exit(9)


@flow
def writer(topic: str) -> str:
    text = outline(topic)
    title = kitaru.llm("a title for " + text, model="openai/gpt-4o-mini", name="title")
    return title + kitaru.llm("polish " + text, model="openai/gpt-4o-mini")


@flow
def broken(topic: str) -> str:
    outline(topic)
    return explode(topic)


@flow
def asks(topic: str) -> bool:
    outline(topic)
    return kitaru.wait("approve", schema=bool, question="publish?")


@flow
def crashes() -> str:
    return die()


@flow
def later(i: int) -> int:
    return outline(str(i)) and i


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "submit":
        handle = later.submit(int(sys.argv[3]), queue=sys.argv[2])
    else:
        handle = {{"writer": writer, "broken": broken, "asks": asks, "crashes": crashes}}[
            what
        ].run(*sys.argv[2:])
    print(json.dumps({{"exec_id": handle.exec_id}}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory, "--sweep-interval", "0", "--metrics-interval", "0")


@pytest.fixture(scope="module")
def models() -> Iterator[LLMServer]:
    s = LLMServer().start()
    yield s
    s.stop()


def scrape(server: ServerProcess, token: str) -> tuple[str, dict[str, list[Any]]]:
    with server.http(token) as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f.samples for f in text_string_to_metric_families(answer.text)}
    return answer.text, families


def samples(
    families: dict[str, list[Any]], family: str, sample: str
) -> dict[tuple[str, ...], float]:
    """{label values (sorted by label name): value} of one sample name."""
    return {
        tuple(v for _, v in sorted(s.labels.items())): s.value
        for s in families[family]
        if s.name == sample
    }


def nonzero(found: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in found.items() if v}


# -- what the journal says, read directly ------------------------------------------------
def journal_executions(journal: Journal) -> Counter[tuple[str, str]]:
    return Counter(
        (e.flow, effective_status(e.status, e.owner, e.lease_until))
        for e in journal.list_executions(limit=100_000)
    )


def journal_calls(journal: Journal) -> list[Any]:
    return [
        c
        for e in journal.list_executions(limit=100_000)
        for c in journal.calls(e.exec_id)
        if c.reused_from is None
    ]


@pytest.fixture(scope="module")
def project(
    server: ServerProcess,
    write_token: str,
    models: LLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, str]]:
    """(folder, environment) of a project that reaches the server with a write token."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "wflows.py").write_text(textwrap.dedent(FLOWS))
    env = env_through_server(folder, server.url, write_token)
    env["OPENAI_BASE_URL"] = models.base_url
    env.pop("OPENAI_API_KEY", None)
    return folder, env


def test_every_count_matches_the_journal(
    server: ServerProcess,
    read_token: str,
    models: LLMServer,
    project: tuple[Path, dict[str, str]],
) -> None:
    folder, env = project

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "wflows.py", *args], cwd=folder, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip

    for what in ("writer", "writer", "broken", "asks", "asks"):
        done = run(what, f"topic {SECRET}")
        assert done.returncode in (0, 1), done.stderr
    assert run("crashes").returncode == 9
    for i in range(3):
        assert run("submit", "later", str(i)).returncode == 0
    workers = Workers(folder, env)
    workers.start("--queue", "now", name="metrics-worker")
    try:
        ran = json.loads(run("submit", "now", "7").stdout)["exec_id"]
        journal = open_journal(server.journal_url)

        def finished() -> bool:
            record = journal.get_execution(ran)
            return record is not None and record.status == "completed"

        wait_until(finished, 60, workers.output)
        text, families = scrape(server, read_token)
    finally:
        workers.stop()

    # Executions by flow and status, as `kitaru executions list` shows them.
    expected = journal_executions(journal)
    assert expected[("writer", "completed")] == 2 and expected[("crashes", "crashed")] == 1
    assert expected[("broken", "failed")] == 1 and expected[("asks", "waiting")] == 2
    assert expected[("later", "queued")] == 3 and expected[("later", "completed")] == 1
    assert nonzero(samples(families, "kitaru_executions", "kitaru_executions")) == {
        (flow, status): n for (flow, status), n in expected.items()
    }

    # Checkpoint calls by kind and status, and their durations.
    calls = journal_calls(journal)
    by_kind_status = Counter((c.kind, c.status) for c in calls)
    assert (
        by_kind_status[("llm", "completed")] == 4 and by_kind_status[("checkpoint", "failed")] == 1
    )
    assert samples(families, "kitaru_checkpoint_calls", "kitaru_checkpoint_calls_total") == dict(
        by_kind_status
    )
    hist = "kitaru_checkpoint_call_duration_seconds"
    for kind in {c.kind for c in calls}:
        durations = [c.ended_at - c.started_at for c in calls if c.kind == kind]
        assert samples(families, hist, hist + "_count")[(kind,)] == len(durations)
        assert samples(families, hist, hist + "_sum")[(kind,)] == pytest.approx(sum(durations))
        buckets = samples(families, hist, hist + "_bucket")
        for bound in DURATION_BUCKETS:
            within = sum(1 for d in durations if d <= bound)
            assert buckets[(kind, repr(bound))] == within, (kind, bound)
        assert buckets[(kind, "+Inf")] == len(durations)

    # Pending waits by flow.
    pending = Counter(
        journal.get_execution(w.exec_id).flow  # type: ignore[union-attr]
        for w in journal.pending_waits()
    )
    assert pending == {"asks": 2}
    assert samples(families, "kitaru_waits_pending", "kitaru_waits_pending") == {("asks",): 2}

    # Queues: depth, running, oldest waiting; the worker that is serving `now`.
    counts = journal.queue_counts(time.time())
    assert counts["later"]["depth"] == 3
    assert samples(families, "kitaru_queue_depth", "kitaru_queue_depth") == {
        (name,): c["depth"] for name, c in counts.items()
    }
    assert samples(families, "kitaru_queue_running", "kitaru_queue_running") == {
        (name,): c["running"] for name, c in counts.items()
    }
    oldest = samples(
        families, "kitaru_queue_oldest_waiting_seconds", "kitaru_queue_oldest_waiting_seconds"
    )
    assert 0 < oldest[("later",)] < 120
    workers_seen = [w for w in journal.list_workers() if w.name == "metrics-worker"]
    assert workers_seen and workers_seen[0].queues == ["now"]
    assert nonzero(samples(families, "kitaru_workers", "kitaru_workers")) == {("now", "live"): 1}

    # Model calls: what the model server received, and the usage the calls recorded.
    llm_calls = [c for c in calls if "input_tokens" in c.metadata]
    assert len(llm_calls) == len(models.requests) == 4
    key = ("gpt-4o-mini", "openai")  # labels sorted by name: model, provider
    assert samples(families, "kitaru_llm_calls", "kitaru_llm_calls_total") == {key: 4}
    tokens = samples(families, "kitaru_llm_tokens", "kitaru_llm_tokens_total")
    assert tokens == {
        (*key, "input"): sum(c.metadata["input_tokens"] for c in llm_calls),
        (*key, "output"): sum(c.metadata["output_tokens"] for c in llm_calls),
    }
    cost = samples(families, "kitaru_llm_cost_usd", "kitaru_llm_cost_usd_total")
    assert cost[key] == pytest.approx(sum(c.metadata["cost_usd"] for c in llm_calls))
    assert cost[key] > 0

    # Nothing a flow was given or raised, no token, no lease owner.
    assert SECRET not in text and "the tool broke" not in text
    assert "kt_" not in text and "metrics-worker" not in text


def test_a_replay_counts_the_calls_it_ran_not_those_it_reused(
    server: ServerProcess, read_token: str, project: tuple[Path, dict[str, str]]
) -> None:
    folder, env = project
    _text, before = scrape(server, read_token)
    journal = open_journal(server.journal_url)
    source = journal.list_executions(flow="writer", status="completed", limit=1)[0]
    replayed = subprocess.run(
        [sys.executable, "-m", "kitaru", "executions", "replay", source.exec_id, "--from",
         "llm", "--json"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    (replay,) = journal.list_executions(replayed_from=source.exec_id)
    calls = journal.calls(replay.exec_id)
    assert sorted(c.key for c in calls if c.reused_from == source.exec_id) == ["outline", "title"]
    assert [c.key for c in calls if c.reused_from is None] == ["llm"]

    _text, after = scrape(server, read_token)
    name = "kitaru_checkpoint_calls_total"
    grown = Counter(samples(after, "kitaru_checkpoint_calls", name))
    grown.subtract(samples(before, "kitaru_checkpoint_calls", name))
    assert nonzero(dict(grown)) == {("llm", "completed"): 1}
    key = ("gpt-4o-mini", "openai")
    llm = "kitaru_llm_calls_total"
    assert (
        samples(after, "kitaru_llm_calls", llm)[key]
        == samples(before, "kitaru_llm_calls", llm)[key] + 1
    )


def test_two_replicas_on_one_journal_report_the_same_numbers(
    server: ServerProcess, read_token: str, tmp_path: Path
) -> None:
    """Nothing is counted per process: a second replica, started after every execution
    above, shows what the first shows."""
    other = ServerProcess(
        server.journal_url, tmp_path / "replica", args=("--metrics-interval", "0")
    )
    try:
        pages = [scrape(replica, read_token)[1] for replica in (server, other)]
    finally:
        other.stop()
    moving = {"kitaru_metrics_journal_read_seconds", "kitaru_waits_oldest_pending_seconds",
              "kitaru_queue_oldest_waiting_seconds", "kitaru_queue_claims_last_minute",
              "kitaru_workers"}  # fmt: skip
    first, second = ({k: v for k, v in page.items() if k not in moving} for page in pages)
    assert first == second
    assert any(s.value for s in first["kitaru_checkpoint_calls"])


# -- who may scrape ----------------------------------------------------------------------
def test_no_token_a_wrong_token_and_a_run_token_are_refused(
    server: ServerProcess, write_token: str, admin_token: str, read_token: str
) -> None:
    with server.http(None) as anonymous:
        answer = anonymous.get("/metrics")
    assert answer.status_code == 401
    assert "kitaru_" not in answer.text
    with server.http("kt_000000000000_forged") as forged:
        assert forged.get("/metrics").status_code == 401

    journal = open_journal(server.journal_url)
    some = journal.list_executions(limit=1)
    exec_id = some[0].exec_id if some else "kx_" + "0" * 28
    with server.http(run_token(server, exec_id)) as leaked:
        answer = leaked.get("/metrics")
    assert answer.status_code == 403
    assert "kitaru_" not in answer.text

    for token in (read_token, write_token, admin_token):
        scrape(server, token)


# -- how often the journal is read ------------------------------------------------------
def test_between_reads_scrapes_get_the_last_page_and_one_read_refreshes_it(
    tmp_path: Path,
) -> None:
    from kitaru.server._metrics import Metrics
    from tests.server.hostile import new_exec_id

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = open_journal(url)
    metrics = Metrics(url, interval=2.0)
    first = metrics.page()
    assert b"kitaru_executions{" not in first
    now = time.time()
    journal.create_execution(
        ExecutionRecord(new_exec_id(), "report", "queued", now, now, None, "app:report", None,
                        None, None, "local", "local", None, None, None, None, False, 0),
        [],
    )  # fmt: skip
    assert metrics.page() == first  # within the interval: no read
    time.sleep(2.1)
    assert metrics.page() == first  # past it: served at once, read in the background
    wait_until(lambda: metrics.page() != first, 10, lambda: "no second read")
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics.page().decode())}
    found = samples(families, "kitaru_executions", "kitaru_executions")
    assert nonzero(found) == {("report", "queued"): 1}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_metadata_a_flow_wrote_cannot_break_the_counts(backend: str, tmp_path: Path) -> None:
    """`kitaru.log()` lets a flow record any value under any name, `input_tokens` too."""
    from tests.journal.conftest import fresh_postgres_url
    from tests.server.hostile import new_exec_id

    url = f"sqlite:///{tmp_path / 'j.db'}" if backend == "sqlite" else fresh_postgres_url()
    journal = open_journal(url)
    now, exec_id = time.time(), new_exec_id()
    journal.create_execution(
        ExecutionRecord(exec_id, "f", "running", now, now, None, "app:f", None, None, None,
                        "local", "local", None, "me", now, now + 60, False, 1),
        [],
    )  # fmt: skip
    hostile = [
        {"model": "m", "input_tokens": "12; DROP TABLE calls", "output_tokens": [1]},
        {"model": {"nested": True}, "input_tokens": None, "cost_usd": "free"},
        {
            "provider": "openai",
            "model": "m",
            "input_tokens": 3,
            "output_tokens": 2,
            "cost_usd": 0.5,
        },
    ]
    for seq, meta in enumerate(hostile, 1):
        call = CallRecord(exec_id, f"c#{seq}", seq, "c", "app:c", "completed", now, now + 1,
                          1, metadata=meta)  # fmt: skip
        assert journal.commit_call(call, None, [], owner="me")
    stats = journal.journal_stats()  # type: ignore[attr-defined]
    usage = stats.calls.models
    assert (usage[("openai", "m")].input_tokens, usage[("openai", "m")].cost_usd) == (3, 0.5)
    assert (usage[("", "m")].input_tokens, usage[("", "m")].output_tokens) == (0, 0)
    assert sum(m.calls for m in usage.values()) == 3
    assert [c.count for c in stats.calls.calls.values()] == [3]
