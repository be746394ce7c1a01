"""Requests to a Kitaru server's API, shared by the `HttpJournal` mixins.

`HttpBase` holds the connection and the three verbs; `_sent_once` is how a write that
must land once survives a network that resets connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from kitaru._connection import Connection, connect
from kitaru._errors import KitaruUsageError, ServerUnreachableError
from kitaru.journal._http_batch import CommitBatches
from kitaru.journal._records import ExecutionRecord

# The server's largest page; a larger `limit` reads the newest this many.
MAX_PAGE = 1000
T = TypeVar("T")
# The longest lease the server grants from its own clock (a claim asks for no more).
MAX_LEASE_SECONDS = 3600.0


def _p(part: str | int) -> str:
    return quote(str(part), safe="")


class HttpBase:
    """The connection and the verbs; `HttpJournal` is made of this and its mixins."""

    def __init__(self, url: str, connection: Connection | None = None) -> None:
        self.url = url.rstrip("/")
        self._conn = connection or connect(self.url)
        # Fail on a wrong URL or token now, before a flow starts running.
        self._conn.info()
        # The execution as `finish` left it (and when), for the read that follows it: a
        # run token is revoked when its run finishes the execution, and could not read
        # it afterwards.
        self._finished: dict[str, tuple[float, ExecutionRecord]] = {}
        # Checkpoint commits that end together go in one request.
        self._commits = CommitBatches(self._post_json)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._conn.request("GET", path, params=params).json()

    def _post(self, path: str, body: dict[str, Any], ok: tuple[int, ...] = (200,)) -> Any:
        self._finished.clear()  # a change through this journal: read the record again
        return self._conn.request("POST", path, json=body, ok=ok).json()

    def _post_json(self, path: str, body: bytes) -> Any:
        """`_post` of a body encoded already."""
        self._finished.clear()
        response = self._conn.request("POST", path, content=body, content_type="application/json")
        return response.json()

    def _put(self, path: str, body: dict[str, Any]) -> Any:
        self._finished.clear()
        return self._conn.request("PUT", path, json=body).json()

    def retention(self, op: str, body: dict[str, Any]) -> Any:
        """`gc` or `delete` on the server (kitaru/_retention.py; admin tokens)."""
        return self._post(f"/retention/{op}", body)

    def _runner(self, exec_id: str, op: str, body: dict[str, Any]) -> Any:
        return self._post(f"/runner/executions/{_p(exec_id)}/{op}", body)

    def served_stores(self) -> list[str]:
        """The artifact stores the server serves (their roots, as it names them)."""
        info = self._conn.info()
        return [str(s) for s in info.get("artifact_stores") or [info["artifact_store"]]]

    def scope(self) -> str:
        """The scope of this process's token (read, write, admin or run)."""
        return str(self._conn.info().get("scope", ""))

    def close(self) -> None:
        """The connection is shared by every journal on this server in the process."""


def _sent_once(send: Callable[[], T], landed: Callable[[], T | None]) -> T:
    """A write the server carries out once. The connection sends a request again only
    when it cannot have arrived, and a network that resets connections mid-request
    breaks even that (a keep-alive connection cut after the server read the request):
    so when an answer was lost, or is a refusal that may answer an earlier copy of this
    same write ("exists already" for a new id; a refused second send), read whether the
    write landed, and send it again only if not. (A plain refusal is believed: owners
    read through a server are masked, and another thread of this process may hold the
    lease it refuses.) The runner API's writes are guarded by the owner, so a
    second send of one that did not land is the first that does."""
    for attempt in (1, 2):
        try:
            result = send()
        except ServerUnreachableError:
            if attempt == 2:
                raise
        except KitaruUsageError:
            done = landed()
            if done is None:
                raise
            return done
        else:
            if result or attempt == 1:
                return result
            done = landed()  # refused: maybe by the lost first copy's own effect
            return result if done is None else done
        done = landed()
        if done is not None:
            return done
    raise AssertionError("unreachable")
