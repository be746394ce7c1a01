"""kitaru.llm() through real HTTP against a local OpenAI-compatible and Anthropic-shaped
server: artifacts, metadata, resume and replay reuse, overrides, retries, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import kitaru_cli, run_python, write_script
from llm_server import LLMServer

import kitaru
from kitaru import KitaruClient, flow
from kitaru._llm import _aliases


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer().start()
    yield s
    s.stop()


@pytest.fixture
def fast(server: LLMServer) -> str:
    """An alias `fast` for gpt-4o-mini served by the local server (priced from the table)."""
    _aliases.register(
        _aliases.ModelAlias(name="fast", model="openai/gpt-4o-mini", base_url=server.base_url)
    )
    return "fast"


@flow
def two_calls(topic: str) -> str:
    outline = kitaru.llm(f"outline {topic}", model="fast", system="be brief", temperature=0.2)
    draft = kitaru.llm(f"draft from {outline}", model="fast", max_tokens=50)
    title = kitaru.llm("title please", model="fast", name="title")
    return f"{draft} | {title}"


def test_each_call_is_a_checkpoint_with_prompt_response_and_metadata(
    server: LLMServer, fast: str
) -> None:
    server.reply("an outline", "a draft", "a title")
    handle = two_calls.run("otters")
    assert handle.result() == "a draft | a title"

    # What went over the wire: system message first, options only when given.
    first, second, _ = (r["body"] for r in server.requests)
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "outline otters"},
    ]
    assert first["temperature"] == 0.2 and "max_tokens" not in first
    assert second["max_tokens"] == 50 and "temperature" not in second

    execution = KitaruClient().executions.get(handle.exec_id)
    calls = {c["key"]: c for c in execution.checkpoints}
    assert list(calls) == ["llm", "llm#2", "title"]
    assert {c["kind"] for c in calls.values()} == {"llm"}
    meta = calls["llm"]["metadata"]
    assert (
        meta["provider"] == "openai" and meta["model"] == "gpt-4o-mini" and meta["alias"] == "fast"
    )
    assert meta["input_tokens"] == 4 and meta["output_tokens"] == 2  # words, as the server counts
    assert meta["latency_s"] > 0 and meta["http_attempts"] == 1
    assert meta["cost_usd"] == pytest.approx((4 * 0.15 + 2 * 0.60) / 1e6)

    assert kitaru.load(handle.exec_id, "llm") == "an outline"
    assert kitaru.load(handle.exec_id, "llm#2") == "a draft"
    prompt = kitaru.load(handle.exec_id, "llm.prompt")
    assert prompt == {
        "prompt": "outline otters",
        "system": "be brief",
        "model": "fast",
        "temperature": 0.2,
        "max_tokens": None,
    }
    producers = {a.name: a.producer for a in KitaruClient().artifacts.list(handle.exec_id)}
    assert producers["llm.prompt"] == "llm" and producers["title.prompt"] == "llm"


def test_outside_a_flow_llm_is_a_plain_call(server: LLMServer, fast: str) -> None:
    assert kitaru.llm("hello there", model=fast) == "echo: hello there"
    assert len(server.requests) == 1
    assert KitaruClient().executions.list() == []


def test_unknown_model_cost_is_null_and_openai_base_url_env_is_used(
    server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    @flow
    def local_model() -> str:
        return kitaru.llm("hi", model="openai/my-local-llama")

    handle = local_model.run()
    assert handle.result() == "echo: hi"
    meta = KitaruClient().executions.get(handle.exec_id).checkpoints[0]["metadata"]
    assert meta["model"] == "my-local-llama" and meta["cost_usd"] is None
    assert "authorization" not in {k.lower() for k in server.requests[0]["headers"]}


def test_anthropic_messages_endpoint(server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
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
    def translate() -> str:
        return kitaru.llm("hello world", model="claude", system="translate to French")

    handle = translate.run()
    assert handle.result() == "bonjour le monde"
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
    assert request["body"]["system"] == "translate to French"
    assert request["body"]["max_tokens"] == 1024
    assert request["body"]["messages"] == [{"role": "user", "content": "hello world"}]
    meta = KitaruClient().executions.get(handle.exec_id).checkpoints[0]["metadata"]
    assert meta["provider"] == "anthropic"
    assert (meta["input_tokens"], meta["output_tokens"]) == (5, 3)
    assert meta["cost_usd"] == pytest.approx((5 * 0.80 + 3 * 4.00) / 1e6)


def test_rate_limits_and_server_errors_are_retried(server: LLMServer, fast: str) -> None:
    server.fail(429, "rate limited", times=2, retry_after="0")
    server.fail(503, "overloaded")  # no Retry-After: exponential backoff
    server.reply("finally")

    @flow
    def patient() -> str:
        return kitaru.llm("go", model=fast)

    handle = patient.run()
    assert handle.result() == "finally"
    assert len(server.requests) == 4
    meta = KitaruClient().executions.get(handle.exec_id).checkpoints[0]["metadata"]
    assert meta["http_attempts"] == 4


def test_provider_error_keeps_status_and_message(server: LLMServer, fast: str) -> None:
    server.fail(400, "max_tokens is too large: 999999")

    with pytest.raises(kitaru.ProviderError) as caught:
        kitaru.llm("x", model=fast)
    assert caught.value.status_code == 400
    assert caught.value.provider_message == "max_tokens is too large: 999999"
    assert "HTTP 400" in str(caught.value) and "fix the request" in str(caught.value)

    server.fail(429, "quota", times=3, retry_after="0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KITARU_LLM_RETRIES", "2")
        with pytest.raises(kitaru.ProviderError) as caught:
            kitaru.llm("x", model=fast)
    assert caught.value.status_code == 429 and "after 3 attempts" in str(caught.value)


def test_failed_call_is_recorded_and_resume_sends_it_again(server: LLMServer, fast: str) -> None:
    server.fail(401, "invalid api key")

    @flow
    def unlucky() -> str:
        return kitaru.llm("a", model=fast) + kitaru.llm("b", model=fast)

    handle = unlucky.run()
    assert handle.status == "failed"
    execution = KitaruClient().executions.get(handle.exec_id)
    assert "HTTP 401" in execution.error and "invalid api key" in execution.error
    assert execution.checkpoints[0]["status"] == "failed"

    KitaruClient().executions.resume(handle.exec_id)
    assert handle.result() == "echo: aecho: b"
    assert server.prompts() == ["a", "a", "b"]


def test_bad_model_names_and_missing_keys(
    server: LLMServer, fast: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        kitaru.ModelNotFoundError, match=r"registered aliases: fast \(openai/gpt-4o-mini\)"
    ):
        kitaru.llm("x", model="fats")
    with pytest.raises(kitaru.ModelNotFoundError, match="kitaru model register default"):
        kitaru.llm("x")
    with pytest.raises(kitaru.KitaruUsageError, match="unknown provider 'gemini'"):
        kitaru.llm("x", model="gemini/flash")

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(kitaru.MissingAPIKeyError, match="OPENAI_API_KEY") as caught:
        kitaru.llm("x", model="openai/gpt-4o-mini")
    assert caught.value.variable == "OPENAI_API_KEY"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(kitaru.MissingAPIKeyError, match="export ANTHROPIC_API_KEY="):
        kitaru.llm("x", model="anthropic/claude-sonnet-4-0")
    _aliases.register(
        _aliases.ModelAlias(
            name="team", model="openai/gpt-4o", base_url=server.base_url, api_key_env="TEAM_KEY"
        )
    )
    with pytest.raises(kitaru.MissingAPIKeyError, match=r"alias 'team' reads .* TEAM_KEY"):
        kitaru.llm("x", model="team")
    assert server.requests == []

    monkeypatch.setenv("KITARU_LLM_RETRIES", "0")
    _aliases.register(
        _aliases.ModelAlias(name="down", model="openai/x", base_url="http://127.0.0.1:9/v1")
    )
    with pytest.raises(kitaru.ProviderError, match="cannot reach openai") as unreachable:
        kitaru.llm("x", model="down")
    assert unreachable.value.status_code is None


FLOW = """
import os, sys
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def publish(text: str) -> str:
    if os.environ.get("CRASH_AT_PUBLISH"):
        os._exit(9)
    return text.upper()

