"""What one request to each hot route costs the API itself, in-process: no uvicorn, no
socket, no wrk sharing the cores, so the figures move with the code rather than with the
machine's load (``bench.api_load`` measures the whole server).

The stack's API keeps running; this process builds a second app on the same data dir and
Temporal and calls it through ASGI directly, sequentially, beside a bare FastAPI route
called the same way. ``--profile ROUTE`` prints cProfile's top functions for one route.

    python -m bench.route_cost [--requests 5000] [--profile "GET /jobs/{id}"]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.api_load import completed_job
from bench.harness import make_clip, running_stack

ASGIApp = Callable[[dict, Any, Any], Awaitable[None]]
ROUNDS = 5


def caller(app: ASGIApp, path: str, authorization: str) -> Callable[[], Awaitable[int]]:
    """One GET of ``path`` (with its query) through ``app``: the answer's status."""
    path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"authorization", authorization.encode())]

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> int:
        status: list[int] = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                   "method": "GET", "scheme": "http", "path": path,
                   "raw_path": path.encode(), "query_string": query.encode(),
                   "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
                   "server": ("127.0.0.1", 80), "state": {}}, receive, send)
        return status[0]

    return call


async def microseconds(call: Callable[[], Awaitable[int]], requests: int) -> float:
    for _ in range(min(200, requests)):  # warm: caches, lazily built routes
        status = await call()
    if status != 200:
        raise RuntimeError(f"the route answered {status}")
    started = time.perf_counter()
    for _ in range(requests):
        await call()
    return (time.perf_counter() - started) / requests * 1e6


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict:
        return {"status": "ok"}

    return app


async def measure(routes: dict[str, str], authorization: str, requests: int,
                  profile: str | None) -> None:
    from api.main import create_app  # after the environment names the stack's data dir

    app = create_app()
    async with app.router.lifespan_context(app):
        calls = {"bare FastAPI route": caller(bare_app(), "/bare", "")}
        calls |= {name: caller(app, path, authorization) for name, path in routes.items()}
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(ROUNDS):  # interleaved, the best of each: the machine's noise is
            for name, call in calls.items():  # one-sided, it only ever adds time
                best[name] = min(best[name], await microseconds(
                    call, max(1, requests // ROUNDS)))
        bare = best.pop("bare FastAPI route")
        print(f"{'bare FastAPI route':24} {bare:7.0f} µs")
        for name, cost in best.items():
            print(f"{name:24} {cost:7.0f} µs  ({bare / cost:.2f} of the bare route's rate)")
        if profile:
            call = caller(app, routes[profile], authorization)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(requests):
                await call()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000,
                        help="per route, in five interleaved rounds whose best counts")
    parser.add_argument("--profile", help='a route name as printed, e.g. "GET /jobs/{id}"')
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="bench-route-cost-"))
    clip = make_clip(media / "clip.mp4", 1, size="320x240")
    budget = {"MEDIAFLOW_RATE_LIMIT_REQUESTS": "10000000/minute"}
    with running_stack(extra_env=budget) as stack:
        job_id, file_id = completed_job(stack, clip), stack.upload(clip)
        routes = {"GET /health": "/api/v1/health", "GET /auth/me": "/api/v1/auth/me",
                  "GET /jobs/{id}": f"/api/v1/jobs/{job_id}",
                  "GET /files/{id}": f"/api/v1/files/{file_id}",
                  "GET /jobs?limit=20": "/api/v1/jobs?limit=20"}
        os.environ.update(budget, MEDIAFLOW_ENV="dev", MEDIAFLOW_DATA_DIR=str(stack.work / "data"),
                          MEDIAFLOW_TEMPORAL_ADDRESS=stack.temporal)
        # the access log goes to a file, as the server's does (a terminal costs far more)
        logging.basicConfig(filename=media / "api.log", level=logging.INFO)
        asyncio.run(measure(routes, stack.http.headers["Authorization"], args.requests,
                            args.profile))


if __name__ == "__main__":
    main()
