"""The server application: the REST API under /api/v1, the web UI under /ui."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from kitaru import _trust, artifacts
from kitaru._version import __version__
from kitaru.server import _errors
from kitaru.server._guard import Guard
from kitaru.server._keeper import Keeper
from kitaru.server._scheduler import Scheduler
from kitaru.server._state import ServerConfig, ServerState
from kitaru.server._sweeper import Sweeper

HERE = Path(__file__).resolve().parent

DESCRIPTION = """The Kitaru server: executions, checkpoint calls, artifacts and waits of one
journal, for people (the web UI at /ui), scripts, and clients that set
`KITARU_SERVER_URL` and `KITARU_API_TOKEN`.

Every endpoint but `/health` needs an API token (`Authorization: Bearer kt_...`),
checked before the request's body is read. Tokens are `read` (every GET), `write`
(also start, run, answer, resume, replay and cancel executions, deploy and invoke) or
`admin` (also stacks, settings, deployments' tags and deletion); run tokens, minted by
the server for one run, reach one execution's records. Running executions use the
runner API (`/api/v1/runner/...`). A wait can also be answered through a signed webhook
URL that carries no token."""


def prepare_process(config: ServerConfig) -> None:
    """The server uses its journal and stores directly, never a server (itself)."""
    for var in ("KITARU_SERVER_URL", "KITARU_API_TOKEN"):
        os.environ.pop(var, None)
    os.environ["KITARU_JOURNAL_URL"] = config.journal_url
    os.environ["KITARU_ARTIFACT_STORE"] = config.artifact_stores[0]


def create_app(config: ServerConfig) -> FastAPI:
    prepare_process(config)
    # Its records came over its API: no run id, process id or code location in them is
    # acted on (kitaru/_trust.py).
    _trust.serve()
    state = ServerState(config)
    artifacts.restrict_to(frozenset({*config.artifact_stores, *state.stores}))
    sweeper = Sweeper(state.journal, config.sweep_interval, public_url=config.public_url)
    scheduler = Scheduler(state.journal, config.schedule_interval, public_url=config.public_url)
    keeper = Keeper(state.journal, config.retention, config.retention_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper.start()
        scheduler.start()
        keeper.start()
        yield
        keeper.stop()
        scheduler.stop()
        sweeper.stop()

    app = FastAPI(
        title="Kitaru server",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,  # served behind a token by routes/_info.py
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.kitaru = state
    app.state.sweeper = sweeper
    _errors.install(app)
    from kitaru.server.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="static")

    from kitaru.server.routes._ui import LoginRequired

    @app.exception_handler(LoginRequired)
    async def sign_in(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/ui/login?next={quote(exc.next_url, safe='')}", 303)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/executions")

    app.add_middleware(Guard, state=state)
    return app


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document (of `app`, or without a running server or journal), with the
    bearer scheme every route but health needs."""
    from fastapi.openapi.utils import get_openapi

    from kitaru.server.routes import ROUTERS
    from kitaru.server.routes._deps import SECURITY_SCHEME

    if app is None:
        app = FastAPI()
        for router in ROUTERS:
            app.include_router(router)
    document: dict[str, Any] = get_openapi(
        title="Kitaru server", version=__version__, description=DESCRIPTION, routes=app.routes
    )
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEME
    for path, item in document["paths"].items():
        if not path.startswith(("/health", "/api/v1/hooks/")):
            for op in item.values():
                op.setdefault("security", [{"HTTPBearer": []}])
    return document
