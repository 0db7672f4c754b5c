"""CORS for browser apps that call ``/api/v1`` with credentials (docs/API.md, "Browser
apps (CORS)"; ``MEDIAFLOW_CORS_ORIGINS``).

Starlette's ``CORSMiddleware`` does the protocol; this wrapper decides where it applies:

* only under ``/api/v1`` — share links (``/s/…``) answer ``Access-Control-Allow-Origin: *``
  themselves (``api/routes/shares.py``) so any web player can fetch them, and must keep
  doing so whoever asks;
* only for allowed origins — a request from any other origin gets no CORS header at all
  (a preflight from it is refused with a plain 400), so its browser withholds the answer.

Allowed: the listed origins, or in dev (nothing listed) any local origin. Credentials are
allowed, so ``*`` never is (``core/config.py`` refuses it at start).
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routing import API_PREFIX
from core.config import Settings

LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?$"
"""The dev default: a page served from this machine, on any port."""
ALLOW_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ALLOW_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key",
                 "X-Request-ID", "Range"]
EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "Content-Disposition", "Content-Range",
                  "Content-Length", "ETag", "Location"]
MAX_AGE = 600


class ApiCors:
    """The ASGI middleware (module docstring)."""

    def __init__(self, app: ASGIApp, origins: list[str], origin_regex: str | None) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=origins, allow_origin_regex=origin_regex,
            allow_credentials=True, allow_methods=ALLOW_METHODS, allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS, max_age=MAX_AGE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.cors.is_allowed_origin(origin):
            await self.cors(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await _refuse_preflight(send)
            return
        await self.app(scope, receive, send)  # answered, without CORS headers


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse_preflight(send: Send) -> None:
    body = json.dumps({"detail": "this origin may not call the API"}).encode()
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"vary", b"Origin")]})
    await send({"type": "http.response.body", "body": body})


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Outermost, so every answer — errors, 429s, body-guard refusals — carries the
    headers a browser needs to read it."""
    origins = settings.cors_origin_list
    regex = LOCAL_ORIGINS if settings.is_dev and not origins else None
    if origins or regex:
        app.add_middleware(ApiCors, origins=origins, origin_regex=regex)
