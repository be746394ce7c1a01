"""`kitaru stack preview / provision / destroy` through the real CLI and Automation API.

The engine is the stand-in Pulumi CLI (stand_in_pulumi.py): it declares the resources
the real program declares (recorded on Pulumi's mocks) and returns the outputs the real
program exports, and keeps its state in the backend Kitaru names. So these tests see
what a user sees: the stack created from the outputs, the settings it keeps, its state
where it should be, and the stack gone after destroy. Without any Pulumi CLI each command
says how to install it and changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import Recorded, run_program
from stand_in_pulumi import CURRENT, FILE_EVENTS, calls, install

from tests.conftest import REPO, kitaru_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CLI_MISSING = (
    "error: the Pulumi CLI is not installed; install the Pulumi CLI with "
    "`curl -fsSL https://get.pulumi.com | sh`"
)


@pytest.fixture(scope="module")
def aws_program() -> Recorded:
    return run_program("aws_batch", {"region": "eu-west-1", "max_vcpus": 32})


@pytest.fixture(scope="module")
def k8s_program() -> Recorded:
    return run_program("kubernetes", {"namespace": "agents", "journal_url": "postgresql://x"})


class Engine:
    """The stand-in CLI on PATH, answering for one program."""

    def __init__(self, root: Path, recorded: Recorded) -> None:
        self.log = root / "pulumi.log"
        bin_dir = root / "bin"
        install(bin_dir, self.log)
        resources = root / "resources.json"
        resources.write_text(
            json.dumps(
                [[r.type, r.name] for r in recorded.resources if not r.type.startswith("kitaru:")]
            )
        )
        outputs = root / "outputs.json"
        outputs.write_text(json.dumps(recorded.outputs))
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STAND_IN_PULUMI_RESOURCES": str(resources),
            "STAND_IN_PULUMI_OUTPUTS": str(outputs),
            "PULUMI_CONFIG_PASSPHRASE": "",
            "PULUMI_CONFIG_PASSPHRASE_FILE": "",
        }

    def run(self, *args: str, **env: str) -> Any:
        return kitaru_cli("stack", *args, env={**self.env, **env}, timeout=180)

    def commands(self) -> list[list[str]]:
        return [c["args"] for c in calls(self.log)]


def _stacks() -> list[str]:
    return [s["name"] for s in kitaru_cli("stack", "list", "--json").json()]


def test_provision_creates_the_stack_from_the_outputs_and_destroy_removes_both(
    tmp_path: Path, kitaru_home: Path, aws_program: Recorded
) -> None:
    engine = Engine(tmp_path, aws_program)
    outputs = aws_program.outputs
    state = kitaru_home / "pulumi" / ".pulumi" / "stacks" / "kitaru" / "prod.json"
    new = ["--flavor", "aws_batch", "--set", "region=eu-west-1", "--set", "max_vcpus=32"]

    preview = engine.run("preview", "prod", *new, "--json")
    assert preview.returncode == 0, preview
    planned = preview.json()
    declared = len([r for r in aws_program.resources if not r.type.startswith("kitaru:")])
    assert planned["changes"] == {"create": declared}
    assert {"op": "create", "type": "aws:batch/jobQueue:JobQueue", "name": "kitaru-queue"} in (
        planned["steps"]
    )
    assert _stacks() == ["local"], "a preview registers nothing"

    bad = engine.run("provision", "prod", *new, "--set", "memory_mib=lots")
    assert bad.returncode == 2, bad
    assert bad.stderr.startswith("error: setting 'memory_mib': Input should be a valid integer")
    no_journal = engine.run("provision", "prod", *new)
    assert no_journal.returncode == 2
    assert "the SQLite journal" in no_journal.stderr and "--journal env:" in no_journal.stderr
    assert "up" not in [c[0] for c in engine.commands() if c], "the engine ran for bad input"

    made = engine.run(
        "provision",
        "prod",
        *new,
        "--set",
        "memory_mib=4096",
        "--journal",
        "env:KITARU_PROD_JOURNAL_URL",
        "--use",
        "--json",
    )
    assert made.returncode == 0, made
    view = made.json()
    host, _, repository = outputs["registry"].partition("/")
    assert (view["name"], view["orchestrator"], view["active"]) == ("prod", "aws_batch", True)
    assert view["artifact_store"] == outputs["artifact_store"]
    assert view["registry"] == host
    assert view["journal"] == "env:KITARU_PROD_JOURNAL_URL"
    settings = view["settings"]
    for key in ("region", "job_queue", "job_role_arn", "execution_role_arn", "log_group"):
        assert settings[key] == outputs[key], key
    assert settings["repository"] == repository
    assert settings["memory_mib"] == 4096
    assert settings["infra_inputs"] == {"region": "eu-west-1", "max_vcpus": 32}
    assert settings["infra_backend"] == (kitaru_home / "pulumi").as_uri()
    assert settings["infra_outputs"] == outputs
    assert json.loads(state.read_text())["outputs"] == outputs
    commands = [" ".join(c) for c in engine.commands()]
    assert any("config set aws:region" in c and c.endswith("eu-west-1") for c in commands)
    assert any(c.startswith("up --yes --skip-preview") for c in commands)
    # The default backend gets its private passphrase, like the real engine needs.
    assert all(c["passphrase"] for c in calls(engine.log) if c["args"][:1] == ["up"])

    shown = kitaru_cli("stack", "show", "prod")
    assert shown.returncode == 0, shown
    assert re.search(rf"\njob_queue +{re.escape(outputs['job_queue'])}\n", shown.stdout)
    assert f"state in {(kitaru_home / 'pulumi').as_uri()}" in shown.stdout
    assert "settings      region=eu-west-1 max_vcpus=32" in shown.stdout
    assert re.search(
        rf"\norchestrator_policy_arn +{outputs['orchestrator_policy_arn']}\n", shown.stdout
    )
    assert "\njob_queue" not in shown.stdout.partition("infrastructure")[2]

    # Later commands take the settings from the stack; a change is all they need.
    again = engine.run("preview", "prod", "--json")
    assert again.returncode == 0, again
    assert again.json()["changes"] == {"same": declared}
    updated = engine.run("provision", "prod", "--set", "spot=true", "--json")
    assert updated.returncode == 0, updated
    assert updated.json()["settings"]["infra_inputs"] == {
        "region": "eu-west-1",
        "max_vcpus": 32,
        "spot": True,
    }
    assert updated.json()["settings"]["memory_mib"] == 4096
    moved = engine.run("provision", "prod", "--backend", (tmp_path / "other").as_uri())
    assert moved.returncode == 2
    assert "the infrastructure state of stack 'prod' is in file://" in moved.stderr
    other = engine.run("provision", "prod", "--flavor", "kubernetes")
    assert other.returncode == 2 and "is a aws_batch stack" in other.stderr

    before = kitaru_cli("stack", "show", "prod", "--json").json()
    unconfirmed = engine.run("destroy", "prod")
    assert unconfirmed.returncode == 2
    assert "needs confirmation; pass --yes" in unconfirmed.stderr
    assert kitaru_cli("stack", "show", "prod", "--json").json() == before

    gone = engine.run("destroy", "prod", "--yes", "--json")
    assert gone.returncode == 0, gone
    result = gone.json()
    assert (result["destroyed"], result["deleted"]) == (True, True)
    assert result["provision_again"] == (
        "kitaru stack provision prod --flavor aws_batch --set region=eu-west-1 "
        f"--set max_vcpus=32 --set spot=true --backend {(kitaru_home / 'pulumi').as_uri()}"
    )
    assert _stacks() == ["local"]
    assert json.loads(state.read_text())["resources"] == []
    assert kitaru_cli("stack", "show", "--json").json()["name"] == "local"

    # Without a stack record (a first provision that failed half-way), the same --flavor
    # and --set find the state; a stack that was never provisioned has none.
    cleanup = engine.run("destroy", "prod", *new, "--yes", "--json")
    assert cleanup.returncode == 0, cleanup
    assert (cleanup.json()["destroyed"], cleanup.json()["deleted"]) == (True, False)
    ghost = engine.run("destroy", "ghost", *new, "--yes")
    assert ghost.returncode == 1
    assert ghost.stderr.startswith(
        f"error: nothing was provisioned for stack 'ghost' in {(kitaru_home / 'pulumi').as_uri()}"
    )


@pytest.mark.parametrize("version", [CURRENT, FILE_EVENTS], ids=["grpc-stream", "event-file"])
def test_preview_lists_every_step_whichever_way_the_engine_sends_its_events(
    tmp_path: Path, kitaru_home: Path, aws_program: Recorded, version: str
) -> None:
    engine = Engine(tmp_path, aws_program)
    new = ["--flavor", "aws_batch", "--set", "region=eu-west-1", "--set", "max_vcpus=32"]
    shown = engine.run("preview", "prod", *new, "--json", STAND_IN_PULUMI_VERSION=version)
    assert shown.returncode == 0, shown
    planned = shown.json()
    declared = sorted(
        [r.type, r.name]
        for r in aws_program.resources
        if not r.type.startswith(("kitaru:", "pulumi:"))
    )
    assert sorted([s["type"], s["name"]] for s in planned["steps"]) == declared
    assert {s["op"] for s in planned["steps"]} == {"create"}
    assert sum(planned["changes"].values()) >= len(declared)
    (event_log,) = [c[c.index("--event-log") + 1] for c in engine.commands() if "preview" in c]
    assert event_log.startswith("tcp://") == (version == CURRENT)


def test_provision_completes_a_registered_kubernetes_stack(
    tmp_path: Path, k8s_program: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(tmp_path, k8s_program)
    store = (tmp_path / "artifacts").as_uri()
    registered = kitaru_cli(
        "stack",
        "register",
        "k8s",
        "-o",
        "kubernetes",
        "-a",
        store,
        "--registry",
        "registry.example.com/agents",
        "--journal",
        "env:K8S_JOURNAL_URL",
        "--set",
        "namespace=agents",
        "--set",
        "environment.MODE=fast",
        "--no-check",
    )
    assert registered.returncode == 0, registered

    plain = engine.run("provision", "k8s", "--set", "journal_url=postgresql://u:pw@db/kitaru")
    assert plain.returncode == 2
    assert (
        "looks like a secret" in plain.stderr and "--set journal_url=env:VAR_NAME" in plain.stderr
    )
    unset = engine.run("provision", "k8s", "--set", "journal_url=env:K8S_JOURNAL_URL")
    assert unset.returncode == 1
    assert "K8S_JOURNAL_URL, which is not set here" in unset.stderr

    not_a_ref = engine.run("provision", "k8s", "--set", "secret_environment.DB=hunter2")
    assert not_a_ref.returncode == 2
    assert "--set secret_environment.DB: 'hunter2' is not a reference" in not_a_ref.stderr

    made = engine.run(
        "provision",
        "k8s",
        "--set",
        "journal_url=env:K8S_JOURNAL_URL",
        "--set",
        "environment.LEVEL=debug",
        "--json",
        K8S_JOURNAL_URL="postgresql://kitaru@db:5432/kitaru",
    )
    assert made.returncode == 0, made
    view = made.json()
    # Its own artifact store and registry stay; the namespace the program made, its
    # service account and the journal secret it filled in come from the outputs.
    assert view["registry"] == "registry.example.com/agents"
    assert view["journal"] == "secret:kitaru-journal#url"
    settings = view["settings"]
    assert settings["namespace"] == "agents"
    assert settings["service_account"] == k8s_program.outputs["service_account"]
    assert settings["environment"] == {"MODE": "fast", "LEVEL": "debug"}
    # The reference is kept, never the URL it stands for.
    assert settings["infra_inputs"] == {
        "namespace": "agents",
        "journal_url": "env:K8S_JOURNAL_URL",
    }
    assert "postgresql://kitaru@db" not in json.dumps(view)


def test_without_the_pulumi_cli_each_command_says_how_to_install_it_and_changes_nothing(
    tmp_path: Path, kitaru_home: Path
) -> None:
    registered = kitaru_cli(
        "stack",
        "register",
        "k8s",
        "-o",
        "kubernetes",
        "-a",
        (tmp_path / "artifacts").as_uri(),
        "--registry",
        "registry.example.com/agents",
        "--journal",
        "env:K8S_JOURNAL_URL",
        "--no-check",
    )
    assert registered.returncode == 0, registered
    before = kitaru_cli("stack", "list", "--json").json()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # Only the interpreter's own directory: no `pulumi` anywhere, not even ~/.pulumi/bin.
    no_cli = {"PATH": f"{empty}", "HOME": str(tmp_path / "home")}
    for args in (
        ["preview", "k8s"],
        ["provision", "k8s", "--set", "namespace=agents"],
        ["destroy", "k8s", "--yes"],
        ["preview", "prod", "--flavor", "aws_batch", "--set", "region=eu-west-1", "--json"],
        [
            "provision",
            "prod",
            "--flavor",
            "gcp_cloud_run",
            "--set",
            "project=acme-agents",
            "--journal",
            "env:PROD_JOURNAL_URL",
        ],
    ):
        result = kitaru_cli("stack", *args, env=no_cli)
        assert result.returncode == 1, (args, result)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(CLI_MISSING), (args, result.stderr)
    assert kitaru_cli("stack", "list", "--json").json() == before
    assert not (kitaru_home / "pulumi").exists()


def test_a_missing_extra_and_a_flavor_without_a_program_say_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import subprocess

    from kitaru.cli import main

    script = (
        "import sys\n"
        "sys.modules['pulumi_azure_native'] = None  # as if kitaru[azure] were not installed\n"
        "from kitaru.cli import main\n"
        "sys.exit(main(['stack', 'preview', 'az', '--flavor', 'azure_container_apps']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "KITARU_HOME": str(tmp_path / "kh")},
        timeout=120,
    )
    assert result.returncode == 2, result  # a missing extra: configuration to fix
    assert result.stderr == (
        "error: the azure_container_apps infrastructure program needs pulumi_azure_native, "
        'which is not installed; install it with: pip install "kitaru[azure]"\n'
    )
    assert main(["stack", "provision", "box", "--flavor", "docker"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: the docker flavor has no infrastructure program to provision (flavors with "
        "one: aws_batch, azure_container_apps, gcp_cloud_run, kubernetes)"
    )
    assert main(["stack", "destroy", "nothing-here", "--yes"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: stack 'nothing-here' does not exist; to create its infrastructure pass --flavor"
    )


def test_flavors_lists_the_infrastructure_settings_too() -> None:
    shown = kitaru_cli("stack", "flavors", "aws_batch", "--json")
    assert shown.returncode == 0, shown
    infra = shown.json()["infrastructure"]
    assert {"region", "max_vcpus", "spot", "journal_secret_arn"} <= set(infra)
    text = kitaru_cli("stack", "flavors", "aws_batch").stdout
    assert "infrastructure settings (kitaru stack provision NAME --flavor aws_batch" in text


def test_the_provision_example_runs_against_the_engine(
    tmp_path: Path, kitaru_home: Path, aws_program: Recorded
) -> None:
    import subprocess

    engine = Engine(tmp_path, aws_program)
    script = REPO / "examples" / "provision_stack.sh"
    done = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **engine.env,
            "KITARU": f"{sys.executable} -m kitaru",
            "PROD_JOURNAL_URL": "postgresql://kitaru@db:5432/kitaru",
        },
        timeout=300,
    )
    assert done.returncode == 0, done
    assert "infrastructure provisioned, stack created (aws_batch)" in done.stdout
    assert "prod: infrastructure destroyed; stack deleted" in done.stdout


def test_a_stack_whose_journal_is_a_platform_secret_uses_this_machines_journal_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `provision` makes of a journal secret: the containers get the secret, the
    machine that submits reaches the same journal through KITARU_JOURNAL_URL."""
    from kitaru._errors import ConfigurationError
    from kitaru.journal import StackRecord
    from kitaru.stacks._resolve import journal_url_for

    stack = StackRecord(
        name="prod",
        orchestrator="aws_batch",
        artifact_store="s3://b",
        journal="secret:arn:aws:secretsmanager:eu-west-1:123456789012:secret:journal-AbC",
    )
    with pytest.raises(ConfigurationError, match="set KITARU_JOURNAL_URL to the same journal"):
        journal_url_for(stack)
    monkeypatch.setenv("KITARU_JOURNAL_URL", "postgresql://kitaru@db:5432/kitaru")
    assert journal_url_for(stack) == "postgresql://kitaru@db:5432/kitaru"
