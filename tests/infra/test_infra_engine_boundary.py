"""The Automation API against a stand-in for the Pulumi CLI.

The real CLI cannot be downloaded on these machines, so a small script takes its place
on PATH: it answers `pulumi version`, records every command and the state it is given,
and fails the engine commands (preview, up, destroy) the way the real engine fails. This
checks everything Kitaru hands to the engine (stack, backend, secrets passphrase, provider
config, plugin version) and how an engine failure reaches the user.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest
from kitaru_infra import InfraError, destroy, preview, provision

FAKE_CLI = """#!/bin/sh
{{
  echo "ARGS: $*"
  echo "PASSPHRASE_FILE: $PULUMI_CONFIG_PASSPHRASE_FILE"
  [ -f Pulumi.yaml ] && sed 's/^/YAML: /' Pulumi.yaml
}} >> "{log}"
for arg in "$@"; do
  case "$arg" in
    version) echo "v3.272.0"; exit 0 ;;
    preview|up|destroy)
      echo "error: could not connect to the cluster: context kind-ci does not exist" >&2
      exit 255 ;;
  esac
done
exit 0
"""


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pulumi.log"
    cli = bin_dir / "pulumi"
    cli.write_text(FAKE_CLI.format(log=log))
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    return log


@pytest.mark.parametrize("action", [preview, provision, destroy])
def test_engine_gets_stack_backend_config_and_plugin_and_its_failure_is_reported(
    action: object, fake_cli: Path, kitaru_home: Path
) -> None:
    with pytest.raises(InfraError) as caught:
        action("kubernetes", "dev", {"context": "kind-ci"})  # type: ignore[operator]
    name = {preview: "preview", provision: "provision", destroy: "destroy"}[action]  # type: ignore[index]
    assert str(caught.value) == (
        f"{name} of stack 'dev' failed: pulumi exited 255:\n"
        "error: could not connect to the cluster: context kind-ci does not exist"
    )

    log = fake_cli.read_text()
    state = kitaru_home / "pulumi"
    assert f"YAML:   url: {state.as_uri()}" in log
    assert "YAML: name: kitaru" in log
    assert "stack select --stack dev" in log
    assert (
        "config set kubernetes:context --plaintext --stack dev --non-interactive -- kind-ci" in log
    )
    version = metadata.version("pulumi-kubernetes")
    assert f"plugin install resource kubernetes v{version}" in log
    assert f"PASSPHRASE_FILE: {state / 'passphrase'}" in log
    engine_command = {"preview": "preview", "provision": "up", "destroy": "destroy"}[name]
    assert f"--non-interactive {engine_command} " in log
    assert "--exec-kind auto.inline" in log


def test_a_backend_url_and_a_team_passphrase_are_passed_through(
    fake_cli: Path, kitaru_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "team secret")
    with pytest.raises(InfraError):
        preview("aws_batch", "prod", {"region": "eu-west-1"}, backend_url="s3://team-state/kitaru")
    log = fake_cli.read_text()
    assert "YAML:   url: s3://team-state/kitaru" in log
    assert "config set aws:region --plaintext --stack prod --non-interactive -- eu-west-1" in log
    assert f"plugin install resource aws v{metadata.version('pulumi-aws')}" in log
    # The team's passphrase is used as is; no passphrase file is made.
    assert "PASSPHRASE_FILE: \n" in log
    assert not (kitaru_home / "pulumi").exists()
