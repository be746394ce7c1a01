"""What one `/metrics` scrape costs on a large PostgreSQL journal.

    KITARU_TEST_POSTGRES_URL=postgresql://... .venv/bin/python benchmarks/metrics_scrape.py [N]

Fills a fresh database with N executions (default 100,000) in 20 flows: 80% completed,
10% failed, 5% waiting on a pending wait, 3% queued in three queues, 2% running; five
checkpoint calls each (the fifth a model call with its usage metadata, failed in the
failed executions), so 5N call rows. Then starts a real `kitaru server start` with
`--metrics-interval 0` and times scrapes over HTTP with a read token (the
journal read alone is the page's `kitaru_metrics_journal_read_seconds`). The first two
scrapes (the metrics connection opening, a cold cache) are left out.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

USAGE = (
    '{"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 120, '
    '"output_tokens": 40, "latency_s": 0.8, "cost_usd": 4.2e-05, "http_attempts": 1}'
)
EXEC_ID = "'kx_' || lpad(to_hex(i), 28, '0')"
STATUS = (
    "CASE WHEN i %% 100 < 80 THEN 'completed' WHEN i %% 100 < 90 THEN 'failed' "
    "WHEN i %% 100 < 95 THEN 'waiting' WHEN i %% 100 < 98 THEN 'queued' ELSE 'running' END"
)


def fill(url: str, n: int) -> None:
    import psycopg

    t0 = time.time() - n
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO executions (exec_id, flow, status, created_at, updated_at, ended_at, "
            "flow_ref, stack, orchestrator, owner, lease_until, cancel_requested, runs, queue) "
            f"SELECT {EXEC_ID}, 'flow_' || (i %% 20), {STATUS}, %s + i, %s + i, %s + i + 5, "
            "'app:flow', 'local', 'local', "
            "CASE WHEN i %% 100 >= 98 THEN 'elsewhere:1:0:00' END, "
            "CASE WHEN i %% 100 >= 98 THEN %s END, 0, 1, "
            "CASE WHEN i %% 100 BETWEEN 95 AND 97 THEN 'q' || (i %% 3) END "
            "FROM generate_series(1, %s) AS i",
            (t0, t0, t0, time.time() + 3600, n),
        )
        conn.execute(
            "INSERT INTO calls (exec_id, seq, key, name, func, kind, status, started_at, "
            "ended_at, run, attempts, metadata) "
            f"SELECT {EXEC_ID}, s, 'step#' || s, 'step', 'app:step', "
            "CASE WHEN s = 5 THEN 'llm' ELSE 'checkpoint' END, "
            "CASE WHEN s = 5 AND i %% 100 BETWEEN 80 AND 89 THEN 'failed' ELSE 'completed' END, "
            "%s + i, %s + i + (i %% 97) / 10.0, 1, 1, CASE WHEN s = 5 THEN %s END "
            "FROM generate_series(1, %s) AS i, generate_series(1, 5) AS s",
            (t0, t0, USAGE, n),
        )
        conn.execute(
            "INSERT INTO waits (exec_id, key, name, seq, schema, created_at, status, "
            "has_default) "
            f"SELECT {EXEC_ID}, 'approve', 'approve', 6, '\"bool\"', %s + i, 'pending', 0 "
            "FROM generate_series(1, %s) AS i WHERE i %% 100 BETWEEN 90 AND 94",
            (t0, n),
        )
        conn.execute("ANALYZE")


def main() -> None:
    import psycopg

    from kitaru.journal import open_journal
    from kitaru.server import _tokens
    from tests.server_process import ServerProcess

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    base = os.environ.get("KITARU_TEST_POSTGRES_URL") or os.environ["BENCH_POSTGRES_URL"]
    name = "kbm_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rpartition("/")[0] + "/" + name
    token, _ = _tokens.create(open_journal(url), scope="read")  # creates the schema
    started = time.perf_counter()
    fill(url, n)
    print(f"filled {n} executions, {5 * n} calls in {time.perf_counter() - started:.1f} s")

    for args in (("--metrics-interval", "0"), ()):
        times, reads, size = scrapes(ServerProcess, url, token, args)
        print(f"{' '.join(args) or 'default interval'}: ", end="")
        report(n, times, reads, size)


def scrapes(
    server_process: Any, url: str, token: str, args: tuple[str, ...]
) -> tuple[list[float], list[float], int]:
    import tempfile

    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        server = server_process(url, Path(tmp), args=args)
        try:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as http:
                times: list[float] = []
                reads: list[float] = []
                for _ in range(12):
                    t = time.perf_counter()
                    page = http.get("/metrics")
                    times.append(time.perf_counter() - t)
                    assert page.status_code == 200, page.text
                    line = next(
                        x for x in page.text.splitlines() if x.startswith("kitaru_metrics_journal")
                    )
                    reads.append(float(line.split()[-1]))
            return times[2:], reads[2:], len(page.content)
        finally:
            server.stop()


def report(n: int, times: list[float], reads: list[float], size: int) -> None:
    def ms(values: list[float]) -> dict[str, Any]:
        return {
            "median_ms": round(statistics.median(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }

    print(f"{n} executions: scrape over HTTP {ms(times)}, journal read {ms(reads)}, {size} bytes")


if __name__ == "__main__":
    main()
