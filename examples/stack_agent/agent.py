"""An agent that runs unchanged on every stack: in this process, in a background
process, in Docker, on Kubernetes, AWS Batch, Cloud Run Jobs or Container Apps. It is its
own uv project (pyproject.toml beside it): that is what the builder locks and copies into
the image.

    kitaru stack use my-docker-stack
    python examples/stack_agent/agent.py kites      # prints the execution id and returns
    kitaru executions get <id>                      # waiting, after `fetch` and `draft`
    kitaru executions input <id> approve true       # continues in a new container

    python examples/stack_agent/agent.py kites no-wait 30   # no approval; `draft` takes 30 s
"""

import os
import sys
import time

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def fetch(topic: str) -> str:
    print("fetching", topic, "on", os.environ.get("KITARU_HOST", "this machine"))
    return ("facts about " + topic + ". ") * 2000  # ~40 KB: stored in the artifact store


@checkpoint
def draft(facts: str, pause: float) -> str:
    time.sleep(pause)  # a slow model call: long enough to kill the container in the middle
    return facts[:22].upper()


@flow
def agent(topic: str, approval: bool = True, pause: float = 0.0) -> dict[str, object]:
    text = draft(fetch(topic), pause)
    approved = kitaru.wait("approve", schema=bool, question="publish?") if approval else True
    return {"draft": text, "approved": approved, "host": os.environ.get("KITARU_HOST", "")}


if __name__ == "__main__":
    approval = len(sys.argv) < 3 or sys.argv[2] != "no-wait"
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    handle = agent.run(sys.argv[1], approval=approval, pause=pause)
    print(handle.exec_id)
