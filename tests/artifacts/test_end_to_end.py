"""A real flow whose artifacts live on each object store: it crashes mid-run, is resumed
from the CLI in another process, and its results are read back from the bucket."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import kitaru_cli, run_python, write_script

import kitaru.artifacts

from .backends import OBJECT_BACKENDS, Backend

FLOW = """
import os
import re
from pathlib import Path
from kitaru import checkpoint, flow

HERE = Path(__file__).resolve().parent

@checkpoint
def fetch(n: int) -> bytes:
    with open(HERE / "fetch-runs", "a") as f:
        f.write("x")
    return bytes(range(256)) * (n // 256)

@checkpoint
def summarize(data: bytes) -> dict[str, int]:
    if not (HERE / "crashed").exists():
        (HERE / "crashed").write_text("once")
        os._exit(3)  # the process dies: no exception handler, no cleanup
    return {"size": len(data), "last": data[-1]}

@flow
def pipeline(n: int) -> dict[str, int]:
    return summarize(fetch(n))

if __name__ == "__main__":
    print(pipeline.run(256 * 1024).result())
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", OBJECT_BACKENDS, indirect=True)
def test_crash_resume_and_read_back(backend: Backend, tmp_path: Path) -> None:
    script = write_script(tmp_path / "app" / "pipeline.py", FLOW)
    env = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": backend.uri}

    crashed = run_python(script, env=env, cwd=tmp_path)
    assert crashed.returncode == 3, crashed
    [execution] = kitaru_cli("executions", "list", "--json", env=env).json()
    assert execution["status"] == "crashed"
    exec_id = execution["exec_id"]

    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed
    view = resumed.json()
    assert view["status"] == "completed"
    assert view["result"] == {"size": 256 * 1024, "last": 255}
    assert (tmp_path / "app" / "fetch-runs").read_text() == "x"  # fetch ran once

    artifacts = {
        a["name"]: a for a in kitaru_cli("artifacts", "list", exec_id, "--json", env=env).json()
    }
    fetched = artifacts["fetch"]
    assert fetched["uri"].startswith(backend.uri + "/" + exec_id + "/")
    out = tmp_path / "fetched.bin"
    got = kitaru_cli("artifacts", "get", fetched["artifact_id"], "--out", str(out), env=env)
    assert got.returncode == 0, got
    assert out.read_bytes() == bytes(range(256)) * 1024

    # The bytes are in the user's bucket, under the execution's prefix.
    store = kitaru.artifacts.open_store(backend.uri)
    assert fetched["uri"] in [f"{backend.uri}/{k}" for k in store.list(exec_id + "/")]


@pytest.mark.parametrize("backend", ["s3-localstack"], indirect=True)
def test_bucket_example(backend: Backend) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "bucket_artifacts.py"
    env = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": backend.uri}
    proc = run_python(example, env=env)
    assert proc.returncode == 0, proc
    assert "fingerprint " in proc.stdout
    assert re.search(rf"render_dataset +8000000 bytes +{re.escape(backend.uri)}/kx_", proc.stdout)
