"""Server API throughput and latency, next to the same work on a direct journal.

    KITARU_BENCH_POSTGRES_URL=postgresql://... .venv/bin/python benchmarks/server_api.py

Measures, against a real `kitaru server start` process on a free loopback port:
- GET /api/v1/executions/{id} (an execution of 10 checkpoint calls): requests per
  second and p50/p99 latency from C keep-alive connections (a Python load generator
  on the same 2-core machine, so it competes with the server for CPU);
- recording a checkpoint call through the server (HttpJournal.commit_call, what a flow
  does per checkpoint), one flow at a time and C flows at once;
and the direct-journal figures for the same operations (execution view built from the
journal, commit_call on the journal). Falls back to a SQLite journal without a URL.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DURATION = float(os.environ.get("KITARU_BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("KITARU_BENCH_CONCURRENCY", "8"))
COMMITS = int(os.environ.get("KITARU_BENCH_COMMITS", "1000"))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": pick(0.50) * 1e3,
        "p99_ms": pick(0.99) * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


def fresh_journal_url(base: str | None, tmp: Path) -> str:
    if not base:
        return f"sqlite:///{tmp / 'bench.db'}"
    import uuid

    import psycopg

    name = "kb_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rpartition("/")[0] + "/" + name


def seed(journal: Any, owner: str, calls: int) -> str:
    from kitaru._ids import new_id
    from kitaru.journal import ArtifactRecord, CallRecord, ExecutionRecord
    from kitaru.journal._records import call_output_id

    now = time.time()
    exec_id = new_id("kx")
    journal.create_execution(
        ExecutionRecord(exec_id=exec_id, flow="bench", status="running", created_at=now,
                        updated_at=now, flow_ref="bench:flow", owner=owner, lease_until=now + 3600,
                        runs=1, artifact_store="file:///tmp/unused"),
        [],
    )  # fmt: skip
    for seq in range(1, calls + 1):
        journal.commit_call(
            *call_records(exec_id, seq, CallRecord, ArtifactRecord, call_output_id), [], owner=owner
        )
    return exec_id


def call_records(
    exec_id: str, seq: int, CallRecord: Any, ArtifactRecord: Any, call_output_id: Any
) -> tuple[Any, Any]:
    now = time.time()
    output = ArtifactRecord(
        artifact_id=call_output_id(exec_id, seq), exec_id=exec_id, name=f"step#{seq}", version=1,
        producer="checkpoint", producer_key=f"step#{seq}", type_ref="builtins:dict", serializer="json",
        content_hash="0" * 32, size=24, uri=None, created_at=now, inline=b'{"answer": 42, "ok": 1}',
    )  # fmt: skip
    call = CallRecord(
        exec_id=exec_id, key=f"step#{seq}", seq=seq, name="step", func="bench:step",
        status="completed", started_at=now, ended_at=now, run=1,
        output_artifact=output.artifact_id,
    )  # fmt: skip
    return call, output


def _wrk_time(text: str) -> float:
    import re

    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def load_get(host: str, port: int, path: str, token: str) -> dict[str, Any]:
    """wrk (Debian's) when installed: a C load generator leaves the CPU to the server."""
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        return load_get_python(host, port, path, token)
    out = subprocess.run(
        [wrk, "-t2", f"-c{CONCURRENCY}", f"-d{int(DURATION)}s", "--latency",
         "-H", f"Authorization: Bearer {token}", f"http://{host}:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found: dict[str, Any] = {"generator": "wrk"}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            found["per_second"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            found[f"p{parts[0][:-1]}_ms"] = _wrk_time(parts[1]) * 1e3
        elif "requests in" in line:
            found["requests"] = int(parts[0])
    return found


def load_get_python(host: str, port: int, path: str, token: str) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    stop = time.monotonic() + DURATION
    headers = {"Authorization": f"Bearer {token}"}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            latencies[i].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    samples = [x for xs in latencies for x in xs]
    return {
        "generator": "python threads",
        "requests": len(samples),
        "per_second": len(samples) / elapsed,
        **percentiles(samples),
    }


def commits(journal: Any, exec_id: str, owner: str, start: int, count: int) -> list[float]:
    from kitaru.journal import ArtifactRecord, CallRecord
    from kitaru.journal._records import call_output_id

    out = []
    for seq in range(start, start + count):
        call, output = call_records(exec_id, seq, CallRecord, ArtifactRecord, call_output_id)
        t0 = time.perf_counter()
        assert journal.commit_call(call, output, [], owner=owner)
        out.append(time.perf_counter() - t0)
    return out


def commit_bench(make_journal: Any, owner: str) -> dict[str, Any]:
    journal = make_journal()
    exec_id = seed(journal, owner, 0)
    single = commits(journal, exec_id, owner, 1, COMMITS)
    result: dict[str, Any] = {
        "one_flow": {"per_second": len(single) / sum(single), **percentiles(single)}
    }
    samples: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    ids = [seed(journal, owner, 0) for _ in range(CONCURRENCY)]

    def worker(i: int) -> None:
        samples[i] = commits(journal, ids[i], owner, 1, COMMITS // CONCURRENCY)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    flat = [x for xs in samples for x in xs]
    result[f"{CONCURRENCY}_flows"] = {"per_second": len(flat) / elapsed, **percentiles(flat)}
    return result


def view_bench(journal: Any, exec_id: str) -> dict[str, Any]:
    from kitaru.client import Executions

    executions = Executions(journal)
    samples = []
    stop = time.monotonic() + DURATION
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        executions.get(exec_id).to_dict()
        samples.append(time.perf_counter() - t0)
    return {"per_second": len(samples) / sum(samples), **percentiles(samples)}


def main() -> None:
    from kitaru.journal import open_journal
    from kitaru.server import _tokens
    from tests.server_process import ServerProcess

    base = os.environ.get("KITARU_BENCH_POSTGRES_URL") or os.environ.get("KITARU_TEST_POSTGRES_URL")
    tmp = Path(tempfile.mkdtemp(prefix="kitaru-bench-"))
    url = fresh_journal_url(base, tmp)
    os.environ.setdefault("KITARU_HOME", str(tmp / "home"))
    direct = open_journal(url)
    token, _ = _tokens.create(direct, scope="write", name="bench")
    owner = "bench:1:0:0"
    exec_id = seed(direct, owner, 10)
    server = ServerProcess(
        url, tmp / "server", args=("--sweep-interval", "0", "--log-level", "warning")
    )
    try:
        os.environ["KITARU_API_TOKEN"] = token
        from kitaru.remote import HttpJournal

        parsed = server.url.removeprefix("http://").split(":")
        results = {
            "journal": "postgresql" if base else "sqlite",
            "concurrency": CONCURRENCY,
            "get_execution": {
                "server": load_get(
                    parsed[0], int(parsed[1]), f"/api/v1/executions/{exec_id}", token
                ),
                "direct": view_bench(direct, exec_id),
            },
            "commit_call": {
                "server": commit_bench(lambda: HttpJournal(server.url), owner),
                "direct": commit_bench(lambda: direct, owner),
            },
        }
    finally:
        server.stop()
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "server_api.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


def report(r: dict[str, Any]) -> str:
    rows = [
        "| operation | path | per second | p50 | p99 |",
        "|---|---|---:|---:|---:|",
    ]

    def add(name: str, path: str, m: dict[str, float]) -> None:
        rows.append(
            f"| {name} | {path} | {m['per_second']:,.0f} | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms |"
        )

    c = r["concurrency"]
    gen = r["get_execution"]["server"].get("generator", "")
    add(
        "GET /api/v1/executions/{id}",
        f"server, {c} connections ({gen})",
        r["get_execution"]["server"],
    )
    add("execution view (same data)", "direct journal, 1 thread", r["get_execution"]["direct"])
    for key, label in (("one_flow", "1 flow"), (f"{c}_flows", f"{c} flows")):
        add("record a checkpoint call", f"server, {label}", r["commit_call"]["server"][key])
        add("record a checkpoint call", f"direct journal, {label}", r["commit_call"]["direct"][key])
    return f"journal: {r['journal']}\n" + "\n".join(rows)


if __name__ == "__main__":
    main()
