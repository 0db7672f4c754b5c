"""What every request body must be before a route sees it (docs/SECURITY.md #20–#23).

One ASGI middleware, so one rule covers every route — ours and fastapi-users':

* **A cap per route**: a body longer than its route's cap is a 413, refused from the
  declared ``Content-Length`` before a byte is read, or as soon as the bytes received
  pass the cap. Uploads (``POST /files``) are refused by a declared length over the
  upload limit and otherwise streamed through; their route counts bytes and quota
  itself, as they arrive.
* **Bounded reads**: a streamed body (an upload) that stalls for longer than
  ``MEDIAFLOW_HTTP_BODY_TIMEOUT`` between two chunks, and any other body that takes
  longer than that in all, is a 408 and the connection is closed. (Headers that stall
  are the server's job: ``api/server.py``.)
* **Strict JSON**: a JSON body is parsed once here with the rules one parser and the
  next agree on: no ``NaN``/``Infinity`` and no number beyond a double (``1e400``), no
  lone UTF-16 surrogates, no duplicate keys, at most :data:`MAX_DEPTH` levels of
  nesting, valid UTF-8. Anything else is a 422 ``json_invalid`` that names the problem
  and never echoes the input. A body that passes is handed on byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings

KIB = 1024
MIB = 1024 * KIB
MAX_DEPTH = 32
JSON_CAP = 1 * MIB
"""Job specs and templates: a 50-input join is a few KiB."""
BATCH_CAP = 8 * MIB
"""``POST /jobs/batch``: up to 100 job specs or template requests."""
BATCH_PATH = "/api/v1/jobs/batch"
SMALL_CAP = 64 * KIB
"""Accounts, keys, control and operator routes: a few hundred bytes in practice."""
SMALL_PREFIXES = ("/api/v1/auth", "/api/v1/users", "/api/v1/api-keys", "/api/v1/admin")
UPLOAD_SLACK = 64 * KIB
"""Room for the multipart framing around an upload of the largest allowed size."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class JSONRefused(ValueError):
    """A JSON body outside the strict subset; the message is safe to show."""


@dataclass(frozen=True)
class BodyRules:
    cap: int
    streamed: bool  # handed on chunk by chunk (uploads), not buffered and checked


def rules_for(method: str, path: str, settings: Settings) -> BodyRules:
    if method == "POST" and path.rstrip("/") == "/api/v1/files":
        return BodyRules(settings.max_upload_bytes + UPLOAD_SLACK, streamed=True)
    if path.startswith(SMALL_PREFIXES):
        return BodyRules(SMALL_CAP, streamed=False)
    if method == "POST" and path.rstrip("/") == BATCH_PATH:
        return BodyRules(BATCH_CAP, streamed=False)
    return BodyRules(JSON_CAP, streamed=False)


def strict_json(body: bytes) -> Any:
    """Parse ``body`` as strict JSON (module docstring), or raise :class:`JSONRefused`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONRefused("the body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except RecursionError:
        raise JSONRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONRefused(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    _check_tree(value, 0)
    return value


def _no_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JSONRefused("a number is beyond the range of a double")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONRefused("an object has the same key twice")
        result[key] = value
    return result


def _check_tree(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise JSONRefused(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONRefused("a string holds a lone UTF-16 surrogate") from None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _declared_length(scope: Scope) -> int | None:
    """Content-Length when present and sane; -1 when present and garbage."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() and len(text) <= 18 else -1
    return None


async def _answer(send: Send, status: int, detail: Any, *, close: bool = False) -> None:
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyRefused(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestGuard:
    """The middleware (module docstring). Installed inside the request-id middleware, so
    its answers carry a request id and are counted in the metrics."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        rules = rules_for(scope["method"], scope["path"], self.settings)
        declared = _declared_length(scope)
        if declared == -1:
            await _answer(send, 400, "Content-Length is not a number", close=True)
            return
        if declared is not None and declared > rules.cap:
            await _answer(send, 413, f"the body is over the {rules.cap}-byte limit of this "
                                     "route", close=True)
            return
        if rules.streamed:
            await self._stream(scope, receive, send)
            return
        try:
            body = await self._read_all(receive, rules.cap)
            if body and _is_json(scope):
                strict_json(body)
        except _BodyRefused as refused:
            await _answer(send, refused.status, refused.detail, close=True)
            return
        except JSONRefused as exc:
            await _answer(send, 422, [{"type": "json_invalid", "loc": ["body"],
                                       "msg": f"JSON refused: {exc}"}])
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_all(self, receive: Receive, cap: int) -> bytes:
        timeout = self.settings.http_body_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _BodyRefused(400, "the client went away")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise _BodyRefused(413, f"the body is over the {cap}-byte limit of "
                                                "this route")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _BodyRefused(408, f"the body did not arrive within {timeout:g} s") from None

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand a streamed body (an upload) on chunk by chunk, each within the body
        timeout; a stall is a 408 (the route counts bytes and quota itself)."""
        timeout = self.settings.http_body_timeout
        started = False

        async def timed_receive() -> Message:
            try:
                return await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise _BodyStalled from None

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except _BodyStalled:
            if started:
                raise
            await _answer(send, 408, f"the body stalled for more than {timeout:g} s",
                          close=True)


class _BodyStalled(Exception):
    """A streamed body's next chunk did not come within the body timeout."""


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that yields the already-read body once, then waits on the client (for
    a disconnect) as the original would."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
