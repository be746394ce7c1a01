"""Agent runs recorded by 1.0.0a1, which numbered an adapter's tool calls in the order
they ran (`ops.tool.lookup#2`), resume with those keys: the tool calls that completed
are read back, not run again, and the rest run one at a time as they did then."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kitaru import KitaruClient
from tests.fixtures import v4_agents

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "journal_v4_agents.db"


@pytest.fixture
def client(tmp_path: Path) -> KitaruClient:
    path = tmp_path / "journal.db"
    shutil.copy(FIXTURE, path)
    v4_agents.ran.clear()
    return KitaruClient(f"sqlite:///{path}")


def _failed(client: KitaruClient, flow: str) -> str:
    [execution] = [e for e in client.executions.list() if e.flow == flow]
    assert execution.status == "failed"
    return execution.exec_id


def test_a_pydantic_ai_run_from_1_0_0a1_resumes_with_its_keys(client: KitaruClient) -> None:
    resumed = client.executions.resume(_failed(client, "pydantic_lookups"))
    assert resumed.status == "completed", resumed.error
    assert resumed.result == "item a item b item c"
    assert v4_agents.ran == ["ops.b", "ops.c"]  # the lookup of "a" was read back
    assert [(c["key"], c["origin"]) for c in resumed.checkpoints] == [
        ("ops.model", "journal"),
        ("ops.tool.lookup", "journal"),
        ("ops.tool.lookup#2", "ran"),
        ("ops.tool.lookup#3", "ran"),
        ("ops.model#2", "ran"),
    ]


def test_an_openai_agents_run_from_1_0_0a1_resumes_with_its_keys(client: KitaruClient) -> None:
    resumed = client.executions.resume(_failed(client, "openai_lookups"))
    assert resumed.status == "completed", resumed.error
    assert resumed.result == "page a page b page c"
    assert v4_agents.ran == ["reader.b", "reader.c"]
    assert [(c["key"], c["origin"]) for c in resumed.checkpoints] == [
        ("reader.model", "journal"),
        ("reader.tool.fetch", "journal"),
        ("reader.tool.fetch#2", "ran"),
        ("reader.tool.fetch#3", "ran"),
        ("reader.model#2", "ran"),
    ]
