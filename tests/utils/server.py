"""The API as its own process on loopback (``mediaflow api``), for tests that need a real
socket: slow clients, and the schema fuzzer as an outside client sees the service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.devstack import free_ports
from core.config import Settings

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def api_process(settings: Settings, data_dir: Path, **env: str) -> Iterator[str]:
    """Run ``mediaflow api`` with the session's database and Temporal and ``env``
    (``MEDIAFLOW_*`` names without the prefix, upper case); yields its base URL."""
    port = free_ports(1)[0]
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
