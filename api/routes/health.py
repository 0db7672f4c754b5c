"""``GET /health`` (readiness: one line per dependency, 503 naming what is down) and
``GET /health/live`` (liveness: the process answers).

A load balancer or orchestrator probes ``/health/live`` to know the process is alive,
and ``/health`` to know it can serve. The deep checks (a database query, a Temporal
health call, a storage write, ``ffmpeg -version``) run at most once per
:data:`CHECK_EVERY` seconds whatever the probing rate; answers in between, and while the
next run is under way, reuse the last result; the first probes share one run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.routing import ApiRouter
from api.schemas import Health
from core.db import ping
from core.ffmpeg import ffmpeg_version

router = ApiRouter(tags=["health"])

CHECK_TIMEOUT = 3.0
CHECK_EVERY = 1.0
FFMPEG_CHECK_EVERY = 30.0
"""``ffmpeg -version`` costs 60 ms of CPU beside the API (6 % of a core under a probe a
second), and the binary changes only with a deployment."""


async def _run(check: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return "error: timed out"
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


class HealthChecks:
    """The last deep check and when it ran; one refresh at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._result: dict[str, Any] | None = None
        self._checked_at = 0.0
        self._refresh: asyncio.Task[dict[str, Any]] | None = None
        self._ffmpeg: tuple[float, str] | None = None  # when it was checked, and how it went

    async def current(self, state: Any) -> dict[str, Any]:
        """The last result while it is fresh. Once it is not, one refresh starts, and
        until it ends probes get the last result (no older than a refresh can take to
        time out) rather than wait for it, as every probe of that moment did (up to the
        60 ms of ``ffmpeg -version``). Only a probe with no result young enough waits."""
        age = self._clock() - self._checked_at
        if self._result is not None and age < CHECK_EVERY:
            return self._result
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._check(state))
        if self._result is not None and age < CHECK_EVERY + CHECK_TIMEOUT:
            return self._result
        return await asyncio.shield(self._refresh)

    async def _check(self, state: Any) -> dict[str, Any]:
        names = ("database", "temporal", "storage", "ffmpeg")
        results = await asyncio.gather(
            _run(lambda: ping(state.engine)),
            _run(state.temporal.check),
            _run(state.storage.check),
            self._ffmpeg_check(),
        )
        self._result = {"status": "ok" if all(r == "ok" for r in results) else "error",
                        "checks": dict(zip(names, results, strict=True))}
        self._checked_at = self._clock()
        return self._result

    async def _ffmpeg_check(self) -> str:
        """ffmpeg's line of the answer: rerun every :data:`FFMPEG_CHECK_EVERY` seconds,
        and on every refresh while it is failing."""
        if self._ffmpeg is not None:
            checked_at, result = self._ffmpeg
            if result == "ok" and self._clock() - checked_at < FFMPEG_CHECK_EVERY:
                return result
        result = await _run(ffmpeg_version)
        self._ffmpeg = (self._clock(), result)
        return result


@router.get("/health", name="check", response_model=Health,
            responses={503: {"model": Health, "description": "a check failed"}})
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    if not hasattr(state, "health"):
        state.health = HealthChecks()
    result = await state.health.current(state)
    return JSONResponse(result, status_code=200 if result["status"] == "ok" else 503)


@router.get("/health/live", name="live")
async def live() -> dict[str, str]:
    """The process is up and its event loop answers; nothing else is checked."""
    return {"status": "ok"}
