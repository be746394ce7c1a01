"""Deleting executions from the SQL journals (schema 12).

The order that never leaves a record naming missing bytes:

1. One transaction per batch locks the executions, checks again that each may go (its
   status is still one the caller allows; no live replay reuses it unless the caller
   said so), deletes every row that hangs off them (calls, waits, logs, feed events,
   artifacts, cache entries; schedule runs keep their tick with no execution; run tokens
   are revoked) and notes in `deleted_bytes` each object URI those rows named.
2. After the commit, `kitaru/_retention.py` deletes each noted object that no remaining
   row names (`referenced_bytes`) and forgets the note. A process killed in between
   leaves notes; the next collection deletes them first. Deleting an object twice is
   no error.

Objects are shared: a replay's copied calls and (through a server) its copied inputs,
and a cache hit's call, name their source's objects by URI; an answer a replay copied
names its source's artifact row, which moves to the replay when the source goes.
These tables are not part of the `Journal` protocol: only a process with the journal
open deletes (a client through a server asks the server, kitaru/server/routes).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Statuses an execution is still going in: its process (or the one to come) reads it.
LIVE = ("queued", "running", "waiting")
NOT_FOUND = "not found"
# SQLite takes at most 32,766 parameters per statement; batches stay well under it.
BATCH = 200


@dataclass
class Deleted:
    """What one delete transaction did."""

    deleted: list[str] = field(default_factory=list)
    # exec_id -> why it was kept
    kept: dict[str, str] = field(default_factory=dict)
    # object URIs noted for deletion
    objects: int = 0


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def store_of(uri: str) -> str:
    """The store root of an object URI (`<root>/<exec_id>/<artifact_id>`)."""
    return uri.rsplit("/", 2)[0]


def _ended(
    ended_before: float, statuses: Sequence[str], flow: str | None
) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their parameters) of executions that ended before a time."""
    where = [f"status IN ({_marks(statuses)})", "COALESCE(ended_at, updated_at) < ?"]
    params: list[Any] = [*statuses, ended_before]
    if flow is not None:
        where.append("flow = ?")
        params.append(flow)
    return where, params


class RetentionRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    FOR_UPDATE: ClassVar[str] = ""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def ended_executions(
        self,
        *,
        ended_before: float,
        statuses: Sequence[str],
        flow: str | None = None,
        limit: int = 1000,
        after_id: str | None = None,
    ) -> list[str]:
        """Ids of executions with one of `statuses` that ended (or, without an end, last
        changed) before `ended_before`, oldest first (the primary key's order: old rows
        come first, a page reads little beyond what it returns), after `after_id`."""
        where, params = _ended(ended_before, statuses, flow)
        if after_id is not None:
            where.append("exec_id > ?")
            params.append(after_id)
        rows = self._x(
            f"SELECT exec_id FROM executions WHERE {' AND '.join(where)} ORDER BY exec_id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def count_ended(
        self, *, ended_before: float, statuses: Sequence[str], flow: str | None = None
    ) -> int:
        """How many executions `ended_executions` would list in all."""
        where, params = _ended(ended_before, statuses, flow)
        row = self._x(
            f"SELECT COUNT(*) FROM executions WHERE {' AND '.join(where)}", params
        ).fetchone()
        return int(row[0])

    def live_replays(self, exec_ids: Sequence[str]) -> dict[str, str]:
        """source -> a live replay of it (queued, running, waiting) not among `exec_ids`."""
        if not exec_ids:
            return {}
        return self._live_replays(None, exec_ids)

    def _live_replays(self, conn: Any, exec_ids: Sequence[str]) -> dict[str, str]:
        sql = (
            f"SELECT replayed_from, exec_id FROM executions WHERE replayed_from IN "
            f"({_marks(exec_ids)}) AND exec_id NOT IN ({_marks(exec_ids)}) "
            f"AND status IN ({_marks(LIVE)})"
        )
        params = (*exec_ids, *exec_ids, *LIVE)
        rows = (conn.execute(self._sql(sql), params) if conn else self._x(sql, params)).fetchall()
        return {str(source): str(child) for source, child in rows}

    def delete_executions(
        self,
        exec_ids: Sequence[str],
        *,
        statuses: Sequence[str] | None,
        with_lineage: bool,
        now: float,
    ) -> Deleted:
        """Delete the executions (at most BATCH) whose status is one of `statuses` (None:
        any) and, unless `with_lineage`, that no live replay reuses; note their objects."""
        done = Deleted()
        if not exec_ids:
            return done
        if len(exec_ids) > BATCH:
            raise ValueError(f"delete at most {BATCH} executions at a time")
        ids = list(dict.fromkeys(exec_ids))
        with self._tx() as conn:
            q = conn.execute
            found = dict(
                q(
                    self._sql(
                        f"SELECT exec_id, status FROM executions WHERE exec_id IN ({_marks(ids)})"
                        # One order for every deleter: two collections never deadlock.
                        " ORDER BY exec_id" + self.FOR_UPDATE
                    ),
                    ids,
                ).fetchall()
            )
            for exec_id in ids:
                status = found.get(exec_id)
                if status is None:
                    done.kept[exec_id] = NOT_FOUND
                elif statuses is not None and status not in statuses:
                    done.kept[exec_id] = f"it is {status}"
            ids = [i for i in ids if i not in done.kept]
            if ids and not with_lineage:
                for source, child in self._live_replays(conn, ids).items():
                    done.kept[source] = f"replay {child} of it is still going"
                ids = [i for i in ids if i not in done.kept]
            if not ids:
                return done
            marks = _marks(ids)
            uris = {
                str(u)
                for (u,) in q(
                    self._sql(
                        f"SELECT out_uri FROM calls WHERE exec_id IN ({marks}) "
                        "AND out_uri IS NOT NULL"
                    ),
                    ids,
                ).fetchall()
            }
            uris.update(
                str(u)
                for (u,) in q(
                    self._sql(
                        f"SELECT uri FROM artifacts WHERE exec_id IN ({marks}) AND uri IS NOT NULL"
                    ),
                    ids,
                ).fetchall()
            )
            # Answers a surviving replay copied name these artifacts: they move to it.
            # Only replays copy waits (a replay of a replay copies the first source's
            # artifact ids), so only their waits are read.
            moved = q(
                self._sql(
                    "SELECT w.value_artifact, MIN(w.exec_id) FROM waits w WHERE w.exec_id IN "
                    # `> ''` (every id) reads the replayed_from index; IS NOT NULL did not
                    "(SELECT exec_id FROM executions WHERE replayed_from > '' "
                    f"AND exec_id NOT IN ({marks})) AND w.value_artifact IN "
                    f"(SELECT artifact_id FROM artifacts WHERE exec_id IN ({marks})) "
                    "GROUP BY w.value_artifact"
                ),
                (*ids, *ids),
            ).fetchall()
            if moved:
                self._many(
                    conn,
                    self._sql("UPDATE artifacts SET exec_id = ? WHERE artifact_id = ?"),
                    [(owner, artifact_id) for artifact_id, owner in moved],
                )
            for table in ("calls", "waits", "logs", "events", "artifacts", "call_cache"):
                q(self._sql(f"DELETE FROM {table} WHERE exec_id IN ({marks})"), ids)
            q(
                self._sql(f"UPDATE schedule_runs SET exec_id = NULL WHERE exec_id IN ({marks})"),
                ids,
            )
            runs = [f"run-{i}" for i in ids]
            q(
                self._sql(
                    "UPDATE api_tokens SET revoked_at = ? "
                    f"WHERE name IN ({_marks(runs)}) AND revoked_at IS NULL"
                ),
                (now, *runs),
            )
            q(self._sql(f"DELETE FROM executions WHERE exec_id IN ({marks})"), ids)
            if uris:
                self._many(
                    conn,
                    self._sql(
                        "INSERT INTO deleted_bytes (uri, store, deleted_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (uri) DO NOTHING"
                    ),
                    [(u, store_of(u), now) for u in sorted(uris)],
                )
            done.deleted = ids
            done.objects = len(uris)
        return done

    def pending_bytes(self, *, after: str = "", limit: int = 1000) -> list[tuple[str, str]]:
        """(store, uri) of objects noted for deletion, by URI, after `after`."""
        rows = self._x(
            "SELECT store, uri FROM deleted_bytes WHERE uri > ? ORDER BY uri LIMIT ?",
            (after, limit),
        ).fetchall()
        return [(str(s), str(u)) for s, u in rows]

    def referenced_bytes(self, uris: Sequence[str]) -> set[str]:
        """The URIs among `uris` that a call or artifact row still names."""
        found: set[str] = set()
        for start in range(0, len(uris), BATCH):
            part = uris[start : start + BATCH]
            marks = _marks(part)
            rows = self._x(
                f"SELECT out_uri FROM calls WHERE out_uri IN ({marks}) "
                f"UNION SELECT uri FROM artifacts WHERE uri IN ({marks})",
                (*part, *part),
            ).fetchall()
            found.update(str(r[0]) for r in rows)
        return found

    def forget_bytes(self, uris: Sequence[str]) -> None:
        for start in range(0, len(uris), BATCH):
            part = uris[start : start + BATCH]
            self._x(f"DELETE FROM deleted_bytes WHERE uri IN ({_marks(part)})", part)
