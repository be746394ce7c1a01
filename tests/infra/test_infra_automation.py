"""preview / provision / destroy without a Pulumi CLI, bad input, and what imports what.

These machines cannot download the Pulumi CLI, so the engine itself never runs here: the
tests check every step up to it (validation, the missing-extra and missing-CLI errors,
the CLI's exit codes) and the parsing of the engine's events. CI previews for real
(.github/workflows/infra-preview.yml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kitaru_infra import (
    InfraConfigError,
    MissingExtraError,
    PulumiCliMissingError,
    ResourceChange,
    default_backend_url,
    destroy,
    preview,
    provision,
)
from kitaru_infra._automation import step_of
from kitaru_infra.cli import main


@pytest.fixture
def no_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH and HOME with no Pulumi CLI, whatever this machine has."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return empty


@pytest.mark.parametrize("action", [preview, provision, destroy])
def test_each_action_says_how_to_install_the_cli(
    action: object, no_pulumi_cli: Path, kitaru_home: Path
) -> None:
    with pytest.raises(PulumiCliMissingError) as caught:
        action("kubernetes", "dev", {"namespace": "agents"})  # type: ignore[operator]
    message = str(caught.value)
    assert message.startswith("the Pulumi CLI is not installed")
    assert "curl -fsSL https://get.pulumi.com | sh" in message
    assert "on PATH" in message
    # Nothing was written: no state directory, no passphrase.
    assert not (kitaru_home / "pulumi").exists()


def test_cli_exits_non_zero_with_one_line_saying_how_to_install(
    no_pulumi_cli: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kitaru_infra",
            "preview",
            "aws_batch",
            "--name",
            "dev",
            "--set",
            "region=eu-west-1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KITARU_HOME": str(tmp_path / "kh")},
        timeout=120,
    )
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the Pulumi CLI is not installed; install the Pulumi CLI")


def test_a_cli_in_the_installers_directory_is_found_without_path(
    no_pulumi_cli: Path, tmp_path: Path
) -> None:
    from kitaru_infra import pulumi_cli

    binary = tmp_path / "home" / ".pulumi" / "bin" / "pulumi"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert pulumi_cli() == binary


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["preview", "aws-lambda", "-n", "dev"],
            "no infrastructure program for flavor 'aws-lambda'; use one of aws_batch, gcp_cloud_run, azure_container_apps, kubernetes",
        ),
        (
            ["preview", "aws_batch", "-n", "dev", "--set", "regoin=eu-west-1"],
            "aws_batch: unknown setting 'regoin'; the settings are: name_prefix, labels, force_destroy, region,",
        ),
        (
            ["preview", "aws_batch", "-n", "dev", "--set", "max_vcpus=0"],
            "aws_batch: setting 'max_vcpus': Input should be greater than or equal to 1",
        ),
        (
            ["preview", "aws_batch", "-n", "dev", "--set", "log_retention_days=10"],
            "aws_batch: log_retention_days must be one of 1, 3, 5, 7, 14, 30,",
        ),
        (
            ["preview", "aws_batch", "-n", "dev", "--set", 'subnet_ids=["subnet-1"]'],
            "aws_batch: subnet_ids without security_group_ids needs vpc_id",
        ),
        (
            ["preview", "gcp_cloud_run", "-n", "dev"],
            "gcp_cloud_run: setting 'project' is required (set it with --set project=...)",
        ),
        (
            ["preview", "kubernetes", "-n", "dev", "--set", "namespace=Agents"],
            "kubernetes: setting 'namespace': String should match pattern",
        ),
        (
            ["preview", "kubernetes", "-n", "dev", "--set", "name_prefix=K"],
            "kubernetes: setting 'name_prefix': String should match pattern",
        ),
        (
            ["preview", "kubernetes", "-n", "dev", "--set", "namespace"],
            "--set 'namespace' is not key=value",
        ),
        (
            ["preview", "kubernetes", "-n", "dev/prod"],
            "stack name 'dev/prod' cannot name a Pulumi stack",
        ),
        (["destroy", "kubernetes", "-n", "dev"], "destroying 'dev' needs confirmation; pass --yes"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_2(
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    kitaru_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}"), err
    assert err.count("\n") == 1
    assert not (kitaru_home / "pulumi").exists()


def test_settings_lists_defaults_and_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["settings", "gcp_cloud_run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_name = {s["setting"]: s for s in listed["settings"]}
    assert by_name["project"]["required"] is True
    assert by_name["region"]["default"] == "us-central1"
    assert listed["outputs"][:3] == ["artifact_store", "bucket", "registry"]
    assert main(["settings", "kubernetes"]) == 0
    text = capsys.readouterr().out
    assert "namespace" in text and "outputs: namespace, service_account" in text


def test_a_missing_provider_names_the_extra_that_installs_it(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['pulumi_azure_native'] = None  # as if kitaru[azure] were not installed\n"
        "from kitaru_infra import preview, MissingExtraError\n"
        "try:\n"
        "    preview('azure_container_apps', 'dev')\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "KITARU_HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.stdout.strip() == (
        "the azure_container_apps infrastructure program needs pulumi_azure_native, which is "
        'not installed; install it with: pip install "kitaru[azure]"'
    ), result
    assert issubclass(MissingExtraError, Exception)


def test_importing_kitaru_infra_and_its_cli_loads_no_pulumi_and_no_pydantic() -> None:
    """The CLI app is mounted into `kitaru`, whose start-up stays light."""
    script = (
        "import sys, kitaru, kitaru_infra, kitaru_infra.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'pulumi_aws', "
        "'pulumi_gcp', 'pulumi_azure_native', 'pulumi_kubernetes', 'pydantic'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_preview_steps_come_from_the_engines_resource_events() -> None:
    from pulumi.automation.events import EngineEvent

    def event(op: str, typ: str, name: str) -> EngineEvent:
        urn = f"urn:pulumi:dev::kitaru::kitaru:infra:Kubernetes${typ}::{name}"
        return EngineEvent.from_json(
            {
                "sequence": 3,
                "timestamp": 1700000000,
                "resourcePreEvent": {
                    "metadata": {"op": op, "urn": urn, "type": typ, "provider": ""}
                },
            }
        )

    assert step_of(event("create", "kubernetes:core/v1:ServiceAccount", "kitaru-job")) == (
        ResourceChange("create", "kubernetes:core/v1:ServiceAccount", "kitaru-job")
    )
    assert step_of(event("replace", "aws:ecr/repository:Repository", "kitaru-images")) == (
        ResourceChange("replace", "aws:ecr/repository:Repository", "kitaru-images")
    )
    # The stack and the component itself are not steps a reviewer acts on.
    assert step_of(event("create", "pulumi:pulumi:Stack", "kitaru-dev")) is None
    assert step_of(event("create", "kitaru:infra:Kubernetes", "kitaru")) is None
    assert (
        step_of(
            EngineEvent.from_json(
                {"sequence": 1, "timestamp": 1, "stdoutEvent": {"message": "x", "color": "never"}}
            )
        )
        is None
    )


def test_default_state_lives_under_kitaru_home(kitaru_home: Path) -> None:
    assert default_backend_url() == (kitaru_home / "pulumi").as_uri()
    assert (kitaru_home / "pulumi").is_dir()


def test_default_backend_gets_a_private_passphrase_and_remote_ones_need_yours(
    kitaru_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kitaru_infra._automation import _secrets_env

    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    env = _secrets_env(default_backend_url(), is_default=True)
    path = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert path.parent == kitaru_home / "pulumi"
    assert path.stat().st_mode & 0o777 == 0o600
    passphrase = path.read_text()
    assert len(passphrase) >= 32
    # Stable across runs: the state stays readable.
    _secrets_env(default_backend_url(), is_default=True)
    assert path.read_text() == passphrase

    with pytest.raises(InfraConfigError, match="set PULUMI_CONFIG_PASSPHRASE"):
        _secrets_env("s3://team-state/kitaru", is_default=False)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "team secret")
    assert _secrets_env("s3://team-state/kitaru", is_default=False) == {}
    # Pulumi Cloud encrypts secrets itself.
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    assert _secrets_env("https://api.pulumi.com", is_default=False) == {}
