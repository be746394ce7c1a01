"""An artifact store reached through a Kitaru server: bytes go over its API to the store
the server keeps them in, so a container needs no bucket credentials of its own.

The store keeps the server's root URI as its own: object URIs recorded in the journal
are the real ones (s3://..., file:///...), and the server can read them directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from kitaru._connection import Connection, connect
from kitaru._errors import NotFoundError
from kitaru.artifacts._base import ArtifactStore
from kitaru.artifacts._buffer import OnData


class HttpArtifactStore:
    def __init__(self, connection: Connection, root: str) -> None:
        self._conn = connection
        self.uri = root

    def _path(self, key: str) -> str:
        return "/store/objects/" + quote(key, safe="/")

    def check(self) -> None:
        self._conn.request("GET", "/store/check", params={"root": self.uri})

    def write(self, key: str, data: bytes | memoryview) -> str:
        # http.client sends a memoryview as it is: the value is not copied.
        response = self._conn.request(
            "PUT", self._path(key), content=data, params={"root": self.uri}
        )
        return str(response.json()["uri"])

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        try:
            response = self._conn.request("GET", self._path(key), params={"root": self.uri})
        except NotFoundError:
            raise KeyError(key) from None
        if on_data is not None:
            on_data(memoryview(response.content))
        return response.content

    def exists(self, key: str) -> bool:
        response = self._conn.request(
            "HEAD", self._path(key), params={"root": self.uri}, ok=(200, 404)
        )
        return bool(response.status_code == 200)

    def list(self, prefix: str = "") -> Iterator[str]:
        response = self._conn.request(
            "GET", "/store/keys", params={"root": self.uri, "prefix": prefix}
        )
        yield from response.json()["keys"]

    def delete(self, key: str) -> None:
        self._conn.request("DELETE", self._path(key), params={"root": self.uri}, ok=(200, 204))

    def key_of(self, uri: str) -> str:
        root = self.uri.rstrip("/") + "/"
        if not uri.startswith(root):
            raise ValueError(f"{uri} is not in the artifact store {self.uri}")
        return uri[len(root) :]


def proxied_store(uri: str) -> ArtifactStore | None:
    """An HTTP store for `uri` if the configured server serves that root, else None."""
    conn = connect()
    served = conn.info().get("artifact_stores") or [conn.info()["artifact_store"]]
    if uri.rstrip("/") in {str(s).rstrip("/") for s in served}:
        return HttpArtifactStore(conn, uri)
    return None
