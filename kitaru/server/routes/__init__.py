"""The server's routers, one per resource. A new resource is one module with an
`APIRouter` named `router`, added to ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from kitaru.server.routes import (
    _admin,
    _artifacts,
    _checkpoints,
    _deployments,
    _executions,
    _health,
    _info,
    _lifecycle,
    _metrics,
    _queues,
    _records,
    _retention,
    _runner,
    _runner_calls,
    _schedules,
    _stacks,
    _store,
    _stream,
    _ui,
    _waits,
)

# Routes are matched in order, one by one: the runner API (called per checkpoint), the
# execution view, record reads and workers' claims (polled) come first.
ROUTERS: list[APIRouter] = [
    _runner.router,
    _runner_calls.router,
    _executions.router,
    _stream.router,
    _records.router,
    _queues.router,
    _health.router,
    _metrics.router,
    _info.router,
    _lifecycle.router,
    _checkpoints.router,
    _artifacts.router,
    _waits.router,
    _deployments.router,
    _stacks.router,
    _schedules.router,
    _admin.router,
    _retention.router,
    _store.router,
    _ui.router,
]
