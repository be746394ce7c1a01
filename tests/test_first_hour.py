"""The first hour of a user from a fresh clone (issue 24): every mistake they made gets one
line that says what is wrong and what to do, the exit code the README states, and leaves
what is stored as it was.

Everything runs as the user ran it: scripts with `python script.py` and the real CLI
(`python -m kitaru ...`) in subprocesses, against a fresh KITARU_HOME.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Proc, kitaru_cli, run_python, write_script
from tests.llm_server import LLMServer

README = Path(__file__).resolve().parent.parent / "README.md"

FLOWS = """
import json
import sys

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def research(topic: str) -> str:
    print("researching", topic)
    return f"notes on {topic}"


@checkpoint
def count(n: int) -> int:
    return n * 2


@checkpoint
def explode(text: str) -> str:
    raise ValueError("the model said no")


@flow
def writer(topic: str, n: int) -> str:
    notes = research(topic)
    count(n)
    if not kitaru.wait("approve", schema=bool, question="Publish?"):
        return "rejected"
    return notes


@flow
def done(topic: str) -> str:
    return research(topic)


@flow
def broken(topic: str) -> str:
    return explode(research(topic))


if __name__ == "__main__":
    ids = {
        "waiting": writer.run("kites", 3).exec_id,
        "done": done.run("kites").exec_id,
        "done2": done.run("owls").exec_id,
        "failed": broken.run("kites").exec_id,
    }
    print(json.dumps(ids))
"""


@pytest.fixture
def executions(tmp_path: Path) -> dict[str, str]:
    """A waiting, two completed and a failed execution, made by a script."""
    script = write_script(tmp_path / "proj" / "flows.py", FLOWS)
    made = run_python(script, cwd=script.parent)
    assert made.returncode == 0, made
    ids: dict[str, str] = json.loads(made.stdout.strip().splitlines()[-1])
    return ids


def stored(home: Path) -> tuple[str, list[str]]:
    """Every journal row and every artifact file: what must not change on an error."""
    with sqlite3.connect(f"file:{home / 'journal.db'}?mode=ro", uri=True) as db:
        rows = "\n".join(db.iterdump())
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    return rows, [f for f in files if not f.startswith("journal.db")]


def one_line_error(result: Proc, code: int, *needles: str) -> str:
    assert result.returncode == code, result
    line = result.stderr.strip()
    assert line.startswith("error: "), result
    assert len(line.splitlines()) == 1 and "Traceback" not in line, result
    for needle in needles:
        assert needle in line, result
    return line


# 1, 2, 5: the home directory, a damaged journal, kitaru doctor (done before; kept covered)


def test_home_that_is_a_file_exits_2(tmp_path: Path) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a directory")
    result = kitaru_cli("executions", "list", env={"KITARU_HOME": str(home)})
    one_line_error(result, 2, "is a file, not a directory")
    assert home.read_text() == "not a directory"


def test_threads_making_a_new_home_at_once_all_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by fifty threads starting their first runs at once: one made the directory
    between another's look and its own mkdir, and the other said it was a file."""
    import threading

    from kitaru import _config

    errors: list[BaseException] = []
    for attempt in range(200):
        monkeypatch.setenv("KITARU_HOME", str(tmp_path / f"home-{attempt}"))
        gate = threading.Barrier(8)

        def first_use() -> None:
            gate.wait()
            try:
                _config.home()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]


def test_damaged_journal_exits_1_and_is_left_alone(kitaru_home: Path) -> None:
    kitaru_home.mkdir(parents=True)
    (kitaru_home / "journal.db").write_bytes(b"this is not a database" * 100)
    result = kitaru_cli("executions", "list")
    one_line_error(result, 1, "journal.db")
    assert (kitaru_home / "journal.db").read_bytes() == b"this is not a database" * 100


def test_doctor_on_a_fresh_home_is_content() -> None:
    result = kitaru_cli("doctor")
    assert result.returncode == 0, result


# 3: the README's first example runs as written; a failed flow says so


