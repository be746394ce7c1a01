"""The deployment tests' project (a copy of examples/deploy_agent) and a docker stack for
it on the test services: engine, registry, PostgreSQL journal, S3 on moto."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from tests.conftest import REPO, kitaru_cli
from tests.stacks._services import extra_ca, fresh_bucket, fresh_database, need

SERVICES = (
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
    "KITARU_TEST_POSTGRES_URL",
    "KITARU_TEST_MOTO_URL",
)
# Every stack of these tests pushes to one repository, so that an image with the same
# content is found again (reused) whichever stack or test asks for it.
REPOSITORY = "deploy-agent"


def write_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "agent.py"):
        shutil.copy(REPO / "examples" / "deploy_agent" / name, root / name)
    return root


def restyle(project: Path, style: str) -> None:
    """Change the code: the replies of versions built from now on carry `style`."""
    agent = project / "agent.py"
    text = agent.read_text()
    start = text.index('REPLY_STYLE = "') + len('REPLY_STYLE = "')
    end = text.index('"', start)
    agent.write_text(text[:start] + style + text[end:])


def services_env() -> dict[str, str]:
    """What every process of the tests needs: a fresh journal and bucket, AWS on moto."""
    env = need(*SERVICES)
    moto = env["KITARU_TEST_MOTO_URL"]
    return {
        **env,
        "KITARU_JOURNAL_URL": fresh_database(),
        "BUCKET": fresh_bucket(moto),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def container_settings(env: dict[str, str]) -> list[str]:
    """`--set` options every container stack of these tests shares."""
    moto = env["KITARU_TEST_MOTO_URL"]
    return [
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        "--set", f"repository={REPOSITORY}",
        "--set", f"environment.AWS_ENDPOINT_URL={moto}",
        "--set", "environment.AWS_DEFAULT_REGION=us-east-1",
        "--set", "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
        "--set", "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
    ]  # fmt: skip


def register_docker_stack(env: dict[str, str], name: str = "ship", *extra: str) -> None:
    registered = kitaru_cli(
        "stack", "register", name, "--orchestrator", "docker",
        "--artifact-store", f"s3://{env['BUCKET']}/{name}-{uuid.uuid4().hex[:6]}",
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        # Each container is a full copy of the image on the engine's vfs storage.
        "--set", "remove_containers=true",
        *container_settings(env), *extra,
        env=env,
    )  # fmt: skip
    assert registered.returncode == 0, registered
