"""Each attack of issue 15, replayed against a real `kitaru server start` process on
SQLite, as an attacker holding an ordinary token would: the setup, the request, then
the effect that must not happen (a file not written, nothing unpickled, a listing that
still answers, memory that stays put, a process not started).

The companion fuzz (test_fuzz_routes.py) sends ill-typed bodies to every write route.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitaru.journal import open_journal
from kitaru.server import _tokens
from tests.conftest import write_script
from tests.server.conftest import Client
from tests.server_process import ServerProcess

MiB = 1024 * 1024

VICTIM = """
import json, sys
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def research(topic: str) -> str:
    return "notes on " + topic


@flow
def review(topic: str) -> str:
    notes = research(topic)
    if not kitaru.wait("approve", schema=bool, question="Publish?"):
        return "rejected"
    return "published " + notes


if __name__ == "__main__":
    handle = review.run(sys.argv[1])
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


class Trap:
    """Unpickling this opens (creates) the file named in it: a stand-in for any payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> Any:
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The issue's setup: `kitaru server start` on SQLite, its sweeper on."""
    workdir = tmp_path_factory.mktemp("attacked")
    proc = ServerProcess(
        f"sqlite:///{workdir / 'journal.db'}",
        workdir,
        args=("--sweep-interval", "0.3", "--access-log"),
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def write_token(server: ServerProcess) -> str:
    return server.token("write", name="attacker")


@pytest.fixture(scope="module")
def read_token(server: ServerProcess) -> str:
    return server.token("read", name="snoop")


@pytest.fixture(scope="module")
def victim(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Someone else's execution, waiting for a yes/no answer."""
    folder = tmp_path_factory.mktemp("victim")
    token = server.token("write", name="victim")
    client = Client(server, token, folder / "home")
    script = write_script(folder / "project" / "review.py", VICTIM)
    started = client.start(script, "llamas")
    assert started["status"] == "waiting"
    return {**started, "client": client, "script": script}


def children(pid: int) -> list[int]:
    """The live (or zombie) children of a process, read from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def record(exec_id: str, **fields: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "exec_id": exec_id,
        "flow": "review",
        "status": "failed",
        "created_at": now,
        "updated_at": now,
        "flow_ref": "pwn:review",
        **fields,
    }


# 1. Code execution on the server host with a write token --------------------------------


def test_a_write_token_cannot_make_the_server_run_a_file_it_uploaded(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-by-resume"
    payload = f"open({str(marker)!r}, 'w').write('ran on the server')\n"
    with server.http(write_token) as attacker:
        # (A store takes no file Python would import, .py included: the payload goes
        # under an artifact-like name, which a script path may still name.)
        refused = attacker.put(
            "/api/v1/store/objects/evil/pwn.py",
            params={"root": server.store},
            content=payload.encode(),
        )
        assert refused.status_code == 422, refused.text
        stored = attacker.put(
            "/api/v1/store/objects/evil/ka_pwn",
            params={"root": server.store},
            content=payload.encode(),
        )
        assert stored.status_code == 200, stored.text
        path = stored.json()["uri"].removeprefix("file://")
        created = attacker.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    "kx_pwn0001",
                    flow_file=path,
                    import_path=os.path.dirname(path),
                    python=sys.executable,
                ),
                "inputs": [],
            },
        )
        assert created.status_code == 201, created.text
        resumed = attacker.post("/api/v1/executions/kx_pwn0001/resume")
        # The old route that ran the import is gone, and so is the generic RPC.
        rpc = attacker.post("/api/v1/journal/create_execution", json={})
    assert rpc.status_code == 404
    assert resumed.status_code == 202, resumed.text
    # The server only marks it ready for whoever runs its code.
    assert resumed.json()["status"] == "queued"
    assert resumed.json()["ready"]["command"] == "kitaru executions resume kx_pwn0001"
    time.sleep(2)
    assert not marker.exists()
    assert children(server.proc.pid) == []


def test_a_replay_or_a_timed_out_wait_runs_nothing_on_the_server_either(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-by-replay"
    script = tmp_path / "pwn.py"
    script.write_text(f"open({str(marker)!r}, 'w')\n")
    fields = {"flow_file": str(script), "import_path": str(tmp_path), "python": sys.executable}
    owner = "attacker:1:0:0001"
    now = time.time()
    with server.http(write_token) as attacker:
        created = attacker.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    "kx_pwn0002", status="running", owner=owner, lease_until=now + 60, **fields
                ),
                "inputs": [],
            },
        )
        assert created.status_code == 201, created.text
        runner = "/api/v1/runner/executions/kx_pwn0002"
        call = {
            "exec_id": "kx_pwn0002", "key": "step", "seq": 1, "name": "step",
            "func": "pwn:step", "status": "completed", "started_at": now, "ended_at": now,
            "run": 1,
        }  # fmt: skip
        committed = attacker.post(f"{runner}/calls", json={"owner": owner, "call": call})
        assert committed.json() == {"committed": True}
        wait = {
            "exec_id": "kx_pwn0002", "key": "go", "name": "go", "seq": 2, "question": None,
            "schema": {"type": "bool"}, "created_at": now, "timeout_at": now - 1,
            "default": True, "has_default": True,
        }  # fmt: skip
        assert attacker.post(f"{runner}/waits", json={"owner": owner, "wait": wait}).json() == {
            "created": True
        }
        finished = attacker.post(
            f"{runner}/finish", json={"owner": owner, "status": "waiting", "now": now}
        )
        assert finished.json()["finished"] is True
        replayed = attacker.post("/api/v1/executions/kx_pwn0002/replay", json={"from": "step"})
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["status"] == "queued"
        # The sweeper sees the timed-out wait and readies the execution: nothing runs.
        deadline = time.monotonic() + 10
        while attacker.get("/api/v1/executions/kx_pwn0002").json()["status"] != "queued":
            assert time.monotonic() < deadline, "the sweeper did not ready the execution"
            time.sleep(0.1)
    time.sleep(1)
    assert not marker.exists()
    assert children(server.proc.pid) == []


def test_cancelling_never_signals_a_process_a_record_names(
    server: ServerProcess, write_token: str
) -> None:
    # A record whose owner names a process on the server's host (here: a sleeping child
    # of this test, standing in for the server's own processes).
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = os.uname().nodename
        owner = f"{host}:{bystander.pid}:0:0001"
        with server.http(write_token) as attacker:
            attacker.post(
                "/api/v1/executions",
                json={
                    "execution": record(
                        "kx_pwn0003", status="running", owner=owner, lease_until=time.time() + 60
                    ),
                    "inputs": [],
                },
            )
            cancelled = attacker.post("/api/v1/executions/kx_pwn0003/cancel", json={"grace": 0.5})
        assert cancelled.status_code == 200, cancelled.text
        assert bystander.poll() is None  # still alive: no signal was sent
    finally:
        bystander.kill()
        bystander.wait()


# 2. Pickle from the network -----------------------------------------------------------


def test_an_answer_is_never_a_pickle(
    server: ServerProcess, write_token: str, victim: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled-answer"
    evil = pickle.dumps(Trap(marker))
    exec_id = victim["exec_id"]
    artifact = {
        "artifact_id": "ka_evil_answer", "exec_id": exec_id, "name": "approve", "version": 1,
        "producer": "wait", "producer_key": "approve", "type_ref": "builtins:bool",
        "serializer": "pickle", "content_hash": "0", "size": len(evil), "uri": None,
        "created_at": time.time(), "inline": __import__("base64").b64encode(evil).decode(),
    }  # fmt: skip
    with server.http(write_token) as attacker:
        by_artifact = attacker.post(
            f"/api/v1/executions/{exec_id}/waits/approve/answer",
            json={"artifact": artifact},
        )
        saved = attacker.post(
            f"/api/v1/runner/executions/{exec_id}/artifacts", json={"artifact": artifact}
        )
        not_bool = attacker.post(
            f"/api/v1/executions/{exec_id}/waits/approve/answer", json={"value": "yes"}
        )
        rpc = attacker.post("/api/v1/journal/answer_wait", json={})
    assert by_artifact.status_code == 422  # answers are JSON values, nothing else
    assert saved.status_code == 422 and "cannot be pickled" in saved.json()["detail"]
    assert not_bool.status_code == 422 and "expected bool" in not_bool.json()["detail"]
    assert rpc.status_code == 404

    # The owner answers properly and resumes where the code lives: nothing is unpickled.
    client: Client = victim["client"]
    done = client.cli_json("executions", "input", exec_id, "approve", "true")
    assert done["status"] == "completed" and done["result"] == "published notes on llamas"
    assert not marker.exists()


def test_a_pickled_output_planted_in_a_flow_that_does_not_allow_pickle_never_loads(
    server: ServerProcess, write_token: str, victim: dict[str, Any], tmp_path: Path
) -> None:
    # The attacker records an execution of the victim's own flow (a write token can), with
    # a pickled output for its checkpoint, then waits for someone to resume it.
    marker = tmp_path / "unpickled-output"
    evil = pickle.dumps(Trap(marker))
    import hashlib

    script: Path = victim["script"]
    owner = "attacker:1:0:0002"
    now = time.time()
    exec_id = "kx_pwn0004"
    output = {
        "artifact_id": "ka_pwn0004_1", "exec_id": exec_id, "name": "research", "version": 1,
        "producer": "checkpoint", "producer_key": "research", "type_ref": "builtins:str",
        "serializer": "pickle", "content_hash": hashlib.sha256(evil).hexdigest(),
        "size": len(evil), "uri": None, "created_at": now,
        "inline": __import__("base64").b64encode(evil).decode(),
    }  # fmt: skip
    topic = {
        "artifact_id": "ka_pwn0004_topic", "exec_id": exec_id, "name": "topic", "version": 1,
        "producer": "input", "producer_key": "topic", "type_ref": "builtins:str",
        "serializer": "json", "content_hash": "0", "size": 3, "uri": None,
        "created_at": now, "inline": "IngiIA==",
    }  # fmt: skip
    call = {
        "exec_id": exec_id, "key": "research", "seq": 1, "name": "research",
        "func": "__main__:research", "status": "completed", "started_at": now, "ended_at": now,
        "run": 1, "output_artifact": output["artifact_id"],
    }  # fmt: skip
    with server.http(write_token) as attacker:
        created = attacker.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    exec_id,
                    status="running",
                    owner=owner,
                    lease_until=now + 60,
                    flow_ref="__main__:review",
                    flow_file=str(script),
                    import_path=str(script.parent),
                    argv=[str(script), "x"],
                    artifact_store=server.store,
                ),
                "inputs": [topic],
            },
        )
        assert created.status_code == 201, created.text
        runner = f"/api/v1/runner/executions/{exec_id}"
        assert attacker.post(
            f"{runner}/calls", json={"owner": owner, "call": call, "output": output}
        ).json() == {"committed": True}
        attacker.post(f"{runner}/finish", json={"owner": owner, "status": "failed", "now": now})
    client: Client = victim["client"]
    run = client.cli("executions", "resume", exec_id, "--json")
    assert run.returncode == 1  # the execution failed, and says why
    resumed = json.loads(run.stdout)
    assert resumed["status"] == "failed" and "is pickled" in resumed["error"], resumed
    assert not marker.exists()
    # Nor does a client load it on request.
    loaded = client.python(
        write_script(
            tmp_path / "load.py",
            f"import kitaru\ntry:\n    kitaru.load({exec_id!r}, 'research')\n"
            "except kitaru.KitaruError as e:\n    print('refused:', e)\n",
        )
    )
    assert "refused:" in loaded.stdout and "pickled" in loaded.stdout, loaded.stderr
    assert not marker.exists()


# 3. Tokens tied to what they are for ---------------------------------------------------


def test_a_stolen_run_token_reaches_its_own_execution_only(
    server: ServerProcess, victim: dict[str, Any], write_token: str
) -> None:
    # Setup: a run token for the attacker's own execution, read from a job spec.
    with server.http(write_token) as http:
        # Queued: a run in progress (the sweeper revokes the tokens of ended ones).
        http.post(
            "/api/v1/executions",
            json={"execution": record("kx_pwn0005", status="queued"), "inputs": []},
        )
    stolen = _tokens.mint_run_token(open_journal(server.journal_url), "kx_pwn0005")
    other = victim["exec_id"]
    with server.http(stolen) as attacker:
        assert attacker.get("/api/v1/records/executions/kx_pwn0005").status_code == 200
        refused = {
            "list executions": attacker.get("/api/v1/executions"),
            "read another": attacker.get(f"/api/v1/records/executions/{other}"),
            "its calls": attacker.get(f"/api/v1/records/executions/{other}/calls"),
            "commit to another": attacker.post(f"/api/v1/runner/executions/{other}/calls", json={}),
            "answer another": attacker.post(
                f"/api/v1/executions/{other}/waits/approve/answer", json={"value": True}
            ),
            "resume another": attacker.post(f"/api/v1/executions/{other}/resume"),
            "delete a stack": attacker.delete("/api/v1/stacks/local"),
            "change a setting": attacker.put("/api/v1/settings/active_stack", json={"value": None}),
            "move a tag": attacker.put("/api/v1/deployments/x/tags/default", json={"version": 1}),
            "store of another": attacker.put(
                f"/api/v1/store/objects/{other}/x", params={"root": server.store}, content=b"x"
            ),
            "create an execution": attacker.post("/api/v1/executions", json={}),
        }
        for what, answer in refused.items():
            assert answer.status_code == 403, (what, answer.text)
    # The web UI does not take it either.
    signed_in = _sign_in(server, stolen)
    assert signed_in.status_code == 401


def test_a_read_token_learns_no_owner_it_could_write_with(
    server: ServerProcess, read_token: str, write_token: str
) -> None:
    owner = "victim-host:4242:77:5ec7e7n0"
    with server.http(write_token) as http:
        http.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    "kx_pwn0006", status="running", owner=owner, lease_until=time.time() + 600
                ),
                "inputs": [],
            },
        )
    with server.http(read_token) as snoop:
        seen = snoop.get("/api/v1/records/executions/kx_pwn0006").json()["owner"]
        view = snoop.get("/api/v1/executions/kx_pwn0006").json()
    assert seen != owner and "5ec7e7n0" not in json.dumps(view)
    assert seen.startswith("victim-host:4242:77:")  # where it runs stays visible
    now = time.time()
    with server.http(write_token) as attacker:
        runner = "/api/v1/runner/executions/kx_pwn0006"
        beat = attacker.post(
            f"{runner}/heartbeat", json={"owner": seen, "now": now, "lease_until": now + 9}
        )
        finish = attacker.post(
            f"{runner}/finish", json={"owner": seen, "status": "completed", "now": now}
        )
        # Nor can the masked owner take over a live lease.
        steal = attacker.post(
            f"{runner}/lease",
            json={
                "owner": "attacker:1:0:1", "expected_owner": seen, "statuses": ["running"],
                "now": now, "lease_until": now + 60,
            },
        )  # fmt: skip
    assert beat.json() == {"cancel": None}
    assert finish.json() == {"finished": False}
    assert steal.status_code == 409
    with server.http(read_token) as snoop:
        assert snoop.get("/api/v1/executions/kx_pwn0006").json()["status"] == "running"


def test_the_server_url_for_containers_is_not_taken_from_a_record(
    server: ServerProcess, write_token: str
) -> None:
    with server.http(write_token) as attacker:
        made = attacker.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    "kx_pwn0007", metadata={"server_url": "http://attacker.example"}
                ),
                "inputs": [],
            },
        )
        assert made.status_code == 201
        info = attacker.get("/api/v1/info").json()
    # What containers the server starts are told: its own configured address.
    assert info["public_url"] == server.url
    # (kitaru/stacks/_reporting.py ignores the metadata: tests/server/test_reporting.py.)


def test_the_server_starts_no_image_a_record_names_outside_the_stacks_registry(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # An admin's docker stack, whose containers get its secrets.
    with server.http(server.token("admin")) as admin:
        made = admin.post(
            "/api/v1/stacks",
            json={
                "name": "box", "orchestrator": "docker", "artifact_store": server.store,
                "registry": "registry.example.com/team", "journal": "env:JOBS_JOURNAL_URL",
                "settings": {"secret_environment": {"OPENAI_API_KEY": "env:OPENAI_API_KEY"}},
            },
        )  # fmt: skip
        assert made.status_code == 201, made.text
    # The attacker records a crashed run of their own on it, in an image of their choice.
    with server.http(write_token) as attacker:
        attacker.post(
            "/api/v1/executions",
            json={
                "execution": record(
                    "kx_pwn0010", stack="box", orchestrator="docker", run_id="c0ffee",
                    metadata={"image": "attacker.example/steal-secrets:latest"},
                ),
                "inputs": [],
            },
        )  # fmt: skip
        resumed = attacker.post("/api/v1/executions/kx_pwn0010/resume")
        after = attacker.get("/api/v1/executions/kx_pwn0010").json()
    assert resumed.status_code == 409 and "not in the registry" in resumed.json()["detail"]
    assert after["status"] == "failed" and after["run_id"] == "c0ffee"  # nothing was started


# 4. Memory exhaustion without a token ------------------------------------------------


def _send_raw(url: str, head: bytes, body_size: int) -> bytes:
    """Send a request with a body of `body_size` bytes as fast as the server takes it,
    stopping when the server answers; the answer (the server may refuse before it has
    taken the body, and close the connection)."""
    import select

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        chunk = b"[" * MiB
        sent = 0
        answer = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < body_size else [], [], 1)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and len(answer.split(b"\r\n\r\n", 1)[1]) > 0:
                    break
            elif writable:
                try:
                    sent += sock.send(chunk)
                except OSError:
                    break
        return answer


def test_a_huge_body_without_a_token_costs_the_server_no_memory(
    server: ServerProcess, write_token: str
) -> None:
    pid = server.proc.pid
    with server.http(write_token) as http:
        assert http.get("/api/v1/executions").status_code == 200  # warm
    before = peak_rss(pid)
    size = 200 * MiB
    head = (
        f"POST /api/v1/stacks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer = _send_raw(server.url, head, size)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # Streamed without a declared length, with a token: cut at the JSON limit.
    chunked = _send_raw(
        server.url,
        (
            "POST /api/v1/runner/executions/kx_1/logs HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {write_token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        ).encode(),
        size,
    )
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert peak_rss(pid) - before < 32 * MiB
    with server.http(write_token) as http:
        assert http.get("/api/v1/executions").status_code == 200


# 5. One bad record breaks nothing ----------------------------------------------------


def test_a_bad_record_is_refused_and_listing_keeps_answering(
    server: ServerProcess, write_token: str, read_token: str
) -> None:
    with server.http(write_token) as attacker:
        bad = attacker.post(
            "/api/v1/executions",
            json={"execution": record("kx_pwn0008", created_at="abc"), "inputs": []},
        )
        assert bad.status_code == 422 and "created_at" in bad.json()["detail"]
        nested = attacker.post(
            "/api/v1/executions/kx_pwn0001/input",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
        )
        assert nested.status_code == 422 and "deeper" in nested.json()["detail"]
        meta = {"a": 1}
        for _ in range(200):
            meta = {"a": meta}
        deep_meta = attacker.post(
            "/api/v1/executions",
            json={"execution": record("kx_pwn0009", metadata=meta), "inputs": []},
        )
        assert deep_meta.status_code == 422
        unbounded = attacker.get("/api/v1/records/executions", params={"limit": 10**9})
        assert unbounded.status_code == 422
    with server.http(read_token) as reader:
        assert reader.get("/api/v1/executions").status_code == 200
        assert reader.get("/api/v1/records/executions").status_code == 200
        assert reader.get("/api/v1/executions", params={"limit": 5000}).status_code == 422
    page = httpx.get(
        f"{server.url}/ui/executions", cookies={"kitaru_session": read_token}, timeout=30
    )
    assert page.status_code == 200 and "kx_pwn0008" not in page.text


# 6. The smaller points ----------------------------------------------------------------


def test_webhook_signatures_stay_out_of_the_access_log(
    server: ServerProcess, write_token: str, victim: dict[str, Any]
) -> None:
    hook = f"{server.url}/api/v1/hooks/waits/kx_x/approve?expires=99&sig=deadbeef"
    assert httpx.post(hook, json=True, timeout=30).status_code == 401
    time.sleep(0.5)
    log = server.log()
    assert "/api/v1/hooks/waits/kx_x/approve?<signature hidden>" in log
    assert "deadbeef" not in log


def _sign_in(server: ServerProcess, token: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/ui/login")
        nonce = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        return browser.post("/ui/login", data={"token": token, "csrf": nonce})


def test_signing_in_and_out_needs_the_forms_own_token(
    server: ServerProcess, write_token: str
) -> None:
    # Another site posts the attacker's token to the sign-in form (login CSRF).
    forged = httpx.post(f"{server.url}/ui/login", data={"token": write_token}, timeout=30)
    assert forged.status_code == 403 and "kitaru_session" not in forged.headers.get(
        "set-cookie", ""
    )
    # Or signs a person out.
    out = httpx.post(f"{server.url}/ui/logout", cookies={"kitaru_session": write_token}, timeout=30)
    assert out.status_code == 403
    assert _sign_in(server, write_token).status_code == 303


def test_api_answers_carry_security_headers(server: ServerProcess, read_token: str) -> None:
    with server.http(read_token) as http:
        for answer in (http.get("/api/v1/info"), http.get("/api/v1/executions/kx_nope")):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["cache-control"] == "no-store"
    unauthenticated = httpx.get(f"{server.url}/api/v1/info", timeout=30)
    assert unauthenticated.headers["x-content-type-options"] == "nosniff"
