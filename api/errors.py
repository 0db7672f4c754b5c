"""One error path for every request: bad input gets its documented 4xx with a JSON
``{"detail": …}`` that can always be encoded; anything else is a 500 that says only
that it happened (with the request id), while the log gets the traceback.

FastAPI's own 422 handler echoes each invalid value back (``input``) and renders it
with the standard encoder; a value that JSON cannot carry (a lone surrogate, a float
that is not finite, a huge body) made rendering the 422 itself fail as a 500. Here an
echoed value is kept only when it encodes strictly and is short.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from api.middleware import loggable_path

log = logging.getLogger("mediaflow.api.errors")

ECHO_LIMIT = 256
"""Longest echoed ``input`` (as JSON, in bytes); longer ones are left out."""


def _encodable(value: Any) -> bool:
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        return False
    return len(encoded) <= ECHO_LIMIT


def safe_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors with only what can be shown: type, loc, msg, and ``input`` /
    ``ctx`` when they encode strictly and are short."""
    safe = []
    for error in errors:
        item = {"type": str(error.get("type", "value_error")),
                "loc": [part if isinstance(part, int) else str(part)
                        for part in error.get("loc", ())],
                "msg": str(error.get("msg", "invalid"))}
        if not _encodable(item["msg"]):
            item["msg"] = "invalid value"
        if not all(_encodable(part) for part in item["loc"]):
            item["loc"] = ["body"]
        for key in ("input", "ctx"):
            if key in error and _encodable(error[key]):
                item[key] = error[key]
        safe.append(item)
    return safe


DATABASE_DOWN = (
    ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, sqlite3.OperationalError,
)
"""The database is unreachable, restarting, full of connections, or (SQLite) locked."""


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the methods
    of the first route whose path matched)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            exc.headers = {**(exc.headers or {}),
                           "Allow": ", ".join(allowed_methods(app, request))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def unprocessable(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": safe_errors(exc.errors())},
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(RPCError)
    async def temporal_refused(request: Request, exc: RPCError) -> JSONResponse:
        # routes turn the answers that concern a job into their 404/409; what is left
        # says Temporal is down, slow or overloaded
        log.warning("Temporal error on %s: %s (%s)", loggable_path(request.url.path), exc.message,
                    exc.status.name if exc.status else "no status")
        return JSONResponse({"detail": "Temporal is unavailable"},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "5"})

    for kind in DATABASE_DOWN:
        @app.exception_handler(kind)
        async def database_down(request: Request, exc: Exception) -> JSONResponse:
            log.warning("database unavailable on %s: %s", loggable_path(request.url.path), exc)
            return JSONResponse({"detail": "the database is unavailable"},
                                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                                headers={"Retry-After": "5"})
