"""Replay from any checkpoint, overrides, lineage, diff, and cancel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import kitaru_cli, run_python, write_script

PIPELINE = """
import os, sys
import kitaru
from kitaru import flow, checkpoint

def ran(name):
    with open(os.environ["LEDGER"], "a") as f:
        f.write(name + "\\n")

@checkpoint
def fetch(topic: str) -> str:
    ran("fetch"); return topic.upper()

@checkpoint
def clean(text: str) -> str:
    ran("clean"); return text.strip()

@checkpoint
def summarize(text: str) -> str:
    ran("summarize"); return f"summary of {text}"

@checkpoint
def score(text: str) -> int:
    ran("score"); return len(text)

@checkpoint
def report(summary: str, points: int) -> dict:
    ran("report"); return {"summary": summary, "points": points}

@flow
def pipeline(topic: str) -> dict:
    text = clean(fetch(topic))
    summary = summarize(text)
    return report(summary, score(summary))

if __name__ == "__main__":
    print(pipeline.run(sys.argv[1]).exec_id)
"""

KEYS = ["fetch", "clean", "summarize", "score", "report"]


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    script = write_script(tmp_path / "pipeline.py", PIPELINE)
    ledger = tmp_path / "ledger"
    env = {"LEDGER": str(ledger)}
    started = run_python(script, "kites", env=env)
    assert started.returncode == 0, started
    return started.stdout.strip(), ledger, env


@pytest.mark.parametrize("start", range(5))
def test_replay_from_each_checkpoint_reruns_exactly_that_one_and_after(
    source: tuple[str, Path, dict[str, str]], start: int
) -> None:
    exec_id, ledger, env = source
    ledger.write_text("")
    replayed = kitaru_cli("executions", "replay", exec_id, "--from", KEYS[start], "--json", env=env)
    assert replayed.returncode == 0, replayed
    view = replayed.json()
    assert ledger.read_text().split() == KEYS[start:]
    assert view["status"] == "completed" and view["exec_id"] != exec_id
    assert view["replayed_from"] == exec_id and view["replay_point"] == KEYS[start]
    assert [c["origin"] for c in view["checkpoints"]] == ["reused"] * start + ["ran"] * (5 - start)
    assert view["result"] == {"summary": "summary of KITES", "points": 16}


def test_override_changes_the_result_and_diff_names_exactly_the_changed_keys(
    source: tuple[str, Path, dict[str, str]],
) -> None:
    exec_id, ledger, env = source
    ledger.write_text("")
    replayed = kitaru_cli(
        "executions",
        "replay",
        exec_id,
        "--from",
        "summarize",
        "--override",
        'clean="OWLS"',
        "--json",
        env=env,
    )
    assert replayed.returncode == 0, replayed
    new = replayed.json()
    assert new["result"] == {"summary": "summary of OWLS", "points": 15}
    assert ledger.read_text().split() == ["summarize", "score", "report"]

    diff = kitaru_cli("artifacts", "diff", exec_id, new["exec_id"], "--json").json()
    statuses = {e["key"]: e["status"] for e in diff["checkpoints"]}
    assert statuses == {
        "fetch": "same",
        "clean": "changed",
        "summarize": "changed",
        "score": "changed",
        "report": "changed",
    }
    assert diff["changed"] == ["clean", "summarize", "score", "report"]
    summary = next(e for e in diff["checkpoints"] if e["key"] == "summarize")
    assert "-summary of KITES" in summary["diff"] and "+summary of OWLS" in summary["diff"]
    text = kitaru_cli("artifacts", "diff", exec_id, new["exec_id"])
    assert text.returncode == 0 and '+  "points": 15' in text.stdout


def test_replay_with_a_new_input_and_lineage(source: tuple[str, Path, dict[str, str]]) -> None:
    exec_id, _ledger, env = source
    replayed = kitaru_cli(
        "executions",
        "replay",
        exec_id,
        "--from",
        "fetch",
        "--input",
        'topic="owls"',
        "--json",
        env=env,
    ).json()
    assert replayed["result"]["summary"] == "summary of OWLS"
    family = kitaru_cli("executions", "list", "--flow", "pipeline", "--json").json()
    assert {(e["exec_id"], e["replayed_from"]) for e in family} == {
        (exec_id, None),
        (replayed["exec_id"], exec_id),
    }
    shown = kitaru_cli("executions", "get", replayed["exec_id"])
    assert f"replay of  {exec_id} from 'fetch'" in shown.stdout


def test_replay_reuses_outputs_above_the_point_whatever_inputs_their_calls_get_now(
    source: tuple[str, Path, dict[str, str]],
) -> None:
    exec_id, ledger, env = source
    ledger.write_text("")
    replayed = kitaru_cli(
        "executions", "replay", exec_id, "--from", "summarize", "--input", 'topic="owls"',
        "--json", env=env,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed
    view = replayed.json()
    # fetch and clean were called with "owls" now, but their copied outputs stand.
    assert ledger.read_text().split() == ["summarize", "score", "report"]
    assert [c["origin"] for c in view["checkpoints"]] == ["reused"] * 2 + ["ran"] * 3
    assert view["result"] == {"summary": "summary of KITES", "points": 16}


UNDIGESTIBLE = """
import dataclasses, sys
from kitaru import flow, checkpoint

@dataclasses.dataclass
class Unset:
    x: int = dataclasses.field(init=False)  # never set: reading it raises

@checkpoint
def step(v: object) -> str:
    return f"ran {v!r}"

