"""Artifact stores, chosen by URI scheme.

| scheme | store | install |
|---|---|---|
| `file://` | local directory | built in |
| `s3://bucket/prefix` | Amazon S3 and S3-compatible endpoints | `pip install "kitaru[aws]"` |
| `gs://bucket/prefix` | Google Cloud Storage | `pip install "kitaru[gcp]"` |
| `az://container/prefix` | Azure Blob Storage | `pip install "kitaru[azure]"` |
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from kitaru import _config
from kitaru._errors import ConfigurationError, InvalidConfigurationError
from kitaru.artifacts._base import ArtifactStore

__all__ = ["ArtifactStore", "open_store", "store_for_uri"]

# scheme -> (module, class, extra that installs its client library)
_STORES: dict[str, tuple[str, str, str | None]] = {
    "file": ("kitaru.artifacts._local", "LocalArtifactStore", None),
    "s3": ("kitaru.artifacts._s3", "S3ArtifactStore", "aws"),
    "gs": ("kitaru.artifacts._gcs", "GCSArtifactStore", "gcp"),
    "az": ("kitaru.artifacts._azure", "AzureArtifactStore", "azure"),
}

_open: dict[str, ArtifactStore] = {}
_lock = threading.Lock()


def open_store(uri: str) -> ArtifactStore:
    """The store for a root URI, created and checked once per process.

    The check runs before the store is handed out, so a missing bucket, wrong
    credentials or an unreachable endpoint stop an execution before any checkpoint runs.
    """
    with _lock:
        store = _open.get(uri)
        if store is None:
            store = _create(uri)
            store.check()
            _open[uri] = store
        return store


# Set by a server: the store roots it may open. Journal records come from clients, and
# a record naming any other root must not make the server read outside its stores.
_allowed_roots: frozenset[str] | None = None


def restrict_to(roots: frozenset[str] | None) -> None:
    """Only open these store roots in this process (None: any)."""
    global _allowed_roots
    with _lock:
        _allowed_roots = roots
        for uri in [u for u in _open if roots is not None and u not in roots]:
            del _open[uri]


def _create(uri: str) -> ArtifactStore:
    if _allowed_roots is not None and uri not in _allowed_roots:
        return _Unserved(uri)
    if os.environ.get("KITARU_SERVER_URL"):
        # The server's own store is reached through its API (no bucket credentials here).
        from kitaru.artifacts._http import proxied_store

        proxied = proxied_store(uri)
        if proxied is not None:
            return proxied
    scheme = uri.partition("://")[0] if "://" in uri else ""
    entry = _STORES.get(scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in _STORES)
        raise InvalidConfigurationError(
            f"artifact store URI {uri!r} has an unknown scheme; use one of {known}"
        )
    module_name, class_name, extra = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidConfigurationError(
            f"the {scheme}:// artifact store needs an extra ({exc.name} is missing); "
            f'install it with: pip install "kitaru[{extra}]"'
        ) from None
    cls = getattr(module, class_name)
    store: ArtifactStore = cls(uri, _config.durability())
    return store


class _Unserved:
    """A store this process may not open (see `restrict_to`). Small values live in the
    journal and never touch it; anything that does gets the reason."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _refuse(self, *_args: object) -> Any:
        raise ConfigurationError(
            f"artifact store {self.uri!r} is not one this server serves; start the server "
            "with --artifact-store for it"
        )

    check = write = read = exists = list = delete = key_of = _refuse


def store_for_uri(object_uri: str, root_hint: str | None = None) -> tuple[ArtifactStore, str]:
    """The store and key for an object URI recorded in the journal."""
    root = root_hint or _config.artifact_store_uri()
    store = open_store(root)
    return store, store.key_of(object_uri)


def reset_for_tests() -> None:
    with _lock:
        _open.clear()
