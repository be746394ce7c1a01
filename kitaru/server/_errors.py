"""Errors as HTTP answers: a status, a one-line `detail` and the Kitaru error's name.

Unexpected failures answer 500 with no detail (the traceback goes to the server log):
nothing about the server's internals reaches the caller.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kitaru._errors import (
    ArtifactCorruptedError,
    ConfigurationError,
    InvalidInputError,
    KitaruError,
    KitaruUsageError,
    LeaseError,
    NotFoundError,
)
from kitaru.server._guard import BodyTooLarge

log = logging.getLogger("kitaru.server")

_STATUS: list[tuple[type[KitaruError], int]] = [
    (NotFoundError, 404),
    (InvalidInputError, 422),
    (LeaseError, 409),
    (KitaruUsageError, 409),
    (ArtifactCorruptedError, 500),
    (ConfigurationError, 503),
]


def status_of(exc: KitaruError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def _validation_reason(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            message = "the body is not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
            where = ""
        parts.append(f"{where}: {message}" if where else message)
    return "invalid request: " + "; ".join(parts)


def _integrity_errors() -> tuple[type[Exception], ...]:
    """The database drivers' "a row with this key exists" errors."""
    import sqlite3

    found: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        found.append(psycopg.IntegrityError)
    return tuple(found)


def _data_errors() -> tuple[type[Exception], ...]:
    """PostgreSQL's "this value cannot be stored" errors (a NUL character in text)."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.DataError,)


def install(app: FastAPI) -> None:
    @app.exception_handler(KitaruError)
    async def kitaru_error(request: Request, exc: KitaruError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "error": type(exc).__name__}, status_code=status_of(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": _validation_reason(exc), "error": "InvalidInputError"}, status_code=422
        )

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "error": "KitaruUsageError"},
            status_code=413,
            headers={"Connection": "close"},
        )

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        # An id the caller chose (an artifact's, an answer's) is taken: the caller's
        # mistake, answered like any other, so the connection stays usable.
        return JSONResponse(
            {
                "detail": "a record with the same id exists already; nothing was changed "
                "(send a new id)",
                "error": "KitaruUsageError",
            },
            status_code=409,
        )

    for cls in _integrity_errors():
        app.add_exception_handler(cls, conflict)

    async def unstorable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "invalid request: a value the database cannot store (such as a NUL "
                "character in text); nothing was changed",
                "error": "InvalidInputError",
            },
            status_code=422,
        )

    for cls in _data_errors():
        app.add_exception_handler(cls, unstorable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal server error"}, status_code=500)
