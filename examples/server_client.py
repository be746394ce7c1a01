"""A flow that runs against a Kitaru server instead of a local journal.

On the server's machine (PostgreSQL for a team, SQLite for one machine):

    kitaru server start --journal postgresql://kitaru@db:5432/kitaru --port 8080
    kitaru server token create --scope write --journal postgresql://kitaru@db:5432/kitaru

Anywhere else, with nothing but kitaru installed:

    export KITARU_SERVER_URL=http://server:8080 KITARU_API_TOKEN=kt_...
    python examples/server_client.py "solar sails"

Checkpoints, waits and artifacts are recorded through the server's API: this machine
needs no database or bucket credentials. The run pauses at the approval wait; answer
it from the CLI here (which answers and continues in one step), or in the web UI (the
link is printed) or with a webhook URL: the server runs no flow code, so it then shows
the execution ready to continue, and `kitaru executions resume <id>` here finishes it.
"""

from __future__ import annotations

import os
import sys

import kitaru
from kitaru import KitaruClient, checkpoint, flow


@checkpoint
def outline(topic: str) -> list[str]:
    return [f"what {topic} are", f"why {topic} matter", f"open questions about {topic}"]


@checkpoint
def write(sections: list[str]) -> str:
    return "\n".join(f"## {s}\n(draft)" for s in sections)


@flow
def article(topic: str) -> str:
    text = write(outline(topic))
    if not kitaru.wait("approve", schema=bool, question=f"Publish the article on {topic}?"):
        return "not published"
    return text


def main() -> None:
    server = os.environ.get("KITARU_SERVER_URL")
    if not server:
        sys.exit("set KITARU_SERVER_URL and KITARU_API_TOKEN first (see this file's docstring)")
    handle = article.run(sys.argv[1] if len(sys.argv) > 1 else "solar sails")
    print(f"execution {handle.exec_id} is {handle.status}")
    # Everything the CLI shows comes through the server as well.
    execution = KitaruClient().executions.get(handle.exec_id)
    for call in execution.checkpoints:
        print(f"  {call['key']:<10} {call['origin']}")
    print(f"answer it here: kitaru executions input {handle.exec_id} approve true")
    print(f"or at {server}/ui/executions/{handle.exec_id}, then continue it here:")
    print(f"  kitaru executions resume {handle.exec_id}")


if __name__ == "__main__":
    main()