@flow
def pipeline() -> list:
    out = []
    try:
        out.append(step(Unset()))
    except AttributeError:
        out.append("refused")
    return out + [step("b"), step("c")]

if __name__ == "__main__":
    print(pipeline.run().exec_id)
"""


def test_a_call_whose_arguments_cannot_be_digested_fails_in_a_replay_as_it_did(
    tmp_path: Path,
) -> None:
    # The call fails before it takes a key, in the source and in the replay alike: it is
    # never handed the output of the call after it.
    script = write_script(tmp_path / "undigestible.py", UNDIGESTIBLE)
    started = run_python(script)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip()
    replayed = kitaru_cli("executions", "replay", exec_id, "--from", "step#2", "--json")
    assert replayed.returncode == 0, replayed
    assert replayed.json()["result"] == ["refused", "ran 'b'", "ran 'c'"]


def test_replay_bad_input_changes_nothing(source: tuple[str, Path, dict[str, str]]) -> None:
    exec_id, _ledger, env = source
    missing = kitaru_cli("executions", "replay", exec_id, "--from", "sumarize", env=env)
    assert missing.returncode == 2
    assert "its checkpoints: fetch, clean, summarize, score, report" in missing.stderr
    bad_json = kitaru_cli(
        "executions", "replay", exec_id, "--from", "clean", "--override", "clean=OWLS", env=env
    )
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    bad_param = kitaru_cli(
        "executions", "replay", exec_id, "--from", "clean", "--input", 'subject="x"', env=env
    )
    assert bad_param.returncode == 2 and "no parameter 'subject'" in bad_param.stderr
    unknown = kitaru_cli("executions", "replay", "kx_0000", "--from", "clean", env=env)
    assert unknown.returncode == 2 and "not found" in unknown.stderr
    assert len(kitaru_cli("executions", "list", "--json").json()) == 1


def test_replay_of_a_running_execution_is_refused_and_cancel_stops_it(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "slow.py",
        """
        import time
        from kitaru import flow, checkpoint

        @checkpoint
        def tick(i: int) -> int:
            time.sleep(0.2)
            return i

        @flow
        def slow() -> int:
            return sum(tick(i) for i in range(100))

        slow.run()
    """,
    )
    proc = subprocess.Popen([sys.executable, str(script)], env=os.environ.copy())
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            listing = kitaru_cli("executions", "list", "--json").json()
            if listing and listing[0]["status"] == "running":
                views = kitaru_cli("executions", "get", listing[0]["exec_id"], "--json").json()
                if views["checkpoints"]:
                    break
            time.sleep(0.1)
        exec_id = listing[0]["exec_id"]
        refused = kitaru_cli("executions", "replay", exec_id, "--from", "tick")
        assert refused.returncode == 2 and "is running" in refused.stderr
        cancelled = kitaru_cli("executions", "cancel", exec_id, "--json")
        assert cancelled.returncode == 0, cancelled
        assert cancelled.json()["status"] == "cancelled"
        assert proc.wait(timeout=30) == 0  # stopped at a checkpoint boundary, not killed
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    resumed = kitaru_cli("executions", "resume", exec_id)
    assert resumed.returncode == 2 and "cancelled" in resumed.stderr
    again = kitaru_cli("executions", "cancel", exec_id)
    assert again.returncode == 2 and "already cancelled" in again.stderr


def test_cancel_a_waiting_execution(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "w.py",
        """
        import kitaru
        from kitaru import flow

        @flow
        def asks() -> bool:
            return kitaru.wait("ok", schema=bool)

        asks.run()
    """,
    )
    run_python(script)
    [execution] = kitaru_cli("executions", "list", "--json").json()
    cancelled = kitaru_cli("executions", "cancel", execution["exec_id"], "--json").json()
    assert cancelled["status"] == "cancelled"
    assert kitaru_cli("executions", "waits", "--json").json() == []
    late = kitaru_cli("executions", "input", execution["exec_id"], "ok", "true")
    assert late.returncode == 2 and "cancelled" in late.stderr
    detail = json.loads(kitaru_cli("executions", "get", execution["exec_id"], "--json").stdout)
    assert detail["status"] == "cancelled"


def test_replay_reuses_answered_waits_above_the_replay_point() -> None:
    import kitaru
    from kitaru import KitaruClient, checkpoint, flow

    runs: list[str] = []

    @checkpoint
    def prepare() -> str:
        runs.append("prepare")
        return "ready"

    @checkpoint
    def act(ok: bool) -> str:
        runs.append("act")
        return f"acted {ok}"

    @flow
    def gated() -> str:
        prepare()
        ok = kitaru.wait("go", schema=bool)
        return act(ok)

    client = KitaruClient()
    handle = gated.run()
    source = client.executions.input(handle.exec_id, "go", True)
    assert source.status == "completed"
    runs.clear()
    replayed = client.executions.replay(handle.exec_id, from_="act")
    assert replayed.status == "completed" and replayed.result == "acted True"
    assert runs == ["act"]
    assert [w["status"] for w in replayed.waits] == ["answered"]


def test_flow_retries_reuse_completed_checkpoints() -> None:
    from kitaru import checkpoint, flow

    runs: list[str] = []

    @checkpoint
    def first() -> int:
        runs.append("first")
        return 1

    @flow(retries=2)
    def flaky() -> int:
        value = first()
        if "boom" not in runs:
            runs.append("boom")
            raise RuntimeError("transient")
        return value

    assert flaky() == 1
    assert runs == ["first", "boom"]
