"""``GET /health``: one line per dependency, 503 naming what is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.schemas import Health
from core.db import ping
from core.ffmpeg import ffmpeg_version

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0


async def _run(check: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return "error: timed out"
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


@router.get("/health", name="check", response_model=Health,
            responses={503: {"model": Health, "description": "a check failed"}})
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    names = ("database", "temporal", "storage", "ffmpeg")
    results = await asyncio.gather(
        _run(lambda: ping(state.engine)),
        _run(state.temporal.check),
        _run(state.storage.check),
        _run(ffmpeg_version),
    )
    checks = dict(zip(names, results, strict=True))
    healthy = all(result == "ok" for result in results)
    return JSONResponse(
        {"status": "ok" if healthy else "error", "checks": checks},
        status_code=200 if healthy else 503,
    )
