"""kitaru.llm() against a local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio).

    kitaru model register local openai/llama3.2 --base-url http://localhost:11434/v1 \
        --input-price 0 --output-price 0
    python examples/llm_local_server.py "sea otters"

Each kitaru.llm() call is a checkpoint call (`outline`, `draft`) whose prompt and response
are stored as artifacts, with tokens, latency and cost in its metadata:

    kitaru executions get <id>
    kitaru artifacts list <id>
    kitaru executions replay <id> --from draft --override 'outline="1. fur 2. tools"'
"""

from __future__ import annotations

import os
import sys

import kitaru

MODEL = os.environ.get("EXAMPLE_MODEL", "local")


@kitaru.checkpoint
def publish(title: str, body: str) -> str:
    return f"# {title}\n\n{body}\n"


@kitaru.flow
def write_post(topic: str) -> str:
    outline = kitaru.llm(
        f"Write a three-point outline about {topic}.",
        model=MODEL,
        system="You are a concise science writer.",
        name="outline",
    )
    draft = kitaru.llm(
        f"Write one paragraph from this outline:\n{outline}", model=MODEL, name="draft"
    )
    title = kitaru.llm(
        f"A five-word title for: {draft}", model=MODEL, max_tokens=20, temperature=0.2
    )
    return publish(title.strip(), draft)


if __name__ == "__main__":
    handle = write_post.run(sys.argv[1] if len(sys.argv) > 1 else "sea otters")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
