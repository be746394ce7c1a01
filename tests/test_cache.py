"""@checkpoint(cache=True): a call reuses the output of an earlier execution's same call."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru._errors import KitaruUsageError
from kitaru.journal import current_journal
from tests.conftest import kitaru_cli, run_python, write_script

ran: list[str] = []


@checkpoint(cache=True)
def fetch(url: str) -> str:
    ran.append(url)
    return f"page of {url}"


@checkpoint(cache=True, cache_ttl=2)
def fleeting(x: int) -> int:
    ran.append(f"fleeting {x}")
    return x * 2


@checkpoint(cache=True, cache_key=lambda url, session: url)
def with_session(url: str, session: object) -> str:
    ran.append(f"session {url}")
    return url.upper()


@checkpoint
def plain(url: str) -> str:
    ran.append(f"plain {url}")
    return url


attempts = {"n": 0}


@checkpoint(cache=True)
def flaky(x: int) -> int:
    attempts["n"] += 1
    ran.append(f"flaky {x}")
    if attempts["n"] == 1:
        raise RuntimeError("first attempt fails")
    return x


@flow
def crawl(url: str) -> str:
    return fetch(url) + " / " + plain(url)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()
    attempts["n"] = 0


def test_a_cached_call_skips_its_body_in_a_later_execution_and_names_its_source() -> None:
    first = crawl.run("a.example")
    second = crawl.run("a.example")
    assert first.result() == second.result() == "page of a.example / a.example"
    assert ran == ["a.example", "plain a.example", "plain a.example"]
    view = kitaru_cli("executions", "get", second.exec_id, "--json").json()
    [cached] = [c for c in view["checkpoints"] if c["name"] == "fetch"]
    assert cached["origin"] == "cache" and cached["reused_from"] == first.exec_id
    timeline = kitaru_cli("executions", "get", second.exec_id).stdout
    assert f"cache ({first.exec_id})" in timeline
    # Other inputs miss.
    crawl.run("b.example")
    assert ran[-2:] == ["b.example", "plain b.example"]


def test_kitaru_cache_0_turns_caching_off(monkeypatch: pytest.MonkeyPatch) -> None:
    crawl.run("c.example")
    monkeypatch.setenv("KITARU_CACHE", "0")
    crawl.run("c.example")
    assert ran.count("c.example") == 2


def test_past_its_ttl_a_cached_output_is_not_reused() -> None:
    @flow
    def double(x: int) -> int:
        return fleeting(x)

    double.run(4)
    double.run(4)
    assert ran == ["fleeting 4"]
    time.sleep(2.1)
    assert double.run(4).result() == 8
    assert ran == ["fleeting 4", "fleeting 4"]


def test_failed_calls_are_never_cached() -> None:
    @flow
    def once(x: int) -> int:
        return flaky(x)

    assert once.run(7).status == "failed"
    assert once.run(7).result() == 7
    assert once.run(7).result() == 7
    assert ran == ["flaky 7", "flaky 7"]  # the failure was not handed on; the success was


def test_cache_key_stands_for_arguments_without_a_json_form() -> None:
    @flow
    def get(url: str) -> str:
        return with_session(url, object())

    get.run("x")
    get.run("x")
    assert ran == ["session x"]


def test_an_argument_without_a_json_form_makes_a_call_uncachable() -> None:
    @checkpoint(cache=True)
    def opaque(client: object) -> int:
        ran.append("opaque")
        return 1

    @flow
    def use() -> int:
        return opaque(object())

    use.run()
    use.run()
    assert ran == ["opaque", "opaque"]


def test_a_resume_reads_a_cached_call_back_from_its_own_execution() -> None:
    @flow
    def then_wait(url: str) -> str:
        page = fetch(url)
        ok = kitaru.wait("ok", schema=bool)
        return f"{page} {ok}"

    crawl.run("d.example")
    handle = then_wait.run("d.example")
    assert handle.status == "waiting"
    kitaru.KitaruClient().executions.input(handle.exec_id, "ok", True)
    assert handle.result() == "page of d.example True"
    assert ran.count("d.example") == 1


def test_cache_options_need_cache_true() -> None:
    with pytest.raises(KitaruUsageError, match="need cache=True"):
        checkpoint(cache_ttl=10)(lambda: 1)
    with pytest.raises(KitaruUsageError, match="above 0"):
        checkpoint(cache=True, cache_ttl=0)(lambda: 1)


VERSION = """
import os
from kitaru import checkpoint, flow

@checkpoint(cache=True)
def summarize(text: str) -> str:
    with open(os.environ["LEDGER"], "a") as f:
        f.write("ran\\n")
    return BODY

@flow
def pipeline(text: str) -> str:
    return summarize(text)

if __name__ == "__main__":
    print(pipeline.run("same input").result())
"""


def test_a_changed_function_body_misses_the_cache(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    env = {"LEDGER": str(ledger)}
    script = tmp_path / "pipe.py"
    write_script(script, VERSION.replace("BODY", "text.upper()"))
    assert run_python(script, env=env).stdout.strip() == "SAME INPUT"
    assert run_python(script, env=env).stdout.strip() == "SAME INPUT"
    assert ledger.read_text().count("ran") == 1
    write_script(script, VERSION.replace("BODY", "text.title()"))
    assert run_python(script, env=env).stdout.strip() == "Same Input"
    assert ledger.read_text().count("ran") == 2
    assert len(current_journal().list_executions()) == 3


@checkpoint(cache=True)
def page(url: str) -> str:
    ran.append(f"page {url}")
    return url * 5000  # above 16 KiB: its bytes live in the artifact store


@flow
def pages(url: str) -> int:
    return len(page(url))


def test_a_cached_output_whose_bytes_are_gone_is_a_miss_not_a_failure(kitaru_home: Path) -> None:
    first = pages.run("c.example")
    # What a collection deleting `first` leaves for a lookup that read its call just
    # before: the call, but not its bytes.
    [stored] = [p for p in (kitaru_home / "artifacts").rglob("*") if p.is_file()]
    stored.unlink()
    second = pages.run("c.example")
    assert second.result() == first.result() == len("c.example") * 5000
    assert ran == ["page c.example", "page c.example"]
