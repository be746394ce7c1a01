"""Live output: events, printed progress and a streamed model answer, followed as it runs.

    python examples/live_progress.py "sea otters" &
    kitaru executions watch $(kitaru executions list --json | jq -r '.[0].exec_id')
    kitaru executions logs <id> --follow

Each search prints what it does and emits a `found` event; the flow emits `progress`
after each one. With EXAMPLE_MODEL set to a model alias (`kitaru model register ...`),
the summary is a streamed `kitaru.llm()` call whose words are printed as they arrive;
without it the summary is written offline. Through a server (`KITARU_SERVER_URL`), the
web UI's page of the execution shows the same feed live, and
`GET /api/v1/executions/<id>/events` streams it (Server-Sent Events).
"""

from __future__ import annotations

import os
import sys
import time

import kitaru

STEP_SECONDS = float(os.environ.get("EXAMPLE_STEP_SECONDS", "0.5"))
MODEL = os.environ.get("EXAMPLE_MODEL")


@kitaru.checkpoint
def search(query: str) -> list[str]:
    print(f"searching the web for {query!r}")
    time.sleep(STEP_SECONDS)
    hits = [f"{query}: source {i}" for i in range(1, 4)]
    kitaru.emit("found", {"query": query, "hits": len(hits)})
    return hits


@kitaru.checkpoint
def summarize_offline(notes: list[str]) -> str:
    return f"{len(notes)} notes, starting with {notes[0]!r}"


@kitaru.flow
def research(topic: str) -> str:
    queries = [f"{topic} habitat", f"{topic} diet", f"{topic} tools"]
    kitaru.emit("plan", {"queries": queries})
    notes: list[str] = []
    for done, query in enumerate(queries, start=1):
        notes += search(query)
        kitaru.emit("progress", {"done": done, "of": len(queries)})
    if MODEL is None:
        return summarize_offline(notes)
    words: list[str] = []
    for piece in kitaru.llm(f"Summarize: {notes}", model=MODEL, name="summary", stream=True):
        print(piece, end="", flush=True)  # the live feed shows the words as they come
        words.append(piece)
    print()
    return "".join(words)


if __name__ == "__main__":
    handle = research.run(sys.argv[1] if len(sys.argv) > 1 else "sea otters")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
