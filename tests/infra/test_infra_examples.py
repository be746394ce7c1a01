"""The infrastructure examples, executed."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from infra_mocks import run_mocked

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_own_program_example_exports_what_the_stack_needs() -> None:
    recorded = run_mocked(lambda: runpy.run_path(str(EXAMPLES / "infra_own_program.py")))
    outputs = recorded.outputs["kitaru"]
    assert outputs["artifact_store"] == "s3://agents-artifacts-8c2f1a"
    assert outputs["region"] == "eu-west-1"
    assert outputs["job_queue"].endswith(":job-queue/agents-queue")
    compute = recorded.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    assert compute["computeResources"]["maxVcpus"] == 32
    assert recorded.one("aws:s3/bucket:Bucket").inputs["tags"]["team"] == "research"


def test_provision_example_without_the_pulumi_cli_says_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "infra_provision.py"), "demo"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": str(empty),
            "HOME": str(tmp_path),
            "KITARU_HOME": str(tmp_path / "kh"),
        },
        timeout=120,
    )
    assert result.returncode == 1, result
    assert result.stderr.startswith(
        "error: the Pulumi CLI is not installed; install the Pulumi CLI with `curl -fsSL https://get.pulumi.com | sh`"
    )
