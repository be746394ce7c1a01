"""`POST /api/v1/runner/calls`: several checkpoint calls committed in one request.

A process that runs several executions at once (or a flow's parallel checkpoints)
commits the calls that end together in one request (kitaru/journal/_http_batch.py).
Each commit in the body is what `POST /api/v1/runner/executions/{id}/calls` takes,
checked the same way: the caller may run each execution it names (a run token only
its own; a read token none), every record of a commit belongs to its call's execution,
nothing pickled comes from outside a call. Any commit refused refuses the request
before anything is stored. The commits are then stored in one transaction with the
other calls arriving at the same time (kitaru/server/_group_commit.py), each fenced
by its own owner: the answer has one `committed` per commit, in order, each what the
single route would have answered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kitaru.journal._calls import Commit
from kitaru.server.routes._deps import READ_ONLY, any_token, execution_runner
from kitaru.server.routes._runner_bodies import (
    _STRICT,
    CommitRequest,
    _doc,
    _parse,
    _state,
    commit_parts,
)

# The most commits in one request (a client sends fewer: kitaru/journal/_http_batch.py).
MAX_COMMITS = 256

router = APIRouter(prefix="/api/v1/runner", tags=["runner"])


class CommitsRequest(BaseModel):
    model_config = _STRICT
    commits: Annotated[list[CommitRequest], Field(min_length=1, max_length=MAX_COMMITS)]


@router.post(
    "/calls",
    summary="Commit several finished calls, each as POST .../executions/{id}/calls would",
    openapi_extra=_doc(CommitsRequest),
)
async def commit_calls(request: Request) -> JSONResponse:
    caller = await any_token(request)
    if caller.execution is None and not caller.can_write:
        raise HTTPException(403, READ_ONLY)  # before the body is parsed
    body = await _parse(request, CommitsRequest)
    commits: list[Commit] = []
    allowed: set[str] = set()
    for one in body.commits:
        exec_id = str(getattr(one.call, "exec_id"))  # noqa: B009 (a model built at import)
        if exec_id not in allowed:
            await execution_runner(exec_id, caller)  # 403 as the single route's
            allowed.add(exec_id)
        call, output, logs = commit_parts(exec_id, one)
        commits.append((call, output, logs, one.owner))
    committed = await _state(request).commits.commit_many(commits)
    return JSONResponse({"committed": committed})
