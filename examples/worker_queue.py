"""Queues and workers: submit many executions, run them on bounded compute.

    python examples/worker_queue.py          # submits 12 reviews, starts 2 workers, shows who ran what

What it does, as you would by hand:

    python -c "import worker_queue as w; w.review.submit('ticket-1', queue='reviews')"
    kitaru queues set reviews --concurrency 3         # at most 3 at once, across all workers
    kitaru worker --flows examples/worker_queue.py --queue reviews --concurrency 2
    kitaru queues show reviews

`flow.submit()` records the execution and returns at once; nothing runs in the submitting
process. Each worker runs each execution it claims in a process of its own. A worker
killed with SIGKILL loses its executions to the other worker, which resumes them from
their last checkpoint. `KITARU_WORKER_DEMO_PAUSE` sets how long each step takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kitaru import checkpoint, flow

PAUSE = float(os.environ.get("KITARU_WORKER_DEMO_PAUSE", "0.2"))


@checkpoint
def read_ticket(ticket: str) -> str:
    time.sleep(PAUSE)
    return f"{ticket}: the customer asks where their order is"


@checkpoint
def draft_reply(summary: str) -> str:
    time.sleep(PAUSE)
    return f"Re {summary.partition(':')[0]}: it ships tomorrow."


@flow
def review(ticket: str) -> str:
    return draft_reply(read_ticket(ticket))


def kitaru(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kitaru", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    handles = [review.submit(f"ticket-{n}", queue="reviews", priority=n % 2) for n in range(12)]
    print(f"submitted {len(handles)} executions to queue 'reviews'")
    kitaru("queues", "set", "reviews", "--concurrency", "3")
    print(kitaru("queues", "show", "reviews"))
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "kitaru", "worker", "--flows", os.path.join(here, "worker_queue.py"),
             "--queue", "reviews", "--concurrency", "2", "--name", f"worker-{i}", "--until-empty"],
            stdout=subprocess.DEVNULL,
        )
        for i in (1, 2)
    ]  # fmt: skip
    for worker in workers:
        worker.wait(timeout=600)
    ran_by: dict[str, int] = {}
    for handle in handles:
        shown = json.loads(kitaru("executions", "get", handle.exec_id, "--json"))
        ran_by[shown["worker"]] = ran_by.get(shown["worker"], 0) + 1
        print(f"{handle.exec_id}  {shown['status']:<9}  {shown['worker']:<8}  {handle.result()}")
    print(f"executions per worker: {json.dumps(ran_by, sort_keys=True)}")


if __name__ == "__main__":
    main()
