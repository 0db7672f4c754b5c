"""A stepwise pipeline whose worker is SIGKILLed in step 3 resumes at step 3.

Steps 1–2 are cheap (a stream-copy join, then a soundtrack mixed under copied video), step 3
redraws a minute of 640x480 video and step 4 embeds subtitles by stream copy. The worker is
killed while step 3's ffmpeg runs; once the heartbeat timeout (30 s) expires a new worker
retries step 3 only: the outputs of steps 1–2 are taken from storage, not recomputed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from core.config import Settings
from tests.jobs.test_durability import start_worker
from tests.utils.jobs import download, submit, upload, wait_for
from tests.utils.media import SRT, duration, ffprobe, stream_types

pytestmark = pytest.mark.slow


async def wait_in_step_three(client: httpx.AsyncClient, headers: dict, job_id: str,
                             worker: psutil.Process) -> list[psutil.Process]:
    """Until two steps are done and the third one's ffmpeg runs under ``worker``."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        view = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        assert view["status"] in ("pending", "processing"), view
        if view["progress"]["steps_done"] == 2:
            running = [c for c in worker.children(recursive=True) if c.name() == "ffmpeg"]
            if running:
                return running
        await asyncio.sleep(0.1)
    raise AssertionError(f"step 3 never ran: {view}")


async def test_stepwise_job_resumes_at_the_killed_step(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings,
    tmp_path: Path,
) -> None:
    first = start_worker(settings)
    second = None
    try:
        long = await upload(client, headers, media_dir / "long.mp4")
        tone = await upload(client, headers, media_dir / "tone.wav")
        srt = tmp_path / "subs.srt"
        srt.write_text(SRT)
        subs = await upload(client, headers, srt)
        job = await submit(client, headers, {
            "type": "combined",
            "params": {"execution": "stepwise", "steps": [
                {"id": "joined", "type": "join", "params": {"inputs": [long, long]}},
                {"id": "scored", "type": "audio_overlay",
                 "params": {"video": "@joined", "audio": tone, "loop": True}},
                {"id": "titled", "type": "text_overlay",
                 "params": {"video": "@scored", "text": "durable", "box": True}},
                {"id": "final", "type": "subtitles",
                 "params": {"video": "@titled", "subtitles": subs, "mode": "embed",
                            "language": "eng"}},
            ]},
            "output": {"preset": "veryfast"}})
        plan_ops = [run["op"] for run in (await client.post(
            "/api/v1/jobs/validate", headers=headers, json=job["spec"])).json()["plan"]]
        assert plan_ops == ["join", "audio_overlay", "text_overlay", "subtitles"]

        ffmpeg = await wait_in_step_three(client, headers, job["id"], psutil.Process(first.pid))
        first.send_signal(signal.SIGKILL)
        first.wait()
        _, alive = psutil.wait_procs(ffmpeg, timeout=5)
        assert not alive, "ffmpeg outlived its SIGKILLed worker"

        second = start_worker(settings)
        done = await wait_for(client, headers, job["id"], timeout=180)
        assert done["status"] == "completed", done
        assert done["retry_count"] >= 1
        assert done["progress"]["steps_done"] == done["progress"]["steps_total"] == 4

        logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
        by_step = {n: [(row["attempt"], row["success"]) for row in logs if row["step"] == n]
                   for n in range(4)}
        assert by_step[0] == [(1, True)], logs  # the join ran once
        assert by_step[1] == [(1, True)], logs  # and so did the audio overlay
        [(attempt, success)] = [entry for entry in by_step[2] if entry[1]]
        assert success and attempt >= 2, logs
        assert by_step[3] == [(1, True)], logs

        out = await download(client, headers, done["output_files"][0], tmp_path / "o.mp4")
        probe = ffprobe(out)
        assert stream_types(probe) == ["audio", "subtitle", "video"]
        assert duration(probe) == pytest.approx(60.0, abs=0.15)
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
