"""Deleting executions through a server (kitaru/_retention.py runs here, on the server's
journal and stores): what `kitaru gc` and `kitaru executions delete` send when
`KITARU_SERVER_URL` is set. Deletion is an admin's; read, write and run tokens are
refused before anything is read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kitaru import _retention
from kitaru.server._wire import Text
from kitaru.server.routes._deps import Admin, State

router = APIRouter(prefix="/api/v1/retention", tags=["retention"])

_STRICT = ConfigDict(extra="forbid", strict=True)
Id = Annotated[str, Field(min_length=1, max_length=200)]


class CollectRequest(BaseModel):
    model_config = _STRICT
    older_than: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
    statuses: Annotated[list[Id], Field(min_length=1, max_length=3)]
    flow: Text | None = None
    dry_run: bool = False
    with_lineage: bool = False
    orphans: bool = False
    limit: Annotated[int, Field(ge=1, le=_retention.REMOTE_PAGE)] = _retention.REMOTE_PAGE
    after_id: Id | None = None


class DeleteRequest(BaseModel):
    model_config = _STRICT
    exec_ids: Annotated[list[Id], Field(min_length=1, max_length=_retention.REMOTE_PAGE)]
    force: bool = False
    with_lineage: bool = False
    dry_run: bool = False


@router.post("/gc", summary="Delete executions that ended before a cutoff, and their bytes")
def collect(body: CollectRequest, state: State, caller: Admin) -> dict[str, Any]:
    statuses = _retention.parse_statuses(",".join(body.statuses))
    report = _retention.collect(
        state.journal,
        older_than=body.older_than,
        statuses=statuses,
        flow=body.flow,
        dry_run=body.dry_run,
        with_lineage=body.with_lineage,
        limit=body.limit,
        after_id=body.after_id,
        orphans=body.orphans,
    )
    return report.as_dict()


@router.post("/delete", summary="Delete executions by id, and their bytes")
def delete(body: DeleteRequest, state: State, caller: Admin) -> dict[str, Any]:
    report = _retention.delete(
        state.journal,
        body.exec_ids,
        force=body.force,
        with_lineage=body.with_lineage,
        dry_run=body.dry_run,
    )
    return report.as_dict()
