"""What the stack tests share: the stand-in image, built and pushed once per session
(tests/stacks/_stand_in.py), and a journal of each test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks._services import need
from tests.stacks._stand_in import stand_in_image


@pytest.fixture(scope="session")
def image() -> str:
    """The stand-in image in the local registry (a module may name its own `image`)."""
    env = need("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")
    return stand_in_image(env["KITARU_TEST_REGISTRY"], env["KITARU_TEST_BASE_IMAGE"])


@pytest.fixture
def sqlite_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite journal for this test, as KITARU_JOURNAL_URL (a platform's containers
    would read theirs from a platform secret)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    monkeypatch.setenv("KITARU_JOURNAL_URL", url)
    return url
