"""Portable executions: `kitaru executions export` / `import` move runs between journals
and stores, verified by content hash, and an imported run replays with local code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import Proc, kitaru_cli, run_python, write_script

AGENT = """
import sys
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def fetch(n: int) -> str:
    return "page " * 5000 + str(n)  # 25 KB: kept in the artifact store, not inline

@checkpoint
def summarize(text: str) -> dict:
    kitaru.save("notes", {"words": len(text.split())})
    return {"words": len(text.split()), "tail": text[-2:]}

@flow
def research(n: int) -> dict:
    text = fetch(n)
    approved = kitaru.wait(name="approve", question="publish?", schema=bool)
    return {**summarize(text), "approved": approved}

if __name__ == "__main__":
    handle = research.run(int(sys.argv[1]))
    print("EXEC", handle.exec_id, handle.status)
"""


def _run_to_the_end(project: Path, env: dict[str, str]) -> str:
    """Start the agent, answer its wait: a completed execution with a wait and a save."""
    script = write_script(project / "agent.py", AGENT)
    started = run_python(script, "7", env=env, cwd=project)
    assert started.returncode == 0 and "waiting" in started.stdout, started
    exec_id = started.stdout.split()[1]
    answered = kitaru_cli("executions", "input", exec_id, "approve", "true", env=env, cwd=project)
    assert answered.returncode == 0, answered
    return exec_id


def _run_and_export(
    tmp: Path, source: str, home: dict[str, str], *export: str
) -> tuple[str, Path, Proc]:
    """Run `source` (a script printing `EXEC <id>`) and `kitaru executions export` its
    execution: the id, the bundle's path and what the export did."""
    script = write_script(tmp / "flows.py", source)
    ran = run_python(script, env=home, cwd=tmp)
    assert ran.returncode == 0, ran
    exec_id = ran.stdout.split()[1]
    bundle = tmp / "bundle.kitaru"
    done = kitaru_cli("executions", "export", exec_id, "-o", str(bundle), *export, env=home)
    return exec_id, bundle, done


def _fresh_home(tmp_path: Path, name: str) -> dict[str, str]:
    """Another machine: its own KITARU_HOME, SQLite journal and local artifacts."""
    return {
        "KITARU_HOME": str(tmp_path / name),
        "KITARU_JOURNAL_URL": "",
        "KITARU_ARTIFACT_STORE": "",
    }


