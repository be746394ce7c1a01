"""Checkpointing inside agent harnesses.

Each adapter lives in its own module and imports its harness only when that module
is imported, so `import kitaru` never pulls a harness in:

| module | harness | install |
|---|---|---|
| `kitaru.adapters.pydantic_ai` | PydanticAI `Agent` | `pip install "kitaru[pydantic-ai]"` |
| `kitaru.adapters.openai_agents` | OpenAI Agents SDK `Runner` | `pip install "kitaru[openai-agents]"` |

CrewAI needs no adapter: put `crew.kickoff(...)` inside a `@checkpoint` (see
`examples/crewai_crew.py` and docs/llm.md).
"""
