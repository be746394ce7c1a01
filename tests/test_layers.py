"""The import contracts `make lint` checks (pyproject.toml, [tool.importlinter]): they
hold on this tree, and they fail on what they are there to stop. The offending imports
are written into a copy of the packages in a temporary directory; the tree itself is
never touched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = {
    "kitaru": REPO / "kitaru",
    "kitaru_orchestrators": REPO / "orchestrators" / "kitaru_orchestrators",
    "kitaru_builders": REPO / "builders" / "kitaru_builders",
    "kitaru_stacks": REPO / "stacks" / "kitaru_stacks",
    "kitaru_infra": REPO / "infra" / "kitaru_infra",
}


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports puts its working directory first on the path: in a copy, the copy's
    # packages are the ones analysed.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(where / "pyproject.toml")],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name, source in PACKAGES.items():
        shutil.copytree(
            source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_to(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code)


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_inside_a_function_fails(copy: Path) -> None:
    # The journal learning about stacks: the kind of import issue 21 removed.
    add_to(
        copy / "kitaru" / "journal" / "_rows.py",
        "def _reaches_up() -> object:\n"
        "    from kitaru.stacks import _submit\n\n"
        "    return _submit\n",
    )
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "kitaru.journal is not allowed to import kitaru.stacks" in result.stdout
    assert "kitaru.journal._rows -> kitaru.stacks._submit" in result.stdout


def test_a_new_cycle_inside_one_layer_fails(copy: Path) -> None:
    # The connection and the record codec share the bottom layer, where modules may
    # import each other; a cycle between them is still refused.
    add_to(copy / "kitaru" / "_codec.py", "from kitaru import _connection  # noqa: E402\n")
    add_to(copy / "kitaru" / "_connection.py", "from kitaru import _codec  # noqa: E402\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "no import cycles among kitaru's modules BROKEN" in result.stdout
    assert "_codec" in result.stdout and "_connection" in result.stdout


def test_a_plugin_importing_a_private_module_fails(copy: Path) -> None:
    add_to(
        copy / "kitaru_orchestrators" / "_env.py",
        "from kitaru.stacks._submit import make_orchestrator  # noqa: E402\n",
    )
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "plugin distributions import only kitaru's public modules BROKEN" in result.stdout
    assert "kitaru_orchestrators._env -> kitaru.stacks._submit" in result.stdout