@pytest.mark.services
def test_export_from_postgres_and_s3_imports_into_sqlite_and_replays(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.artifacts.backends import make
    from tests.journal.conftest import fresh_postgres_url

    s3 = make("s3-localstack", tmp_path_factory)
    prod = {
        **s3.subprocess_env(),
        "KITARU_HOME": str(tmp_path / "prod-home"),
        "KITARU_JOURNAL_URL": fresh_postgres_url(),
        "KITARU_ARTIFACT_STORE": s3.uri,
    }
    project = tmp_path / "project"
    project.mkdir()
    exec_id = _run_to_the_end(project, prod)
    replay = kitaru_cli(
        "executions", "replay", exec_id, "--from", "summarize", "--json", env=prod, cwd=project
    )
    assert replay.returncode == 0, replay
    replay_id = replay.json()["exec_id"]
    original = kitaru_cli("executions", "get", replay_id, "--json", env=prod).json()

    bundle = tmp_path / "incident.kitaru"
    exported = kitaru_cli(
        "executions", "export", replay_id, "-o", str(bundle), "--with-lineage", "--json",
        env=prod,
    )  # fmt: skip
    assert exported.returncode == 0, exported
    assert exported.json()["executions"] == [exec_id, replay_id]  # the source first

    # A laptop: no PostgreSQL, no S3 credentials, its own copy of the code.
    laptop = _fresh_home(tmp_path, "laptop-home")
    laptop_project = tmp_path / "laptop-project"
    laptop_project.mkdir()
    write_script(laptop_project / "agent.py", AGENT)
    imported = kitaru_cli(
        "executions", "import", str(bundle), "--json", env=laptop, cwd=laptop_project
    )
    assert imported.returncode == 0, imported
    assert [d["outcome"] for d in imported.json()] == ["imported", "imported"]

    here = kitaru_cli("executions", "get", replay_id, "--json", env=laptop).json()
    assert here["status"] == original["status"] == "completed"
    assert here["result"] == original["result"]
    assert [(c["key"], c["origin"]) for c in here["checkpoints"]] == [
        (c["key"], c["origin"]) for c in original["checkpoints"]
    ]
    # The 25 KB output now lives in the laptop's own store.
    stored = list((tmp_path / "laptop-home" / "artifacts").rglob("ka_*"))
    assert stored, "the imported bytes are not in the local store"

    # Replayed there with local code: the outputs above the replay point are reused as
    # they were recorded, and the step below runs here.
    again = kitaru_cli(
        "executions", "replay", replay_id, "--from", "summarize", "--json",
        env=laptop, cwd=laptop_project,
    )  # fmt: skip
    assert again.returncode == 0, again
    view = again.json()
    assert view["status"] == "completed"
    assert view["result"] == original["result"]
    origins = {c["key"]: c["origin"] for c in view["checkpoints"]}
    assert origins == {"fetch": "reused", "summarize": "ran"}
    load = write_script(
        tmp_path / "load.py",
        "import json, sys, kitaru\nprint(json.dumps(kitaru.load(sys.argv[1], 'fetch')[-11:]))\n",
    )
    laptop_fetch = run_python(load, view["exec_id"], env=laptop)
    prod_fetch = run_python(load, exec_id, env=prod)
    assert laptop_fetch.stdout == prod_fetch.stdout == json.dumps("page page 7") + "\n"


def _exported(tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    home = _fresh_home(tmp_path, "home")
    project = tmp_path / "project"
    project.mkdir()
    exec_id = _run_to_the_end(project, home)
    bundle = tmp_path / "run.kitaru"
    done = kitaru_cli("executions", "export", exec_id, "-o", str(bundle), env=home)
    assert done.returncode == 0, done
    assert f"kitaru executions import {bundle}" in done.stdout
    return exec_id, bundle, home


def _rewrite(bundle: Path, change: str, data: bytes) -> None:
    with zipfile.ZipFile(bundle) as src:
        entries = {name: src.read(name) for name in src.namelist()}
    entries[change] = data
    with zipfile.ZipFile(bundle, "w") as out:
        for name, content in entries.items():
            out.writestr(name, content)


def test_a_tampered_bundle_is_refused_naming_what_fails(tmp_path: Path) -> None:
    exec_id, bundle, _home = _exported(tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        blob = next(n for n in zf.namelist() if n.startswith("artifacts/"))
        record = json.loads(zf.read(f"executions/{exec_id}.json"))
        original = zf.read(blob)
    stored = next(c["output"] for c in record["calls"] if c["key"] == "fetch")
    _rewrite(bundle, blob, original.replace(b"7", b"8"))  # same size, other bytes

    other = _fresh_home(tmp_path, "other")
    refused = kitaru_cli("executions", "import", str(bundle), env=other)
    assert refused.returncode != 0
    assert stored["artifact_id"] in refused.stderr and "content hash" in refused.stderr
    assert "nothing imported" in refused.stderr
    listed = kitaru_cli("executions", "list", "--json", env=other)
    assert listed.json() == []

    # Bytes beyond what the record says (a zip bomb's way) are refused before they are
    # read whole.
    _rewrite(bundle, blob, original + b" " * 10_000_000)
    refused = kitaru_cli("executions", "import", str(bundle), env=other)
    assert refused.returncode == 2 and "where its record says 25,003" in refused.stderr
    assert kitaru_cli("executions", "list", "--json", env=other).json() == []

    # Records changed after the export (a status, an output rewritten) fail the same way.
    record["execution"]["status"] = "failed"
    _rewrite(bundle, f"executions/{exec_id}.json", json.dumps(record).encode())
    refused = kitaru_cli("executions", "import", str(bundle), env=other)
    assert refused.returncode != 0 and f"records of execution {exec_id}" in refused.stderr


def test_importing_twice_skips_and_bad_inputs_say_what_to_do(tmp_path: Path) -> None:
    exec_id, bundle, home = _exported(tmp_path)
    other = _fresh_home(tmp_path, "other")
    first = kitaru_cli("executions", "import", str(bundle), "--json", env=other, cwd=tmp_path)
    second = kitaru_cli("executions", "import", str(bundle), "--json", env=other, cwd=tmp_path)
    assert first.json() == [{"exec_id": exec_id, "flow": "research", "outcome": "imported"}]
    assert second.json() == [{"exec_id": exec_id, "flow": "research", "outcome": "skipped"}]

    missing = kitaru_cli("executions", "export", "kx_nope", "-o", str(tmp_path / "x"), env=home)
    assert missing.returncode != 0 and "no execution 'kx_nope'" in missing.stderr
    assert not (tmp_path / "x").exists()

    not_a_bundle = tmp_path / "notes.txt"
    not_a_bundle.write_text("hello")
    bad = kitaru_cli("executions", "import", str(not_a_bundle), env=other)
    assert bad.returncode != 0 and "not a bundle" in bad.stderr
    gone = kitaru_cli("executions", "import", str(tmp_path / "nowhere.kitaru"), env=other)
    assert gone.returncode != 0 and "no such file" in gone.stderr


PICKLING = """
from kitaru import checkpoint, flow

class Thing:
    def __init__(self, n):
        self.n = n

@checkpoint(allow_pickle=True)
def make(n: int) -> Thing:
    return Thing(n)

@flow
def build(n: int) -> int:
    return make(n).n

if __name__ == "__main__":
    print("EXEC", build.run(3).exec_id)
"""


def test_pickled_artifacts_travel_only_when_both_sides_ask(tmp_path: Path) -> None:
    home = _fresh_home(tmp_path, "home")
    exec_id, bundle, refused = _run_and_export(tmp_path, PICKLING, home)
    assert refused.returncode != 0 and "--allow-pickle" in refused.stderr
    assert not bundle.exists()
    allowed = kitaru_cli(
        "executions", "export", exec_id, "-o", str(bundle), "--allow-pickle", env=home
    )
    assert allowed.returncode == 0, allowed

    other = _fresh_home(tmp_path, "other")
    refused = kitaru_cli("executions", "import", str(bundle), env=other)
    assert refused.returncode != 0 and "pickled" in refused.stderr
    accepted = kitaru_cli("executions", "import", str(bundle), "--allow-pickle", env=other)
    assert accepted.returncode == 0, accepted


def test_a_hand_made_bundle_cannot_reach_outside_its_execution(tmp_path: Path) -> None:
    """Someone who rewrites a bundle and its manifest's hashes (integrity is not
    authenticity) still cannot write bytes outside the execution's place in the store,
    nor add rows to another execution of the importing journal."""
    from kitaru._artifact_io import content_hash

    exec_id, bundle, _home = _exported(tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        original = json.loads(zf.read(f"executions/{exec_id}.json"))
        manifest = json.loads(zf.read("kitaru-bundle.json"))
    other = _fresh_home(tmp_path, "other")
    victim = _run_to_the_end(tmp_path / "victim", other)

    def forged(change: str) -> str:
        record = json.loads(json.dumps(original))
        if change == "path":
            record["artifacts"][0]["artifact_id"] = "../../../escaped"
        elif change == "queued":
            record["execution"]["status"] = "queued"  # a worker would run it at once
        elif change == "types":
            record["execution"]["created_at"] = "yesterday"
        else:
            forged_log = {"call_key": None, "run": 1, "ts": 0.0, "stream": "stdout"}
            record["logs"].append({**forged_log, "exec_id": victim, "text": "forged"})
        text = json.dumps(record).encode()
        _rewrite(bundle, f"executions/{exec_id}.json", text)
        _rewrite(
            bundle,
            "kitaru-bundle.json",
            json.dumps({**manifest, "records": {exec_id: content_hash(text)}}).encode(),
        )
        done = kitaru_cli("executions", "import", str(bundle), env=other)
        assert done.returncode == 2, done
        return done.stderr

    assert "'../../../escaped' is not an artifact id" in forged("path")
    assert f"a row names execution '{victim}'" in forged("logs")
    assert "status 'queued' cannot be imported" in forged("queued")
    assert "not what this Kitaru writes" in forged("types")
    assert not list(tmp_path.rglob("escaped"))
    logs = kitaru_cli("executions", "logs", victim, env=other)
    assert "forged" not in logs.stdout
    listed = kitaru_cli("executions", "list", "--json", env=other).json()
    assert [e["exec_id"] for e in listed] == [victim]


def test_what_a_bundle_names_to_run_is_not_taken_from_it(tmp_path: Path) -> None:
    """The interpreter, the command line and a module outside the importing project are
    the exporter's business: an import keeps none of them."""
    from kitaru._artifact_io import content_hash

    exec_id, bundle, _home = _exported(tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        record = json.loads(zf.read(f"executions/{exec_id}.json"))
        manifest = json.loads(zf.read("kitaru-bundle.json"))
    assert record["execution"]["argv"] == [] and record["execution"]["python"] is None
    record["execution"].update(
        python="/bin/echo", argv=["agent.py", "--token", "s3cret"], flow_ref="this:research"
    )
    text = json.dumps(record).encode()
    _rewrite(bundle, f"executions/{exec_id}.json", text)
    _rewrite(
        bundle,
        "kitaru-bundle.json",
        json.dumps({**manifest, "records": {exec_id: content_hash(text)}}).encode(),
    )
    other = _fresh_home(tmp_path, "other")
    project = tmp_path / "laptop"
    project.mkdir()
    assert kitaru_cli("executions", "import", str(bundle), env=other, cwd=project).returncode == 0
    replay = kitaru_cli(
        "executions", "replay", exec_id, "--from", "summarize", env=other, cwd=project
    )
    # `this` is a module of the standard library, not of the project: refused, not imported.
    assert replay.returncode == 2 and "The Zen of Python" not in replay.stdout, replay
    assert "module 'this'" in replay.stderr, replay


def test_a_replay_exported_alone_replays_again_after_import(tmp_path: Path) -> None:
    exec_id, _bundle, home = _exported(tmp_path)
    project = tmp_path / "project"
    replay = kitaru_cli(
        "executions", "replay", exec_id, "--from", "summarize", "--json", env=home, cwd=project
    )
    assert replay.returncode == 0, replay
    replay_id = replay.json()["exec_id"]
    alone = tmp_path / "alone.kitaru"
    done = kitaru_cli("executions", "export", replay_id, "-o", str(alone), env=home)
    assert done.returncode == 0, done

    other = _fresh_home(tmp_path, "other")
    assert kitaru_cli("executions", "import", str(alone), env=other, cwd=project).returncode == 0
    again = kitaru_cli(
        "executions", "replay", replay_id, "--from", "summarize", "--json", env=other, cwd=project
    )
    assert again.returncode == 0, again
    assert again.json()["result"]["approved"] is True  # the copied answer came along

    for target in (tmp_path / "no-such-dir" / "x.kitaru", tmp_path):
        bad = kitaru_cli("executions", "export", replay_id, "-o", str(target), env=home)
        assert bad.returncode == 2 and "existing directory" in bad.stderr, bad


MANY_CALLS = """
from kitaru import checkpoint, flow

@checkpoint
def step(i: int) -> int:
    return i * i

@flow
def crunch(n: int) -> int:
    return sum(step(i) for i in range(n))

if __name__ == "__main__":
    print("EXEC", crunch.run(300).exec_id)
"""


@pytest.fixture(scope="module")
def long_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A bundle of one execution of 300 calls: an import of it takes a while to write."""
    tmp = tmp_path_factory.mktemp("long-bundle")
    home = _fresh_home(tmp, "home")
    exec_id, bundle, done = _run_and_export(tmp, MANY_CALLS, home)
    assert done.returncode == 0, done
    return exec_id, bundle


def _whole(exec_id: str, env: dict[str, str]) -> None:
    shown = kitaru_cli("executions", "get", exec_id, "--json", env=env)
    assert shown.returncode == 0, shown
    view = shown.json()
    assert view["status"] == "completed" and view["result"] == sum(i * i for i in range(300))
    assert len(view["checkpoints"]) == 300
    listed = kitaru_cli("executions", "list", "--json", env=env).json()
    assert [e["exec_id"] for e in listed] == [exec_id]


def test_two_imports_of_one_bundle_at_once_import_it_once(
    long_bundle: tuple[str, Path], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    exec_id, bundle = long_bundle
    env = {**os.environ, **_fresh_home(tmp_path, "laptop")}
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "kitaru", "executions", "import", str(bundle), "--json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in both]
    assert [p.returncode for p in both] == [0, 0], outs
    outcomes = sorted(json.loads(out)[0]["outcome"] for out, _err in outs)
    assert outcomes == ["imported", "skipped"], outs
    _whole(exec_id, env)


def test_an_import_killed_half_way_is_taken_over_by_the_next(
    long_bundle: tuple[str, Path], tmp_path: Path
) -> None:
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    exec_id, bundle = long_bundle
    env = {**os.environ, **_fresh_home(tmp_path, "laptop")}
    doomed = subprocess.Popen(
        [sys.executable, "-m", "kitaru", "executions", "import", str(bundle)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    db = tmp_path / "laptop" / "journal.db"
    try:
        calls = 0
        while doomed.poll() is None and not 0 < calls < 300:
            try:
                with sqlite3.connect(db) as conn:
                    calls = conn.execute(
                        "SELECT count(*) FROM calls WHERE exec_id = ?", (exec_id,)
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the journal is not made yet
        # Half way: the execution and some of its calls are written, not the rest.
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    assert 0 < calls < 300, "the import ended before it could be killed half way"
    half = kitaru_cli("executions", "get", exec_id, "--json", env=env).json()
    assert half["status"] == "crashed"

    again = kitaru_cli("executions", "import", str(bundle), "--json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again
    assert again.json() == [{"exec_id": exec_id, "flow": "crunch", "outcome": "imported"}]
    _whole(exec_id, env)
