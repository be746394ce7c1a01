"""A writing agent that waits for a human to approve its draft.

    python examples/review_flow.py "durable agents"      # runs until the approval wait
    kitaru executions waits                              # what is waiting, and since when
    kitaru executions input <exec_id> approve_draft true # answer; the flow continues
    kitaru executions replay <exec_id> --from draft --override research='"new notes"'

No API keys: the "model" is a deterministic function, so the example runs anywhere.
"""

from __future__ import annotations

import sys

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def research(topic: str) -> str:
    print(f"researching {topic!r}")
    return f"Three facts about {topic}: they crash, they wait, they resume."


@checkpoint
def draft(notes: str) -> str:
    print("drafting from the notes")
    return f"DRAFT\n{notes}\nThe end."


@checkpoint
def publish(text: str) -> dict[str, object]:
    print("publishing")
    return {"published": True, "words": len(text.split())}


@flow
def review_flow(topic: str) -> dict[str, object]:
    notes = research(topic)
    text = draft(notes)
    approved = kitaru.wait(
        "approve_draft",
        question=f"Publish this draft about {topic!r}?",
        schema=bool,
        metadata={"draft_chars": len(text)},
    )
    if not approved:
        return {"published": False, "words": 0}
    return publish(text)


if __name__ == "__main__":
    handle = review_flow.run(sys.argv[1] if len(sys.argv) > 1 else "durable agents")
    print(f"execution {handle.exec_id} is {handle.status}")
    if handle.status == "waiting":
        print(f"answer with: kitaru executions input {handle.exec_id} approve_draft true")
