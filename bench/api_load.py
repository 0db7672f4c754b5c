"""The API's hot paths against the framework's floor, side by side in one run.

Starts the embedded default (``mediaflow dev``: SQLite, the Temporal dev server, a worker)
and, beside it, a bare FastAPI route under uvicorn — the floor. ``wrk`` (1 thread, 32
connections) measures each: req/s and p99, and the ratio of each route's req/s to the
bare route's, measured again right before each route. Then ``POST /jobs`` is measured
as jobs accepted per second from 8 concurrent clients (a wrk Lua script counts the 202s):
once with the worker running the accepted jobs on the same two cores, once with the
worker paused, which leaves the API and Temporal's start of each workflow (production
workers run on machines of their own).

    .venv/bin/python -m bench.api_load [--seconds 6] [--database postgresql://…]
                                       [--postgres postgresql://user@127.0.0.1:5432]

``--database`` runs the same against PostgreSQL instead of SQLite (an empty database it
may migrate); ``--postgres`` names a server instead, on which the run creates a database
of its own and drops it afterwards (what ``make bench`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.harness import Stack, make_clip, running_stack, workers_paused
from cli.devstack import free_ports
from core.db import create_database, drop_database

BARE_APP = textwrap.dedent('''
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict:
        return {"status": "ok"}
''')
LATENCY = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
POST_SCRIPT = textwrap.dedent('''
    wrk.method = "POST"
    wrk.body = os.getenv("BENCH_BODY")
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
''')


def whole_seconds(seconds: float) -> int:
    """wrk's -d takes whole seconds only."""
    return max(1, round(seconds))


def wrk(url: str, seconds: float, *, connections: int = 32, headers: dict | None = None,
        script: Path | None = None) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{whole_seconds(seconds)}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    value, unit = LATENCY.search(out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"rps": float(RATE.search(out).group(1)), "p99_ms": p99_ms,  # type: ignore[union-attr]
            "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)",
                                                           out)) else 0}


def bare_server(work: Path) -> tuple[subprocess.Popen, str]:
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
         "--log-level", "warning"], cwd=work)
    url = f"http://127.0.0.1:{port}/bare"
    for _ in range(100):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url


def completed_job(stack: Stack, clip: Path) -> str:
    video = stack.upload(clip)
    _, job = stack.run_job({"type": "text_overlay", "params": {"video": video, "text": "x"},
                            "output": {"preset": "ultrafast"}})
    return str(job["id"])


def measure(seconds: float, database: str | None) -> list[dict]:
    media = Path(tempfile.mkdtemp(prefix="bench-api-"))
    clip = make_clip(media / "clip.mp4", 1, size="320x240")
    extra = {"MEDIAFLOW_RATE_LIMIT_REQUESTS": "10000000/minute",
             "MEDIAFLOW_MAX_ACTIVE_JOBS_PER_USER": "100000"}
    if database:
        extra["MEDIAFLOW_DATABASE_URL"] = database
    bare, bare_url = bare_server(media)
    rows: list[dict] = []
    try:
        with running_stack(extra_env=extra) as stack:
            job_id = completed_job(stack, clip)
            file_id = stack.upload(clip)
            auth = {"Authorization": stack.http.headers["Authorization"]}
            api = f"{stack.url}/api/v1"
            floors = []
            for name, path in [
                ("GET /jobs/{id}", f"/jobs/{job_id}"), ("GET /auth/me", "/auth/me"),
                ("GET /jobs?limit=20", "/jobs?limit=20"), ("GET /files/{id}", f"/files/{file_id}"),
                ("GET /health", "/health"),
            ]:
                # the floor right before each route: a shared machine's speed drifts
                # within a minute, and each ratio compares two neighbouring runs
                floors.append(wrk(bare_url, seconds / 2))
                result = wrk(api + path, seconds, headers=auth)
                rows.append({"route": name, **result,
                             "ratio": result["rps"] / floors[-1]["rps"]})
            median_floor = sorted(floors, key=lambda f: f["rps"])[len(floors) // 2]
            rows.insert(0, {"route": "bare FastAPI route (the median of its runs)",
                            **median_floor, "ratio": 1.0})
            rows.append(post_jobs(api, auth, file_id, seconds, media))
            with workers_paused(stack):
                rows.append({**post_jobs(api, auth, file_id, seconds, media),
                             "route": "POST /jobs (8 clients), workers paused"})
    finally:
        bare.terminate()
        bare.wait()
    return rows


def post_jobs(api: str, auth: dict, file_id: str, seconds: float, work: Path) -> dict:
    """Jobs accepted per second by POST /jobs from 8 concurrent clients."""
    script = work / "post.lua"
    script.write_text(POST_SCRIPT)
    body = json.dumps({"type": "text_overlay", "params": {"video": file_id, "text": "load"},
                       "output": {"preset": "ultrafast"}})
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth["Authorization"]}
    seconds = whole_seconds(seconds)
    argv = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", "-s", str(script),
            f"{api}/jobs"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    accepted = total - (int(non2xx.group(1)) if non2xx else 0)
    value, unit = LATENCY.search(out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"route": "POST /jobs (8 clients)", "rps": accepted / seconds, "p99_ms": p99_ms,
            "non2xx": total - accepted, "ratio": None}


def table(rows: list[dict]) -> str:
    lines = ["| route | req/s | p99 ms | ÷ bare | non-2xx |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "—"
        lines.append(f"| {row['route']} | {row['rps']:.0f} | {row['p99_ms']:.1f} | {ratio} | "
                     f"{row['non2xx']} |")
    return "\n".join(lines)


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL ``server`` for one run, dropped after."""
    url = asyncio.run(create_database(server, "mediaflow_bench"))
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--database", default=None)
    parser.add_argument("--postgres", default=None, metavar="SERVER")
    args = parser.parse_args()
    if args.postgres:
        with scratch_database(args.postgres.rstrip("/")) as database:
            print(f"PostgreSQL {args.postgres} (a database of this run's own)")
            print(table(measure(args.seconds, database)))
        return
    print(table(measure(args.seconds, args.database)))


if __name__ == "__main__":
    main()
