"""A worker killed with SIGKILL mid-step: another worker finishes the job, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from core.config import Settings
from tests.conftest import REPO
from tests.utils.jobs import submit, upload, wait_for

pytestmark = pytest.mark.slow


def start_worker(settings: Settings) -> subprocess.Popen:
    env = {**os.environ,
           "MEDIAFLOW_ENV": "test", "MEDIAFLOW_DATABASE_URL": settings.resolved_database_url,
           "MEDIAFLOW_JWT_SECRET": settings.jwt_secret_value(),
           "MEDIAFLOW_DATA_DIR": str(settings.data_dir),
           "MEDIAFLOW_TEMPORAL_ADDRESS": settings.temporal_address}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--pool", "cpu",
                             "--concurrency", "1"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_kill_9_during_a_step_then_a_new_worker_completes(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings
) -> None:
    first = start_worker(settings)
    second = None
    try:
        video = await upload(client, headers, media_dir / "long.mp4")
        job = await submit(client, headers, {
            "type": "text_overlay", "params": {"video": video, "text": "durable"},
            "output": {"preset": "veryfast"}})
        for _ in range(900):
            view = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
            if view["progress"]["percent"] > 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the job never started: {view}")
        ffmpeg = [c for c in psutil.Process(first.pid).children(recursive=True)
                  if c.name() == "ffmpeg"]
        assert ffmpeg, "ffmpeg should be running under the first worker"
        # the worker's private part of the scratch root holds the step's files
        [claimed] = settings.scratch_root.glob(f"worker-{first.pid}-*")
        assert list((claimed / job["id"]).iterdir()), "the step's scratch should be in use"
        first.send_signal(signal.SIGKILL)
        first.wait()
        gone, alive = psutil.wait_procs(ffmpeg, timeout=5)
        assert not alive, "ffmpeg outlived its SIGKILLed worker"

        assert claimed.exists(), "nothing removes a dead worker's scratch until one starts"

        second = start_worker(settings)
        done = await wait_for(client, headers, job["id"], timeout=180)
        assert not claimed.exists(), "the next worker on this scratch root removes it"
        assert done["status"] == "completed", done
        assert done["retry_count"] >= 1
        assert len(done["output_files"]) == 1
        outputs = (await client.get("/api/v1/files", headers=headers,
                                    params={"kind": "video"})).json()
        produced = [f for f in outputs["items"] if f["job_id"] == job["id"]]
        assert len(produced) == 1
        logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
        assert [entry["attempt"] for entry in logs if entry["success"]] == [done["retry_count"] + 1]
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
