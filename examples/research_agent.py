"""A research agent: plan, search several sources, synthesize, write a report.

Each step is a checkpoint, so a crash costs only the step that was running:

    python examples/research_agent.py "durable execution"
    KITARU_CRASH_AT=synthesize python examples/research_agent.py "durable execution"
    kitaru executions list                     # the killed run shows as crashed
    kitaru executions resume <exec_id>         # continues at synthesize

The "model" is a deterministic stand-in with a little latency, so no API key is needed.
"""

from __future__ import annotations

import os
import sys
import time

import kitaru
from kitaru import checkpoint, flow


def fake_model(prompt: str) -> str:
    """Stands in for an LLM call: slow-ish, and billed (we count tokens)."""
    time.sleep(0.15)
    words = prompt.split()
    kitaru.log(input_tokens=len(words), output_tokens=12, model="offline-demo")
    return f"[{len(words)} words considered] " + " ".join(words[:8])


def maybe_crash(step: str) -> None:
    # Lets the demo and the tests kill the process in the middle of a step.
    if os.environ.get("KITARU_CRASH_AT") == step:
        print(f"!! process killed during {step!r}", flush=True)
        os._exit(137)


@checkpoint
def plan(question: str) -> list[str]:
    print(f"planning how to research {question!r}")
    fake_model(f"Plan research on {question}")
    return ["papers", "blogs", "issue trackers"]


@checkpoint
def search(source: str, question: str) -> str:
    print(f"searching {source}")
    maybe_crash(f"search:{source}")
    return fake_model(f"Findings about {question} from {source}")


@checkpoint
def synthesize(findings: list[str]) -> str:
    print(f"synthesizing {len(findings)} findings")
    maybe_crash("synthesize")
    return fake_model(" ".join(findings))


@checkpoint
def write_report(question: str, synthesis: str) -> dict[str, str]:
    print("writing the report")
    maybe_crash("write_report")
    return {"question": question, "answer": synthesis}


@flow
def research_agent(question: str) -> dict[str, str]:
    sources = plan(question)
    findings = [search(source, question) for source in sources]
    synthesis = synthesize(findings)
    return write_report(question, synthesis)


if __name__ == "__main__":
    handle = research_agent.run(sys.argv[1] if len(sys.argv) > 1 else "durable execution")
    print(f"execution {handle.exec_id}: {handle.status}")
