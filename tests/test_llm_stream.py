"""kitaru.llm(stream=True) against the local model server sending one word every
TOKEN_DELAY seconds: pieces reach the flow while the response is still being written,
the call is one checkpoint call whose output is the whole text, and a resumed call
yields the stored text without a request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import kitaru_cli, run_python, write_script
from llm_server import LLMServer

import kitaru
from kitaru import KitaruClient, flow
from kitaru._llm import _aliases

TOKEN_DELAY = 0.15
TEXT = "one two three four five six"


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer(token_delay=TOKEN_DELAY).start()
    yield s
    s.stop()


@pytest.fixture
def fast(server: LLMServer) -> str:
    _aliases.register(
        _aliases.ModelAlias(name="fast", model="openai/gpt-4o-mini", base_url=server.base_url)
    )
    return "fast"


def test_pieces_arrive_before_the_response_ends_and_the_call_stores_the_whole_text(
    server: LLMServer, fast: str
) -> None:
    server.reply(TEXT)
    arrived: list[tuple[float, str]] = []

    @flow
    def storyteller() -> str:
        for piece in kitaru.llm("tell", model="fast", stream=True, name="story"):
            arrived.append((time.time(), piece))
        return "done"

    handle = storyteller.run()
    assert handle.result() == "done"
    assert "".join(p for _, p in arrived) == TEXT
    # The first word was in the flow's hands well before the server finished writing.
    (finished,) = server.finished
    assert len(arrived) == 6
    assert finished - arrived[0][0] >= 4 * TOKEN_DELAY, (arrived, finished)
    assert arrived[-1][0] - arrived[0][0] >= 4 * TOKEN_DELAY
    assert server.requests[0]["body"]["stream"] is True

    [call] = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert call["key"] == "story" and call["status"] == "completed"
    meta = call["metadata"]
    assert meta["streamed"] and meta["output_tokens"] == 6 and meta["input_tokens"] == 3
    assert kitaru.load(handle.exec_id, "story") == TEXT


FLOW = """
import json, sys
import kitaru
from kitaru import flow

@flow
def storyteller() -> str:
    pieces = list(kitaru.llm("tell", model="fast", stream=True))
    approved = kitaru.wait("approve", schema=bool)
    return json.dumps({"pieces": pieces, "approved": approved})

if __name__ == "__main__":
    print(storyteller.run().exec_id)
"""


def test_a_resumed_call_yields_the_stored_text_and_sends_no_request(
    tmp_path: Path, server: LLMServer, fast: str
) -> None:
    server.reply(TEXT)
    script = write_script(tmp_path / "story.py", FLOW)
    started = run_python(script)
    assert started.returncode == 0, started
    exec_id = started.stdout.split()[-1]
    assert len(server.requests) == 1

    answered = kitaru_cli("executions", "input", exec_id, "approve", "true", "--json")
    assert answered.returncode == 0, answered
    import json

    result = json.loads(answered.json()["result"])
    # The resume read the call back: the whole text as one piece, nothing sent.
    assert result == {"pieces": [TEXT], "approved": True}
    assert len(server.requests) == 1


def test_anthropic_streams_too(server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_CLAUDE_KEY", "sk-ant-test")
    _aliases.register(
        _aliases.ModelAlias(
            name="claude",
            model="anthropic/claude-3-5-haiku-20241022",
            base_url=server.root,
            api_key_env="TEAM_CLAUDE_KEY",
        )
    )
    server.reply("bonjour le monde")

    @flow
    def translate() -> list[str]:
        return list(kitaru.llm("hello", model="claude", stream=True))

    handle = translate.run()
    assert handle.result() == ["bonjour", " le", " monde"]
    meta = KitaruClient().executions.get(handle.exec_id).checkpoints[0]["metadata"]
    assert (meta["input_tokens"], meta["output_tokens"]) == (3, 3)


def test_a_stream_closed_early_is_a_failed_call(server: LLMServer, fast: str) -> None:
    server.reply(TEXT)

    @flow
    def impatient() -> str:
        stream = kitaru.llm("tell", model="fast", stream=True)
        first = next(stream)
        stream.close()  # type: ignore[attr-defined]
        return first

    handle = impatient.run()
    assert handle.result() == "one"
    [call] = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert call["status"] == "failed" and "closed before the response ended" in call["error"]
