from __future__ import annotations

from collections.abc import Iterator

import pytest

import kitaru.artifacts
from kitaru.artifacts import ArtifactStore

from .backends import BACKENDS, Backend, make


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Backend:
    b = make(request.param, tmp_path_factory)
    b.apply(monkeypatch)
    return b


@pytest.fixture
def store(backend: Backend) -> Iterator[ArtifactStore]:
    kitaru.artifacts.reset_for_tests()
    yield kitaru.artifacts.open_store(backend.uri)
    kitaru.artifacts.reset_for_tests()
