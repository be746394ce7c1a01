"""The CI preview workflow previews every flavor or fails: never a green skip.

The workflow itself only runs on GitHub, so this reads it: every flavor is in the
matrix, each names the repository variables its cloud login reads, and its check step,
run here with bash as the runner runs it, fails with the names of the missing variables.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "infra-preview.yml"
FLAVORS = {"kubernetes", "aws_batch", "gcp_cloud_run", "azure_container_apps"}


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job: dict[str, Any] = workflow["jobs"]["preview"]
    return job


def _matrix(job: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {entry["flavor"]: entry for entry in job["strategy"]["matrix"]["include"]}


def _check_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if s.get("name") == "credentials configured?"]
    return step


def _run_check(
    job: dict[str, Any], flavor: str, tmp_path: Path, **values: str
) -> tuple[int, str, str]:
    """The check step's exit code, its output and what it added to the job summary."""
    step = _check_step(job)
    summary = tmp_path / "summary.md"
    summary.unlink(missing_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_STEP_SUMMARY": str(summary),
        "FLAVOR": flavor,
        "NEEDS": _matrix(job)[flavor]["needs"],
        **{name: "" for name in step["env"] if name.startswith("KITARU_CI_")},
        **values,
    }
    # The shell GitHub's runners use for `run:` on Linux.
    ran = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return ran.returncode, ran.stdout, summary.read_text() if summary.exists() else ""


def test_every_flavor_is_previewed_and_names_the_variables_its_login_reads(
    job: dict[str, Any],
) -> None:
    matrix = _matrix(job)
    assert set(matrix) == FLAVORS
    assert matrix["kubernetes"]["needs"] == ""
    text = WORKFLOW.read_text()
    used = set(re.findall(r"vars\.(KITARU_CI_\w+)", text))
    needed = {name for entry in matrix.values() for name in entry["needs"].split()}
    assert used == needed, "a variable the logins read is not checked (or the reverse)"
    check = _check_step(job)
    assert set(check["env"]) >= needed
    # No step is skipped on a condition other than its flavor, and nothing exits 0 early.
    for step in job["steps"]:
        condition = step.get("if")
        assert condition in (None, "always()") or re.fullmatch(
            r"matrix\.flavor == '\w+'", condition
        ), condition
        assert "exit 0" not in step.get("run", "")
        assert not step.get("continue-on-error")
    assert not job.get("continue-on-error")


@pytest.mark.parametrize("flavor", sorted(FLAVORS - {"kubernetes"}))
def test_a_cloud_flavor_without_its_variables_fails_and_says_which(
    job: dict[str, Any], flavor: str, tmp_path: Path
) -> None:
    needs = _matrix(job)[flavor]["needs"].split()
    code, out, summary = _run_check(job, flavor, tmp_path)
    assert code == 1
    assert out.startswith(f"::error::{flavor} was not previewed: set the repository variables")
    assert all(name in out for name in needs)
    assert f"**{flavor}**: not previewed" in summary

    code, out, _ = _run_check(job, flavor, tmp_path, **{n: "set" for n in needs[:-1]})
    assert code == 1
    assert needs[-1] in out
    assert all(name not in out for name in needs[:-1])

    assert _run_check(job, flavor, tmp_path, **{n: "set" for n in needs}) == (0, "", "")


def test_kubernetes_needs_nothing(job: dict[str, Any], tmp_path: Path) -> None:
    assert _run_check(job, "kubernetes", tmp_path) == (0, "", "")
