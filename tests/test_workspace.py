"""The workspace installs as separate distributions, and the core stays light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib import metadata

import pytest

MEMBERS = {
    "kitaru-orchestrators": "kitaru_orchestrators",
    "kitaru-builders": "kitaru_builders",
    "kitaru-stacks": "kitaru_stacks",
    "kitaru-infra": "kitaru_infra",
}


@pytest.mark.parametrize("distribution", sorted(MEMBERS))
def test_member_distributions_are_installed_and_importable(distribution: str) -> None:
    assert metadata.version(distribution)
    importlib.import_module(MEMBERS[distribution])


def test_import_kitaru_pulls_in_no_cloud_sdk_server_or_pulumi() -> None:
    code = (
        "import json, sys, kitaru; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code])))
    heavy = {
        "boto3",
        "botocore",
        "google",
        "azure",
        "fastapi",
        "uvicorn",
        "starlette",
        "pulumi",
        "docker",
        "kubernetes",
        "pydantic",
        "httpx",
        "typer",
        "rich",
        "sqlite3",
        "psycopg",
        "asyncio",
    }
    assert loaded & heavy == set()
    assert not any(m.startswith("kitaru_") for m in loaded)
