"""Real HTTP servers on loopback for tests that need a real socket: ``mediaflow api`` as
its own process (slow clients, the schema fuzzer), or the session app served by uvicorn on
the test's own event loop, so it keeps its database pool and storage (clients that are
not Python, such as ffprobe reading a share link; run blocking ones in a thread)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cli.devstack import free_ports
from core.config import Settings
from tests.utils.apps import same_volume

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def api_process(settings: Settings, data_dir: Path, **env: str) -> Iterator[str]:
    """Run ``mediaflow api`` with the session's database and Temporal and ``env``
    (``MEDIAFLOW_*`` names without the prefix, upper case); yields its base URL."""
    port = free_ports(1)[0]
    same_volume(settings, data_dir)  # the session's storage, seen from another data dir
    environment = {
        **os.environ,
        "MEDIAFLOW_ENV": "test",
        "MEDIAFLOW_DATA_DIR": str(data_dir),
        "MEDIAFLOW_DATABASE_URL": str(settings.database_url),
        "MEDIAFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "MEDIAFLOW_JWT_SECRET": settings.jwt_secret_value(),
        "MEDIAFLOW_LOG_LEVEL": "WARNING",
        **{f"MEDIAFLOW_{name}": value for name, value in env.items()},
    }
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
        cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            process.kill()
            raise AssertionError(f"the API did not start: {process.communicate()[1]!r}")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` (already started: its lifespan is not run again); yield its base URL."""
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def raw_get(base_url: str, raw_path: str) -> tuple[int, bytes]:
    """GET ``raw_path`` exactly as written (no client normalises its dot segments or
    percent-escapes): the status and the body."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode("latin-1"))
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
