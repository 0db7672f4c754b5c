"""ASGI middleware of the API: a request id on every request and response, one log
line per request carrying it, and the last word on errors: an exception no handler
turned into an answer becomes a plain 500 (``{"detail", "request_id"}``, never the
input or a traceback) with the traceback logged under the request id — and the
keep-alive connection stays usable, which an exception reaching uvicorn would end.

Rate limiting is not middleware: the login limit must know whether the
credentials were right and the request budget must know the user, so both sit
behind authentication (``api.ratelimit``, ``api.users.auth``). Body caps, body
read timeouts and strict JSON are ``api.guard``.

A plain ASGI class rather than Starlette's ``BaseHTTPMiddleware``, which
re-wraps streaming responses (downloads, the job event stream) and gets in the
way of cancellation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from contextvars import ContextVar

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.guard import RequestGuard
from api.metrics import HTTP_IN_FLIGHT, observe_request
from core.config import Settings
from core.logs import pop_context, push_context

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: A share link's token is a credential: the access log shows ``/s/<token>/...`` instead.
SHARE_TOKEN = re.compile(r"^/s/[^/]+")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
log = logging.getLogger("mediaflow.api.access")


def loggable_path(path: str) -> str:
    """``path`` as it may be logged: a share link's token hidden (it is a credential)."""
    return SHARE_TOKEN.sub("/s/<token>", path)


def current_request_id() -> str:
    """The id of the request being served ("-" outside one), for log lines and errors."""
    return request_id_var.get()


class RequestIdMiddleware:
    """Takes the client's ``X-Request-ID`` when it is sane (else makes one),
    echoes it on the response and logs method, path, status and duration with it.

    A client-chosen id is only trusted as a correlation label: its shape is
    checked so it cannot inject into log lines or headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id") or ""
        request_id = incoming if REQUEST_ID_SHAPE.fullmatch(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        fields = push_context(request_id=request_id)  # every line of this request carries it
        started = time.perf_counter()
        status_code = 500

        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, answered
            if message["type"] == "http.response.start":
                status_code, answered = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status_code = 499  # nobody is left to answer (nginx's code for it, in the log)
        except Exception:
            log.exception("unhandled error in %s %s request_id=%s",
                          scope["method"], loggable_path(scope["path"]), request_id)
            if answered:
                raise  # the answer has begun: only dropping the connection is left
            await _internal_error(send_with_id, request_id)
        finally:
            HTTP_IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            observe_request(scope, status_code, seconds)
            client = scope.get("client")
            duration_ms = seconds * 1000
            path = loggable_path(scope["path"])
            log.info(
                "%s %s %s %.1fms client=%s request_id=%s",
                scope["method"],
                path,
                status_code,
                duration_ms,
                client[0] if client else "-",
                request_id,
                extra={"method": scope["method"], "path": path,
                       "status": status_code, "duration_ms": round(duration_ms, 1),
                       "client": client[0] if client else None},
            )
            pop_context(fields)
            request_id_var.reset(token)


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps({"detail": "internal server error", "request_id": request_id}).encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Called once by ``api.main.create_app``. Outermost first: the request id, log line
    and metrics (every answer carries an id and is counted, errors included), then the
    body guard. One layer each: every ASGI layer costs every request."""
    _ensure_access_log_output(settings.log_level)
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(RequestIdMiddleware)


def _ensure_access_log_output(level: str) -> None:
    """uvicorn configures only its own loggers, so without a handler here the
    request log would go nowhere. When the process has configured logging
    (root handlers exist: ``mediaflow dev``, pytest), it is left alone."""
    log.setLevel(level.upper())
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