def test_readme_first_example_runs_as_written(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## In five minutes") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    script = write_script(tmp_path / "five.py", block.group(1))
    result = run_python(script, cwd=tmp_path)
    assert result.returncode == 0, result
    assert re.fullmatch(r"kx_[0-9a-f]{28} waiting\n", result.stdout), result


def test_a_script_whose_flow_fails_says_so(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "fails.py",
        """
        from kitaru import checkpoint, flow

        @checkpoint
        def ask(prompt: str) -> str:
            return call_your_model(prompt)  # noqa: F821

        @flow
        def writer(topic: str) -> str:
            return ask(topic)

        handle = writer.run("x")
        print(handle.status)
        handle.result()
        """,
    )
    result = run_python(script, cwd=tmp_path)
    assert result.stdout == "failed\n"
    assert re.search(
        r"kitaru: execution kx_\w+ failed: in checkpoint 'ask': NameError: .*call_your_model",
        result.stderr,
    ), result
    assert result.returncode == 1, result  # handle.result() raised ExecutionFailedError


# 4: exit codes


NO_PLUGINS = """
import importlib.metadata as metadata
import sys

_real = metadata.entry_points
_PLUGINS = {"kitaru-stacks", "kitaru-orchestrators", "kitaru-builders", "kitaru-infra"}


def entry_points(**params):
    # What an install without the extras sees: none of the plugin distributions.
    found = _real(**params)
    return metadata.EntryPoints(
        ep for ep in found if ep.dist is None or ep.dist.name not in _PLUGINS
    )


metadata.entry_points = entry_points
from kitaru.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_docker_flavor_without_the_extra_exits_2(tmp_path: Path) -> None:
    script = write_script(tmp_path / "no_plugins.py", NO_PLUGINS)
    result = run_python(script, "stack", "flavors", "docker")
    one_line_error(result, 2, 'pip install "kitaru[docker]"')


def test_webhook_without_a_server_url_exits_2() -> None:
    result = kitaru_cli("server", "webhook", "kx_" + "0" * 28, "approve")
    one_line_error(result, 2, "KITARU_SERVER_URL")


def test_get_of_a_failed_execution_exits_1(executions: dict[str, str]) -> None:
    result = kitaru_cli("executions", "get", executions["failed"])
    assert result.returncode == 1, result
    assert "the model said no" in result.stdout
    assert kitaru_cli("executions", "get", executions["done"]).returncode == 0


# 6: a wait's answer gets a hint that fits the wait


@pytest.mark.parametrize("answer", ["yes", "True", '"true"'])
def test_bool_wait_answer_hint_fits_the_schema(
    executions: dict[str, str], kitaru_home: Path, answer: str
) -> None:
    before = stored(kitaru_home)
    result = kitaru_cli("executions", "input", executions["waiting"], "approve", answer)
    line = one_line_error(result, 2, "a bool wait takes true or false")
    assert "strings need JSON quotes" not in line
    assert stored(kitaru_home) == before


# 7: ids of the wrong kind or shape


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("hello", "execution hello not found: that is not an execution id (kx_ and 28 hex digits"),
        ("", "an execution id is needed"),
        ("artifact", "not found: that is an artifact id, not an execution id"),
    ],
)
def test_ids_of_the_wrong_kind_or_shape(
    executions: dict[str, str], kitaru_home: Path, given: str, needle: str
) -> None:
    if given == "artifact":
        listing = kitaru_cli("artifacts", "list", executions["done"], "--json").json()
        given = listing[0]["artifact_id"]
    before = stored(kitaru_home)
    result = kitaru_cli("executions", "get", given)
    one_line_error(result, 2, needle, "`kitaru executions list`")
    assert stored(kitaru_home) == before


# 8: logs of a checkpoint that does not exist


def test_logs_of_an_unknown_checkpoint_names_the_keys(executions: dict[str, str]) -> None:
    result = kitaru_cli("executions", "logs", executions["waiting"], "--checkpoint", "nosuch")
    one_line_error(result, 2, "no checkpoint call 'nosuch'", "research, count")
    ok = kitaru_cli("executions", "logs", executions["waiting"], "--checkpoint", "research")
    assert ok.returncode == 0 and "researching kites" in ok.stdout


# 9: replay values of the wrong kind are refused before anything runs


@pytest.mark.parametrize(
    ("option", "needles"),
    [
        (
            ["--input", 'n="3"'],
            ["--input n: the flow was given an int there", "--input n=3"],
        ),
        (
            ["--override", "research=42"],
            ["the checkpoint returned a str there", "--override research='\"42\"'"],
        ),
    ],
)
def test_replay_refuses_values_of_the_wrong_kind(
    executions: dict[str, str], kitaru_home: Path, option: list[str], needles: list[str]
) -> None:
    before = stored(kitaru_home)
    result = kitaru_cli("executions", "replay", executions["waiting"], "--from", "count", *option)
    one_line_error(result, 2, *needles)
    assert stored(kitaru_home) == before


# 10: an unreachable model server is retried out loud


def test_unreachable_model_server_prints_each_retry(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "ask.py",
        """
        import kitaru
        print(kitaru.llm("hello", model="openai/m"))
        """,
    )
    result = run_python(
        script,
        env={
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "OPENAI_API_KEY": "k",
            "KITARU_LLM_RETRIES": "1",
        },
    )
    assert result.returncode != 0
    assert re.search(
        r"kitaru\.llm: cannot reach openai at http://127\.0\.0\.1:9/v1/chat/completions "
        r"\(ConnectError\); attempt 1 of 2 failed, next in \d+\.\ds",
        result.stderr,
    ), result


# 11: diff of results


def test_diff_shows_the_result_and_which_side_has_none(executions: dict[str, str]) -> None:
    both = kitaru_cli("artifacts", "diff", executions["done"], executions["done2"])
    assert both.returncode == 0, both
    assert "result: changed" in both.stdout
    assert "-notes on kites" in both.stdout and "+notes on owls" in both.stdout
    one = kitaru_cli("artifacts", "diff", executions["done"], executions["failed"])
    assert one.returncode == 0, one
    assert f"result: only in A; no result in B ({executions['failed']} is failed)" in one.stdout


# 12: deleting the active stack, cancelling


def test_deleting_the_active_stack_says_local_is_active(tmp_path: Path) -> None:
    store = (tmp_path / "store").as_uri()
    made = kitaru_cli(
        "stack", "register", "bg", "--orchestrator", "local", "--artifact-store", store,
        "--set", "mode=subprocess",
    )  # fmt: skip
    assert made.returncode == 0, made
    assert kitaru_cli("stack", "use", "bg").returncode == 0
    deleted = kitaru_cli("stack", "delete", "bg")
    assert deleted.returncode == 0, deleted
    assert "'bg' was the active stack; the local stack is active now" in deleted.stderr


def test_cancel_of_a_waiting_execution_says_what_happened(executions: dict[str, str]) -> None:
    result = kitaru_cli("executions", "cancel", executions["waiting"])
    assert result.returncode == 0, result
    assert result.stdout.strip() == (
        f"{executions['waiting']} cancelled: it was waiting; it never resumes by itself"
    )


def test_cancel_that_kills_after_the_grace_says_so(tmp_path: Path, kitaru_home: Path) -> None:
    script = write_script(
        tmp_path / "slow.py",
        """
        import time
        from kitaru import checkpoint, flow

        @checkpoint
        def think() -> str:
            print("thinking", flush=True)
            time.sleep(60)  # no checkpoint boundary to stop at
            return "done"

        @flow
        def slow() -> str:
            return think()

        slow.run()
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, "KITARU_HOME": str(kitaru_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "thinking\n"
        exec_id = kitaru_cli("executions", "list", "--json").json()[0]["exec_id"]
        result = kitaru_cli("executions", "cancel", exec_id, "--grace", "0.5")
        assert result.returncode == 0, result
        assert "did not reach a checkpoint boundary within 0.5s and was killed" in result.stdout
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert "kitaru: cancel requested" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# 14: kitaru.llm() inside a checkpoint records the prompt and usage on the enclosing call


def test_llm_inside_a_checkpoint_records_on_the_enclosing_call(tmp_path: Path) -> None:
    server = LLMServer().start()
    try:
        script = write_script(
            tmp_path / "inside.py",
            """
            import kitaru
            from kitaru import checkpoint, flow

            @checkpoint
            def research(topic: str) -> str:
                return kitaru.llm(f"Research {topic}", model="openai/m")

            @flow
            def writer(topic: str) -> str:
                return research(topic)

            print(writer.run("kites").exec_id)
            """,
        )
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
        exec_id = run_python(script, env=env).stdout.strip()
    finally:
        server.stop()
    artifacts = kitaru_cli("artifacts", "list", exec_id, "--json").json()
    assert {(a["name"], a["producer"]) for a in artifacts} >= {("research.prompt", "llm")}
    detail = kitaru_cli("executions", "get", exec_id, "--json").json()
    (call,) = detail["checkpoints"]  # the model call is not a checkpoint call of its own
    assert call["key"] == "research" and call["metadata"]["provider"] == "openai"
    assert call["metadata"]["http_attempts"] == 1
