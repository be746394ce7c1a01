"""What the stack tests need from scripts/services (docker.sh, postgres.sh, moto.sh):
the tests fail, not skip, when a service is missing."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO


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


def extra_ca() -> str:
    """A CA certificate file to pass as the builder's `ca_certificates` (the machine's own
    extra CAs where it has them: these machines reach package indexes through a
    TLS-intercepting proxy)."""
    found = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")) or sorted(
        Path("/etc/ssl/certs").glob("*.pem")
    )
    if not found:
        pytest.fail("no CA certificate file on this machine to test ca_certificates with")
    return str(found[0])


def write_project(root: Path) -> Path:
    """A copy of examples/stack_agent (the builder writes its uv.lock there)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "agent.py"):
        shutil.copy(REPO / "examples" / "stack_agent" / name, root / name)
    return root
