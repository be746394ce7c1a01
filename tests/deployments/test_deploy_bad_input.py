"""What a user gets wrong when deploying: each a one-line error that says what to do, a
non-zero exit, and no deployment, tag or execution recorded. None of these builds an image."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import kitaru_cli, write_script
from tests.deployments._project import write_project
from tests.stacks._services import need


def _register(name: str, registry: str, env: dict[str, str]) -> None:
    registered = kitaru_cli(
        "stack", "register", name, "-o", "docker", "-a", "s3://not-used/runs",
        "--journal", env["KITARU_TEST_POSTGRES_URL"], "--registry", registry,
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}", "--no-check",
    )  # fmt: skip
    assert registered.returncode == 0, registered


def _nothing_recorded() -> None:
    assert kitaru_cli("deployments", "list", "--json").json() == []
    assert kitaru_cli("deployments", "history", "support", "--json").json() == []
    assert kitaru_cli("executions", "list", "--json").json() == []


def test_targets_that_cannot_be_imported(tmp_path: Path) -> None:
    project = write_project(tmp_path / "agent")
    write_script(project / "broken.py", "import kitaru_no_such_module\n")
    write_script(project / "typo.py", "def support(:\n")
    cases = [
        ("agent.py", "does not name a flow; use path/to/module.py:flow_name"),
        ("missing.py:support", f"there is no file {project / 'missing.py'}"),
        ("broken.py:support", "cannot be imported: ModuleNotFoundError: No module named "
         "'kitaru_no_such_module'; run the command in the project's environment"),
        ("typo.py:support", "cannot be imported: invalid syntax"),
        ("agent.py:nope", "module 'agent' has no 'nope'; flows in it: refund, support"),
        ("agent.py:REPLY_STYLE", "'REPLY_STYLE' is a str, not a flow"),
        ("no_such_package.mod:support", "cannot be imported: ModuleNotFoundError"),
    ]  # fmt: skip
    for target, message in cases:
        result = kitaru_cli("deploy", target, cwd=project)
        assert result.returncode == 2, (target, result)
        assert result.stderr.startswith("error: ") and message in result.stderr, (target, result)
        assert len(result.stderr.strip().splitlines()) == 1
    _nothing_recorded()


def test_stacks_and_projects_that_cannot_be_deployed(tmp_path: Path) -> None:
    env = need("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_POSTGRES_URL",
               "KITARU_TEST_BASE_IMAGE", "KITARU_TEST_AUTH_REGISTRY")  # fmt: skip
    project = write_project(tmp_path / "agent")

    local = kitaru_cli("deploy", "agent.py:support", cwd=project)
    assert local.returncode == 2
    assert "stack 'local' (local) runs flows from the code on this machine" in local.stderr
    unknown = kitaru_cli("deploy", "agent.py:support", "--stack", "nope", cwd=project)
    assert unknown.returncode == 2 and "stack 'nope' does not exist" in unknown.stderr

    _register("down", "127.0.0.1:9/kitaru", env)
    down = kitaru_cli("deploy", "agent.py:support", "--stack", "down", cwd=project)
    assert down.returncode == 1
    assert down.stderr.startswith(
        "error: the registry of stack 'down', 127.0.0.1:9/kitaru cannot be reached"
    ), down

    _register("box", f"{env['KITARU_TEST_REGISTRY']}/kitaru", env)
    bad_tag = kitaru_cli(
        "deploy", "agent.py:support", "--stack", "box", "--tag", "a b", cwd=project
    )
    assert bad_tag.returncode == 2 and "tag 'a b' is not a valid tag name" in bad_tag.stderr

    # No pyproject.toml: a requirements.txt is not a lock.
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "agent.py").write_text((project / "agent.py").read_text())
    (loose / "requirements.txt").write_text("httpx\n")
    no_project = kitaru_cli("deploy", "agent.py:support", "--stack", "box", cwd=loose)
    assert no_project.returncode == 2
    assert "is not inside a project" in no_project.stderr
    assert "uv init --bare && uv add -r requirements.txt" in no_project.stderr

    # A lock that fails shows uv's own message.
    unlockable = write_project(tmp_path / "unlockable")
    pyproject = unlockable / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "dependencies = []", 'dependencies = ["kitaru-no-such-package-anywhere==1.0"]'
        )
    )
    lock = kitaru_cli("deploy", "agent.py:support", "--stack", "box", cwd=unlockable)
    assert lock.returncode == 1
    assert f"error: locking the project {unlockable} (uv lock) failed:" in lock.stderr
    assert "kitaru-no-such-package-anywhere" in lock.stderr
    assert "No solution found" in lock.stderr or "not found in the package registry" in lock.stderr

    # A registry that demands a login this machine does not have.
    _register("private", f"{env['KITARU_TEST_AUTH_REGISTRY']}/kitaru", env)
    refused = kitaru_cli("deploy", "agent.py:support", "--stack", "private", cwd=project)
    assert refused.returncode == 1
    assert (
        f"error: the registry {env['KITARU_TEST_AUTH_REGISTRY']}/kitaru refused this machine "
        "(no basic auth credentials)"
    ) in refused.stderr, refused
    assert f"docker login {env['KITARU_TEST_AUTH_REGISTRY']}" in refused.stderr

    # Invoking what was never deployed.
    never = kitaru_cli("deployments", "invoke", "support", "--args", '{"ticket": "x"}')
    assert never.returncode == 2
    assert "flow 'support' has no deployments; deploy it first" in never.stderr
    assert kitaru_cli("deployments", "show", "support", "1").returncode == 2
    _nothing_recorded()
