"""Job helpers for tests: upload media, submit and wait through the HTTP API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

TERMINAL = {"completed", "failed", "cancelled"}


async def upload(client: httpx.AsyncClient, headers: dict[str, str], path: Path) -> str:
    with path.open("rb") as f:
        response = await client.post("/api/v1/files", headers=headers,
                                     files={"file": (path.name, f, "application/octet-stream")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def submit(client: httpx.AsyncClient, headers: dict[str, str], spec: dict,
                 **extra_headers: str) -> dict:
    response = await client.post("/api/v1/jobs", headers={**headers, **extra_headers}, json=spec)
    assert response.status_code in (200, 202), response.text
    return response.json()


async def wait_for(client: httpx.AsyncClient, headers: dict[str, str], job_id: str,
                   statuses: set[str] = TERMINAL, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck in {job['status']}: {job}")


async def download(client: httpx.AsyncClient, headers: dict[str, str], file_id: str,
                   target: Path) -> Path:
    response = await client.get(f"/api/v1/files/{file_id}/download", headers=headers)
    assert response.status_code == 200, response.text
    target.write_bytes(response.content)
    return target


HISTORIES = Path(__file__).resolve().parent.parent / "histories"
GENERATION = "v4"
"""Histories are frozen once recorded: a new recording is saved as ``<name>_<generation>``
and never over an existing file, so the histories of every earlier workflow version keep
proving that today's code replays them. Bump this when the workflow's commands change
(with a ``workflow.patched`` gate) and record again."""


async def keep_history(temporal_env, workflow_id: str, name: str) -> None:
    """With MEDIAFLOW_RECORD_HISTORIES=1, save the workflow's history for the replay tests
    (``tests/histories/<name>_<generation>.json``, unless it exists); otherwise do
    nothing."""
    import os

    if os.environ.get("MEDIAFLOW_RECORD_HISTORIES") != "1":
        return
    history = await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()
    # failure stack traces name this machine's paths: keep them relative to the repository
    site_packages = str(Path(httpx.__file__).resolve().parents[1]) + "/"
    text = history.to_json().replace(site_packages, "").replace(f"{HISTORIES.parents[1]}/", "")
    target = HISTORIES / f"{name}_{GENERATION}.json"
    if not target.exists():
        target.write_text(text)
