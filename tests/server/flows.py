"""Scripts the server tests run as a client would: `python script.py ARG`."""

from __future__ import annotations

REVIEW = """
import json, os, pathlib, sys
import kitaru
from kitaru import checkpoint, flow

# Counts every body run, next to the script: the server resumes it in another process.
COUNTS = pathlib.Path(__file__).with_name("counts")


def mark(name: str) -> None:
    COUNTS.mkdir(exist_ok=True)
    with open(COUNTS / name, "a") as f:
        f.write("x")


@checkpoint
def research(topic: str) -> str:
    mark("research")
    print("researching", topic)
    # Larger than what the journal keeps inline: the bytes go to the server's store.
    return f"notes on {topic}: " + "z" * 40_000


@checkpoint
def draft(notes: str) -> str:
    mark("draft")
    if os.environ.get("CRASH_IN_DRAFT") == "1":
        os._exit(9)
    return notes.split(":")[0].upper()


@checkpoint
def publish(text: str) -> str:
    mark("publish")
    return f"published: {text}"


@flow
def review(topic: str) -> str:
    text = draft(research(topic))
    if not kitaru.wait("approve", schema=bool, question="Publish this draft?"):
        return "rejected"
    return publish(text)


if __name__ == "__main__":
    handle = review.run(sys.argv[1])
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

TIMEOUT = """
import json, sys
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def prepare() -> int:
    return 1


@flow
def deadline() -> str:
    prepare()
    ok = kitaru.wait("approve", schema=bool, timeout=1.0, default=False)
    return "approved" if ok else "timed out"


if __name__ == "__main__":
    handle = deadline.run()
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

FORM = """
import json, sys
import kitaru
from pydantic import BaseModel, Field
from kitaru import checkpoint, flow


class Review(BaseModel):
    approved: bool
    score: int = Field(ge=1, le=5)
    comment: str = ""


@checkpoint
def summarize(text: str) -> dict:
    return {"text": text, "words": len(text.split())}


@checkpoint
def decide(summary: dict, review: dict) -> str:
    return f"{summary['words']} words, score {review['score']}"


@flow
def triage(text: str) -> str:
    summary = summarize(text)
    review = kitaru.wait("review", schema=Review, question="How good is it?")
    count = kitaru.wait("copies", schema=int, question="How many copies?")
    return decide(summary, review.model_dump()) + f", {count} copies"


if __name__ == "__main__":
    handle = triage.run(sys.argv[1])
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

PICKLED = '''
import json, os, sys
from kitaru import checkpoint, flow


class Trap:
    """Unpickling this writes a marker file: the server must never do it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@checkpoint(allow_pickle=True)
def make(marker: str) -> Trap:
    return Trap(marker)


@flow(allow_pickle=True)
def pickled(marker: str) -> Trap:
    return make(marker)


if __name__ == "__main__":
    handle = pickled.run(sys.argv[1])
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
'''

FAILING = """
import json, sys
from kitaru import checkpoint, flow


@checkpoint
def fetch() -> list:
    return [1, 2, 3]


@checkpoint
def parse(rows: list) -> int:
    raise ValueError("row 3 is not a record")


@flow
def ingest() -> int:
    return parse(fetch())


if __name__ == "__main__":
    handle = ingest.run()
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

FAN_OUT = """
import json, sys, time
from kitaru import checkpoint, flow


@checkpoint
def search(q: str) -> str:
    time.sleep(0.2)
    return f"results for {q}"


@checkpoint
def summarize(found: list) -> str:
    return " / ".join(found)


@flow
def research(n: int) -> str:
    return summarize(search.map([f"q{i}" for i in range(n)], concurrency=4))


if __name__ == "__main__":
    handle = research.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""

# Everything long that a page can be asked to show: a 39 KB line, a long flow name, a long
# error, a long question. `python wide.py wait|fail`.
WIDE = """
import json, sys
import kitaru
from kitaru import checkpoint, flow

NAME = "summarize_every_quarterly_report_" * 6


@checkpoint
def fetch_the_whole_report_as_one_line() -> str:
    return "w" * 39_000


@checkpoint
def explain(text: str) -> dict:
    return {"k" * 300: "v" * 2_000, "size": len(text)}


@flow(name=NAME)
def wide(mode: str) -> str:
    text = fetch_the_whole_report_as_one_line()
    explain(text)
    if mode == "fail":
        raise RuntimeError("the upstream service said: " + "e" * 3_000)
    kitaru.wait("approve_" + "a" * 120, schema=bool, question="Publish " + "q" * 2_000 + "?")
    return "done"


if __name__ == "__main__":
    handle = wide.run(sys.argv[1])
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""
