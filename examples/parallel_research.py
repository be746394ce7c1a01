"""Parallel steps: search many sources at once, survive a crash in the middle of it.

    python examples/parallel_research.py "durable execution"
    KITARU_CRASH_AT=q5 python examples/parallel_research.py "durable execution"
    kitaru executions resume <exec_id>     # the finished searches are read back, each
                                           # with its own result; only the rest run
    kitaru executions get <exec_id>        # the fan-out shows as one row with its wall time

`search.map(...)` runs the searches on 4 threads and returns the results in the order of
the queries; `search.submit(...)` starts one more call in the background. Each call is
keyed by its branch (`1/search` ... `12/search`, `13/search`), never by the order the
calls finish, so a resume hands every call its own output. The "search" is a stand-in
with random latency, so no API key is needed.
"""

from __future__ import annotations

import os
import random
import sys
import time

from kitaru import RetryPolicy, checkpoint, flow


@checkpoint(timeout=10, retry_policy=RetryPolicy(max_attempts=3, delay=0.2, jitter=0.5))
def search(query: str) -> str:
    time.sleep(random.uniform(0.05, 0.3))  # finishes in any order
    if os.environ.get("KITARU_CRASH_AT") == query:
        print(f"!! process killed while searching {query!r}", flush=True)
        os._exit(137)
    return f"3 sources about {query}"


@checkpoint
def rank(results: list[str]) -> list[str]:
    return sorted(results, key=len)


@checkpoint
def report(topic: str, ranked: list[str]) -> str:
    return f"{topic}: " + "; ".join(ranked[:3])


@flow
def parallel_research(topic: str) -> str:
    queries = [f"q{i}" for i in range(12)]
    background = search.submit(f"{topic} background")  # a future, running meanwhile
    found = search.map(queries, concurrency=4)  # results in the order of `queries`
    return report(topic, rank([*found, background.result()]))


if __name__ == "__main__":
    handle = parallel_research.run(sys.argv[1] if len(sys.argv) > 1 else "durable execution")
    print(handle.exec_id, handle.status)
    print(handle.result())
