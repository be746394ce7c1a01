"""What the stack tests need from scripts/services (docker.sh, postgres.sh, moto.sh):
the tests fail, not skip, when a service is missing."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.conftest import write_script

PROJECT_PYPROJECT = """
[project]
name = "stack-agent"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = []
"""

# The flow every container stack test runs: a checkpoint with an output big enough to go
# to the bucket, a crash on the first run, a wait answered from the host.
AGENT = """
import os, signal, sys, time
import kitaru
from kitaru import checkpoint, flow, wait

@checkpoint
def fetch(topic: str, pause: float) -> str:
    print("fetching", topic, "on", os.environ.get("KITARU_HOST"))
    time.sleep(pause)
    return ("facts about " + topic + ". ") * 2000

@checkpoint
def draft(facts: str) -> str:
    run = kitaru._runtime.current().run
    if os.environ.get("CRASH_ON_FIRST_RUN") == "1" and run == 1:
        print("crashing on purpose", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return facts[:22].upper()

@flow
def agent(topic: str, approval: bool = True, pause: float = 0.0) -> dict:
    text = draft(fetch(topic, pause))
    ok = wait("approve", schema=bool, question="publish?") if approval else True
    return {"draft": text, "approved": ok, "host": os.environ.get("KITARU_HOST", "")}

if __name__ == "__main__":
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    handle = agent.run(sys.argv[1], approval=len(sys.argv) < 3, pause=pause)
    print(handle.exec_id)
"""


def need(*names: str) -> dict[str, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: run the tests with `make test` (scripts/services/"
            "docker.sh, postgres.sh and moto.sh start the engine, registry, journal and S3)"
        )
    return {n: os.environ[n] for n in names}


def fresh_database() -> str:
    import psycopg

    base = need("KITARU_TEST_POSTGRES_URL")["KITARU_TEST_POSTGRES_URL"]
    name = "ks_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base.rpartition('/')[0]}/{name}"


def fresh_bucket(endpoint: str) -> str:
    import boto3

    name = "kitaru-stacks-" + uuid.uuid4().hex[:10]
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    return name


def write_project(root: Path) -> Path:
    write_script(root / "pyproject.toml", PROJECT_PYPROJECT)
    write_script(root / "agent.py", AGENT)
    return root
