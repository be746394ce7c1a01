"""Deployments, tags and the tag history in the SQL journals (schema version 4).

Versions are allocated inside the transaction that records the deployment, and a tag is
moved in the transaction that appends its history entry: both take the journal's write
lock first (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL), so concurrent
deploys get consecutive numbers and concurrent tag moves are applied one after the other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru.journal import _records

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import DeploymentRecord, TagEvent, TagRecord

DEPLOY_COLS = (
    "flow, version, image, digest, content_hash, lock_hash, source_hash, kitaru_version, "
    "signature, flow_ref, flow_file, import_path, project_root, stack, orchestrator, builder, "
    "reused, created_by, created_at, deleted_at, manifest, metadata"
)
# `list_deployments` leaves the manifest out: it can hold thousands of file hashes.
DEPLOY_COLS_LIST = DEPLOY_COLS.replace("manifest", "NULL")
TAG_COLS = "flow, tag, version, weight, previous_version, updated_by, updated_at"
EVENT_COLS = (
    "flow, seq, tag, action, version, weight, previous_version, from_version, from_weight, "
    "from_previous, by, at"
)


def _marks(cols: str) -> str:
    return ", ".join("?" for _ in cols.split(","))


def _deployment(row: Sequence[Any]) -> DeploymentRecord:
    r = list(row)
    r[8] = json.loads(r[8])
    r[16] = bool(r[16])
    r[20] = json.loads(r[20]) if r[20] else {}
    r[21] = json.loads(r[21]) if r[21] else {}
    return _records.DeploymentRecord(*r)


def _versions_text(versions: list[int]) -> str:
    return ", ".join(map(str, versions)) if versions else "none"


class DeploymentRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    # -- deployments ---------------------------------------------------------------------
    def create_deployment(
        self, deployment: DeploymentRecord, *, tag: str | None = None
    ) -> DeploymentRecord:
        with self._tx(immediate=True) as conn:
            row = conn.execute(
                self._sql("SELECT MAX(version) FROM deployments WHERE flow = ?"),
                (deployment.flow,),
            ).fetchone()
            d = dataclasses.replace(deployment, version=int(row[0] or 0) + 1, deleted_at=None)
            conn.execute(
                self._sql(f"INSERT INTO deployments ({DEPLOY_COLS}) VALUES ({_marks(DEPLOY_COLS)})"),
                (
                    d.flow, d.version, d.image, d.digest, d.content_hash, d.lock_hash,
                    d.source_hash, d.kitaru_version, json.dumps(d.signature), d.flow_ref,
                    d.flow_file, d.import_path, d.project_root, d.stack, d.orchestrator,
                    d.builder, int(d.reused), d.created_by, d.created_at, None,
                    json.dumps(d.manifest), json.dumps(d.metadata, default=str),
                ),
            )  # fmt: skip
            if tag is not None:
                self._move_tag(conn, d.flow, tag, d.version, None, d.created_by, d.created_at)
        return d

    def get_deployment(self, flow: str, version: int) -> DeploymentRecord | None:
        row = self._x(
            f"SELECT {DEPLOY_COLS} FROM deployments WHERE flow = ? AND version = ?",
            (flow, version),
        ).fetchone()
        return _deployment(row) if row else None

    def list_deployments(self, flow: str | None = None) -> list[DeploymentRecord]:
        where, params = "deleted_at IS NULL", tuple[str, ...]()
        if flow is not None:
            where, params = "flow = ? AND deleted_at IS NULL", (flow,)
        rows = self._x(
            f"SELECT {DEPLOY_COLS_LIST} FROM deployments WHERE {where} ORDER BY flow, version DESC",
            params,
        ).fetchall()
        return [_deployment(r) for r in rows]

    def delete_deployment(self, flow: str, version: int, *, now: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE deployments SET deleted_at = ? WHERE flow = ? AND version = ? "
                    "AND deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM deployment_tags t "
                    "WHERE t.flow = ? AND (t.version = ? OR t.previous_version = ?))"
                ),
                (now, flow, version, flow, version, version),
            )
            return bool(cur.rowcount == 1)

    # -- tags ----------------------------------------------------------------------------
    def set_tag(
        self,
        flow: str,
        tag: str,
        version: int,
        *,
        weight: int | None = None,
        by: str,
        now: float,
    ) -> TagRecord:
        with self._tx(immediate=True) as conn:
            return self._move_tag(conn, flow, tag, version, weight, by, now)

    def _move_tag(
        self,
        conn: Any,
        flow: str,
        tag: str,
        version: int,
        weight: int | None,
        by: str,
        now: float,
    ) -> TagRecord:
        if weight is not None and not 1 <= weight <= 99:
            raise InvalidInputError(
                f"weight {weight} is outside 1-99: a canary takes part of the invocations "
                "(leave --weight out to send them all to the version)"
            )
        live = [
            int(r[0])
            for r in conn.execute(
                self._sql(
                    "SELECT version FROM deployments WHERE flow = ? AND deleted_at IS NULL "
                    "ORDER BY version"
                ),
                (flow,),
            ).fetchall()
        ]
        if version not in live:
            raise NotFoundError(
                f"flow {flow!r} has no deployment version {version}; versions: "
                f"{_versions_text(live)} (see `kitaru deployments list {flow}`)"
            )
        current = self._tag_row(conn, flow, tag)
        previous: int | None = None
        if weight is None:
            weight = 100
        else:
            if current is None:
                raise KitaruUsageError(
                    f"tag {tag!r} of flow {flow!r} points at no version yet; a canary sends "
                    "the rest of the invocations to the version the tag serves, so point the "
                    f"tag at one first: kitaru deployments tag {flow} VERSION {tag}"
                )
            previous = current.previous_version if current.weight < 100 else current.version
            if previous == version:
                raise KitaruUsageError(
                    f"version {version} already serves the rest of tag {tag!r}; a canary "
                    "needs another version (or leave --weight out to send it everything)"
                )
        conn.execute(
            self._sql(
                f"INSERT INTO deployment_tags ({TAG_COLS}) VALUES ({_marks(TAG_COLS)}) "
                "ON CONFLICT (flow, tag) DO UPDATE SET version = excluded.version, "
                "weight = excluded.weight, previous_version = excluded.previous_version, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at"
            ),
            (flow, tag, version, weight, previous, by, now),
        )
        moved = _records.TagRecord(flow, tag, version, weight, previous, by, now)
        self._record_event(conn, "tag", moved, current, by, now)
        return moved

    def remove_tag(self, flow: str, tag: str, *, by: str, now: float) -> bool:
        with self._tx(immediate=True) as conn:
            current = self._tag_row(conn, flow, tag)
            if current is None:
                return False
            conn.execute(
                self._sql("DELETE FROM deployment_tags WHERE flow = ? AND tag = ?"), (flow, tag)
            )
            removed = _records.TagRecord(flow, tag, 0, 0, None, by, now)
            self._record_event(conn, "untag", removed, current, by, now)
            return True

    def get_tag(self, flow: str, tag: str) -> TagRecord | None:
        row = self._x(
            f"SELECT {TAG_COLS} FROM deployment_tags WHERE flow = ? AND tag = ?", (flow, tag)
        ).fetchone()
        return _records.TagRecord(*row) if row else None

    def list_tags(self, flow: str) -> list[TagRecord]:
        rows = self._x(
            f"SELECT {TAG_COLS} FROM deployment_tags WHERE flow = ? ORDER BY tag", (flow,)
        ).fetchall()
        return [_records.TagRecord(*r) for r in rows]

    def tag_history(self, flow: str) -> list[TagEvent]:
        rows = self._x(
            f"SELECT {EVENT_COLS} FROM deployment_tag_history WHERE flow = ? ORDER BY seq",
            (flow,),
        ).fetchall()
        return [_records.TagEvent(*r) for r in rows]

    def _tag_row(self, conn: Any, flow: str, tag: str) -> TagRecord | None:
        row = conn.execute(
            self._sql(f"SELECT {TAG_COLS} FROM deployment_tags WHERE flow = ? AND tag = ?"),
            (flow, tag),
        ).fetchone()
        return _records.TagRecord(*row) if row else None

    def _record_event(
        self,
        conn: Any,
        action: str,
        after: TagRecord,
        before: TagRecord | None,
        by: str,
        now: float,
    ) -> None:
        row = conn.execute(
            self._sql("SELECT MAX(seq) FROM deployment_tag_history WHERE flow = ?"),
            (after.flow,),
        ).fetchone()
        seq = int(row[0] or 0) + 1
        removed = action == "untag"
        conn.execute(
            self._sql(
                f"INSERT INTO deployment_tag_history ({EVENT_COLS}) "
                f"VALUES ({_marks(EVENT_COLS)})"
            ),
            (
                after.flow, seq, after.tag, action,
                None if removed else after.version, None if removed else after.weight,
                None if removed else after.previous_version,
                before.version if before else None, before.weight if before else None,
                before.previous_version if before else None, by, now,
            ),
        )  # fmt: skip