@flow
def writer(topic: str) -> str:
    outline = kitaru.llm(f"outline {topic}", model="fast")
    draft = kitaru.llm(f"draft {outline}", model="fast")
    return publish(draft)

if __name__ == "__main__":
    handle = writer.run(sys.argv[1])
    print(handle.exec_id)
"""


def test_crash_resume_replay_and_override_through_the_cli(
    tmp_path: Path, server: LLMServer, fast: str
) -> None:
    script = write_script(tmp_path / "writer.py", FLOW)
    crashed = run_python(script, "otters", env={"CRASH_AT_PUBLISH": "1"})
    assert crashed.returncode == 9
    assert server.prompts() == ["outline otters", "draft echo: outline otters"]
    exec_id = KitaruClient().executions.list()[0].exec_id

    # Resume: both model calls come from the journal, nothing is sent again.
    resumed = kitaru_cli("executions", "resume", exec_id, "--json")
    assert resumed.returncode == 0, resumed
    assert resumed.json()["result"] == "ECHO: DRAFT ECHO: OUTLINE OTTERS"
    assert len(server.requests) == 2

    # Replay from the checkpoint after the model calls: stored responses are reused.
    replay = kitaru_cli("executions", "replay", exec_id, "--from", "publish", "--json")
    assert replay.returncode == 0, replay
    assert [c["origin"] for c in replay.json()["checkpoints"]] == ["reused", "reused", "ran"]
    assert len(server.requests) == 2

    # Replay from the second call with its response replaced: nothing is sent either.
    override = kitaru_cli(
        "executions",
        "replay",
        exec_id,
        "--from",
        "llm#2",
        "--override",
        'llm#2="a new response"',
        "--json",
    )
    assert override.returncode == 0, override
    view = override.json()
    assert view["result"] == "A NEW RESPONSE"
    assert [c["origin"] for c in view["checkpoints"]] == ["reused", "override", "ran"]
    assert len(server.requests) == 2

    # Replay from the second call without an override: only that call is sent again.
    server.reply("another draft")
    again = kitaru_cli("executions", "replay", exec_id, "--from", "llm#2", "--json")
    assert again.returncode == 0, again
    assert again.json()["result"] == "ANOTHER DRAFT"
    assert server.prompts()[2:] == ["draft echo: outline otters"]


def test_model_cli(server: LLMServer) -> None:
    registered = kitaru_cli(
        "model",
        "register",
        "local",
        "openai/qwen2.5",
        "--base-url",
        server.base_url,
        "--input-price",
        "0",
        "--output-price",
        "0",
        "--json",
    )
    assert registered.returncode == 0, registered
    assert registered.json()["base_url"] == server.base_url
    listed = kitaru_cli("model", "list", "--json").json()
    assert [a["name"] for a in listed] == ["local"]
    text = kitaru_cli("model", "list").stdout
    assert "local" in text and "$0 / $0" in text

    for args, message in [
        (("register", "fast", "gpt-4o-mini"), "does not name a provider"),
        (
            ("register", "fast", "openai/gpt-4o-mini", "--base-url", "localhost:1"),
            "not an http(s) URL",
        ),
        (
            ("register", "fast", "openai/gpt-4o-mini", "--api-key-env", "sk-abc123"),
            "not an environment variable name",
        ),
        (("register", "a/b", "openai/gpt-4o-mini"), "not a valid name"),
        (
            ("register", "fast", "openai/gpt-4o-mini", "--input-price", "1"),
            "both --input-price and --output-price",
        ),
        (("remove", "nope"), "registered aliases: local (openai/qwen2.5)"),
    ]:
        proc = kitaru_cli("model", *args)
        assert proc.returncode == 2, proc
        assert proc.stderr.startswith("error: ") and message in proc.stderr, proc
    assert [a["name"] for a in kitaru_cli("model", "list", "--json").json()] == ["local"]

    removed = kitaru_cli("model", "remove", "local")
    assert removed.returncode == 0 and "removed local" in removed.stdout
    assert "no model aliases yet" in kitaru_cli("model", "list").stdout
