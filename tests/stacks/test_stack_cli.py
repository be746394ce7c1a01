"""`kitaru stack ...` through the real CLI: register, use, list, show, delete, and every
bad input a user would type. Nothing half-registered survives an error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kitaru.cli import main
from tests.conftest import kitaru_cli


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _names() -> list[str]:
    return [s["name"] for s in kitaru_cli("stack", "list", "--json").json()]


def test_local_stack_is_built_in_default_and_cannot_be_deleted() -> None:
    stacks = kitaru_cli("stack", "list", "--json").json()
    assert [(s["name"], s["active"], s["orchestrator"]) for s in stacks] == [
        ("local", True, "local")
    ]
    shown = kitaru_cli("stack", "show", "--json").json()
    assert shown["name"] == "local" and shown["settings"]["mode"] == "in_process"
    gone = kitaru_cli("stack", "delete", "local")
    assert gone.returncode == 2 and "cannot be deleted" in gone.stderr


def test_register_use_show_list_delete(tmp_path: Path) -> None:
    store = (tmp_path / "art").as_uri()
    reg = kitaru_cli(
        "stack",
        "register",
        "bg",
        "--orchestrator",
        "local",
        "--artifact-store",
        store,
        "--set",
        "mode=subprocess",
        "--set",
        "environment.AGENT_MODE=fast",
        "--set",
        "secret_environment.OPENAI_API_KEY=env:OPENAI_API_KEY",
        "--json",
    )
    assert reg.returncode == 0, reg
    view = reg.json()
    assert view["settings"]["mode"] == "subprocess"
    assert view["settings"]["environment"] == {"AGENT_MODE": "fast"}
    assert view["settings"]["secret_environment"] == {"OPENAI_API_KEY": "env:OPENAI_API_KEY"}
    assert view["active"] is False

    used = kitaru_cli("stack", "use", "bg")
    assert used.returncode == 0 and "active stack: bg" in used.stdout
    listed = kitaru_cli("stack", "list")
    assert any(line.startswith("*") and " bg " in line for line in listed.stdout.splitlines())
    shown = kitaru_cli("stack", "show")
    assert "bg (active, from kitaru stack use)" in shown.stdout
    assert "secret_environment" in shown.stdout and "env:OPENAI_API_KEY" in shown.stdout

    # KITARU_STACK wins over `stack use`
    env_view = kitaru_cli("stack", "show", "--json", env={"KITARU_STACK": "local"}).json()
    assert env_view["name"] == "local" and env_view["active"] is True

    again = kitaru_cli("stack", "register", "bg", "-o", "local", "-a", store)
    assert (
        again.returncode == 2 and "already exists" in again.stderr and "--replace" in again.stderr
    )
    replaced = kitaru_cli("stack", "register", "bg", "-o", "local", "-a", store, "--replace")
    assert replaced.returncode == 0, replaced
    assert kitaru_cli("stack", "show", "bg", "--json").json()["settings"]["mode"] == "in_process"

    deleted = kitaru_cli("stack", "delete", "bg", "--json")
    assert deleted.returncode == 0 and deleted.json() == {"deleted": "bg", "active": "local"}
    assert "'bg' was the active stack" in deleted.stderr
    assert _names() == ["local"]
    assert kitaru_cli("stack", "show", "--json").json()["name"] == "local"


def test_use_of_missing_stack_lists_the_ones_that_exist(tmp_path: Path) -> None:
    kitaru_cli("stack", "register", "dev", "-o", "local", "-a", tmp_path.as_uri())
    missing = kitaru_cli("stack", "use", "prod")
    assert missing.returncode == 2
    assert "stack 'prod' does not exist; registered stacks: local, dev" in missing.stderr
    env_missing = kitaru_cli("stack", "show", env={"KITARU_STACK": "nope"})
    assert env_missing.returncode == 2 and "KITARU_STACK=nope" in env_missing.stderr


def test_bad_inputs_name_the_setting_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same CLI entry point as `kitaru`, in this process: many cases, one interpreter.
    store = tmp_path.as_uri()
    cases: list[tuple[list[str], str]] = [
        (
            ["-o", "nomad", "-a", store],
            "unknown orchestrator flavor 'nomad'; installed: aws_batch, azure_container_apps, "
            "docker, gcp_cloud_run, kubernetes, local",
        ),
        (
            ["-o", "aws_batch", "-a", "s3://bucket/x", "--set", "region=us-east-1"],
            "setting 'job_queue' is required for a aws_batch stack (AWS Batch job queue name "
            "or ARN); add --set job_queue=...",
        ),
        (["-o", "local", "-a", "my-bucket/prefix"], "--artifact-store 'my-bucket/prefix' is not"),
        (["-o", "local", "-a", "ftp://host/x"], "--artifact-store 'ftp://host/x' is not"),
        (["-o", "local", "-a", store, "--set", "mood=happy"], "has no setting 'mood'"),
        (["-o", "local", "-a", store, "--set", "mode=thread"], "setting 'mode'"),
        (["-o", "local", "-a", store, "--set", "nonsense"], "--set expects KEY=VALUE"),
        (
            ["-o", "local", "-a", store, "--set", "environment.AWS_SECRET_ACCESS_KEY=abc123"],
            "looks like a secret",
        ),
        (
            [
                "-o",
                "local",
                "-a",
                store,
                "--set",
                "environment.HF=hf_token_x",
                "--set",
                "environment.URL=postgresql://me:hunter2@db/app",
            ],
            "looks like a secret",
        ),
        (
            ["-o", "local", "-a", store, "--set", "secret_environment.TOKEN=plain-value"],
            "is not a reference",
        ),
        (
            ["-o", "local", "-a", store, "--journal", "postgresql://me:hunter2@db:5432/kitaru"],
            "--journal contains a password",
        ),
        (["-o", "local", "-a", store, "--journal", "mysql://db/x"], "--journal 'mysql://db/x'"),
        (
            ["-o", "docker", "-a", store],
            "--journal: the docker orchestrator runs executions where the SQLite journal",
        ),
        (
            ["-o", "kubernetes", "-a", store, "--journal", "postgresql://db/x", "--no-check"],
            "--registry is required for a kubernetes stack",
        ),
        (
            [
                "-o",
                "kubernetes",
                "-a",
                store,
                "--journal",
                "postgresql://db/x",
                "--registry",
                "https://ghcr.io/me",
                "--no-check",
            ],
            "--registry 'https://ghcr.io/me' is not a registry address",
        ),
        (["-o", "local", "-a", store, "--builder", "kaniko"], "--builder: the local orchestrator"),
        (
            [
                "-o",
                "docker",
                "-a",
                store,
                "--journal",
                "postgresql://db/x",
                "--builder",
                "kaniko",
                "--no-check",
            ],
            "unknown builder flavor 'kaniko'; installed: docker",
        ),
        (["-o", "local", "-a", store, "--set", "mode=subprocess", "--json", "x"], "Got unexpected"),
    ]
    for args, expected in cases:
        code = main(["stack", "register", "bad", *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert expected in err, (args, err)
        assert err.count("\n") <= 1 or "Usage" in err, err
    assert _names() == ["local"]


def test_unreachable_journal_bucket_and_registry(tmp_path: Path) -> None:
    port = _closed_port()
    store = tmp_path.as_uri()
    journal = kitaru_cli(
        "stack",
        "register",
        "x",
        "-o",
        "local",
        "-a",
        store,
        "--journal",
        f"postgresql://postgres@127.0.0.1:{port}/kitaru",
    )
    assert journal.returncode == 1
    assert journal.stderr.startswith("error: --journal cannot be reached")
    assert "--no-check" in journal.stderr

    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    bucket = kitaru_cli("stack", "register", "x", "-o", "local", "-a", (blocked / "a").as_uri())
    assert bucket.returncode == 1
    assert bucket.stderr.startswith("error: --artifact-store cannot be used")

    registry = kitaru_cli(
        "stack", "register", "x", "-o", "local", "-a", store, "--registry", f"127.0.0.1:{port}/k"
    )
    assert registry.returncode == 1
    assert f"--registry 127.0.0.1:{port}/k cannot be reached" in registry.stderr
    assert _names() == ["local"]

    unchecked = kitaru_cli(
        "stack",
        "register",
        "x",
        "-o",
        "local",
        "-a",
        store,
        "--registry",
        f"127.0.0.1:{port}/k",
        "--no-check",
    )
    assert unchecked.returncode == 0, unchecked
    assert _names() == ["local", "x"]


def test_missing_extra_names_the_pip_install(tmp_path: Path) -> None:
    # A user without the kubernetes client: the import fails like it would for them.
    blocker = tmp_path / "site" / "sitecustomize.py"
    blocker.parent.mkdir()
    blocker.write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'kubernetes' or name.startswith('kubernetes.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    result = kitaru_cli(
        "stack",
        "register",
        "k8s",
        "-o",
        "kubernetes",
        "-a",
        tmp_path.as_uri(),
        "--journal",
        "postgresql://db/x",
        "--registry",
        "localhost:5000/k",
        env={"PYTHONPATH": str(blocker.parent)},
    )
    # A missing extra is a configuration to fix, like a wrong setting: exit 2.
    assert result.returncode == 2, result
    assert 'install it with: pip install "kitaru[kubernetes]"' in result.stderr
    assert _names() == ["local"]


def test_flavors_show_their_settings_schema() -> None:
    listed = kitaru_cli("stack", "flavors", "--json").json()
    assert [f["flavor"] for f in listed] == [
        "aws_batch",
        "azure_container_apps",
        "docker",
        "gcp_cloud_run",
        "kubernetes",
        "local",
    ]
    batch = kitaru_cli("stack", "flavors", "aws_batch", "--json").json()
    assert batch["settings"]["job_queue"]["required"] is True
    assert batch["settings"]["memory_mib"]["default"] == 2048
    assert batch["needs_registry"] is True
    text = kitaru_cli("stack", "flavors", "kubernetes").stdout
    assert "service_account" in text and "ttl_seconds_after_finished" in text


def test_list_settings_are_judged_by_their_items(tmp_path: Path) -> None:
    # image_pull_secrets names Kubernetes Secrets; the name of the setting is no reason
    # to refuse it, but an item that is a secret is refused.
    common = ["-o", "kubernetes", "-a", tmp_path.as_uri(), "--journal", "postgresql://db/x"]
    common += ["--registry", "localhost:5000/k", "--no-check"]
    named = kitaru_cli(
        "stack", "register", "k8s", *common, "--set", 'image_pull_secrets=["regcred"]', "--json"
    )
    assert named.returncode == 0, named
    assert named.json()["settings"]["image_pull_secrets"] == ["regcred"]
    leaked = kitaru_cli(
        "stack", "register", "k8s2", *common, "--set", 'ca_certificates=["ghp_' + "x1Y2" * 9 + '"]'
    )
    assert leaked.returncode == 2 and "looks like a secret" in leaked.stderr
    assert _names() == ["local", "k8s"]
