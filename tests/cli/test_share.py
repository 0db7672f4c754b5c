"""``mediaflow share`` against the API served over real HTTP (the session app on a loopback
port; the client runs as its own process, as a user runs it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.conftest import REPO
from tests.utils.jobs import upload
from tests.utils.media import make_png
from tests.utils.server import serving


async def mediaflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60)


async def test_share_prints_a_link_that_works_and_revoke_stops_it(
    client: httpx.AsyncClient, headers: dict, app: FastAPI, tmp_path: Path,
) -> None:
    png = make_png(tmp_path / "logo.png")
    file_id = await upload(client, headers, png)
    key = (await client.post("/api/v1/api-keys", headers=headers, json={"name": "cli"})).json()
    async with serving(app) as server:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")},
               "MEDIAFLOW_URL": server, "MEDIAFLOW_API_KEY": key["key"],
               "XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "80"}
        shared = await mediaflow("share", file_id, "--expires-in", "120", env=env)
        assert shared.returncode == 0, shared.stdout + shared.stderr
        url = shared.stdout.strip()
        assert url.startswith(f"{server}/s/") and url.endswith("/logo.png")
        assert "expires" in shared.stderr
        async with httpx.AsyncClient() as anonymous:
            opened = await anonymous.get(url)
            assert opened.status_code == 200 and opened.content == png.read_bytes()

            revoked = await mediaflow("share", file_id, "--revoke", env=env)
            assert revoked.returncode == 0, revoked.stdout + revoked.stderr
            assert (await anonymous.get(url)).status_code == 403

        too_long = await mediaflow("share", file_id, "--expires-in", "604801", env=env)
        assert too_long.returncode != 0
        missing = await mediaflow("share", "00000000-0000-4000-8000-000000000000", env=env)
        assert missing.returncode == 1 and "HTTP 404" in missing.stdout
