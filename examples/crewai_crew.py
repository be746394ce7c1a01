"""A CrewAI crew inside a checkpoint: `crew.kickoff()` runs once per execution.

    pip install kitaru crewai        # crewai is not an extra: see docs/llm.md
    python examples/crewai_crew.py "sea otters"
    CRASH_AT_PUBLISH=1 python examples/crewai_crew.py    # dies after the crew finished
    kitaru executions resume <id>                         # the crew does not run again

The kickoff result (a CrewOutput) is the checkpoint's output artifact. The LLM is an
offline stand-in; give the agent `llm="gpt-4o-mini"` (or any CrewAI LLM) to use a real one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from crewai import Agent, Crew, Task
from crewai.crews.crew_output import CrewOutput
from crewai.llms.base_llm import BaseLLM

import kitaru


class OfflineLLM(BaseLLM):
    """Answers every prompt with a final answer built from the task text."""

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        if log := os.environ.get("KICKOFF_LOG"):
            with open(log, "a") as f:
                f.write("llm\n")
        prompt = messages if isinstance(messages, str) else messages[-1]["content"]
        topic = prompt.split("Research ", 1)[-1].split("\n", 1)[0].strip(" .")
        return f"Thought: I can answer.\nFinal Answer: Three facts about {topic}."

    def supports_function_calling(self) -> bool:
        return False


researcher = Agent(
    role="Researcher",
    goal="Find three facts",
    backstory="A careful naturalist.",
    llm=OfflineLLM(model="offline"),
)
research = Task(description="Research {topic}.", expected_output="Three facts.", agent=researcher)
crew = Crew(agents=[researcher], tasks=[research])


@kitaru.checkpoint
def run_crew(topic: str) -> CrewOutput:
    return crew.kickoff(inputs={"topic": topic})


@kitaru.checkpoint
def publish(text: str) -> str:
    if os.environ.get("CRASH_AT_PUBLISH"):
        os._exit(3)
    return text.upper()


@kitaru.flow
def research_flow(topic: str) -> str:
    result = run_crew(topic)
    return publish(result.raw)


if __name__ == "__main__":
    handle = research_flow.run(sys.argv[1] if len(sys.argv) > 1 else "sea otters")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
