"""Hostile job input (docs/SECURITY.md #3, #4, #5, #9, #18) against the real API, worker
and ffmpeg."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ffmpeg import FFmpegActivities
from core.config import Settings
from core.plan.model import PlanInput, PlanStep
from core.storage import get_storage
from tests.utils.apps import other_app
from tests.utils.jobs import download, submit, upload, wait_for
from tests.utils.media import duration, ffprobe
from tests.utils.users import new_user_headers
from workflows.types import StepInput

pytestmark = pytest.mark.usefixtures("worker")

HOSTILE_TEXTS = [
    "a':textfile=/etc/passwd",
    "x',drawtext=text=OWNED",
    "a'b;c",
    "[0:v]",
    "%{pts}",
    "%{eif:1:d}",
    "back\\slash\\\\ and \\' quote",
    "line one\nline two\r\nthree",
    "\U0001F600" * 1000,
]
HOSTILE_REFS = ["file:///etc/passwd", "concat:/etc/passwd|/etc/hosts", "subfile,,start,0,end,1",
                "data:text/plain,hi", "pipe:0", "http://127.0.0.1/x.mp4", "/etc/passwd",
                "-i", "../../etc/passwd"]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
async def test_drawtext_strings_are_drawn_literally(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path, text: str
) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    spec = {"type": "text_overlay", "params": {"video": video, "text": text, "font_size": 12},
            "output": {"preset": "ultrafast"}}
    job = await submit(client, headers, spec)
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed", done  # one drawtext, no injected filter or file
    out = await download(client, headers, done["output_files"][0], tmp_path / "o.mp4")
    assert duration(ffprobe(out)) == pytest.approx(1.5, abs=0.1)
    logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
    assert [entry["success"] for entry in logs] == [True]
    plan = (await client.post("/api/v1/jobs/validate", headers=headers, json=spec)).json()
    rendered = "\n".join(plan["plan"][0]["argv"])
    fragments = [f for f in text.replace("\r", "\n").split("\n") if len(f) >= 3]
    assert not any(fragment in rendered for fragment in fragments)
    assert "expansion=none" in rendered and "textfile=" in rendered


@pytest.mark.parametrize("ref", HOSTILE_REFS)
async def test_paths_and_urls_never_reach_ffmpeg(
    client: httpx.AsyncClient, headers: dict, ref: str
) -> None:
    for spec in ({"type": "text_overlay", "params": {"video": ref, "text": "x"}},
                 {"type": "join", "params": {"inputs": [ref, ref]}},
                 {"type": "text_overlay", "params": {"video": str(uuid.uuid4()), "text": "x"},
                  "output": {"filename": ref}}):
        response = await client.post("/api/v1/jobs", headers=headers, json=spec)
        assert response.status_code in (404, 422), response.text
        if response.status_code == 422:
            assert response.json()["detail"][0]["loc"][0] == "body"


async def test_a_hostile_upload_name_stays_data(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    hostile = tmp_path / "concat:-i file:%d.mp4"
    hostile.write_bytes((media_dir / "b.mp4").read_bytes())
    video = await upload(client, headers, hostile)
    spec = {"type": "text_overlay", "params": {"video": video, "text": "ok"},
            "output": {"preset": "ultrafast", "filename": "-rf.mp4"}}
    refused = await client.post("/api/v1/jobs/validate", headers=headers, json=spec)
    assert refused.status_code == 422  # a display name may not start with '-'
    assert refused.json()["detail"][0]["loc"] == ["body", "output", "filename"]
    spec["output"]["filename"] = "fine.mp4"
    plan = await client.post("/api/v1/jobs/validate", headers=headers, json=spec)
    assert plan.status_code == 200, plan.text
    assert all("concat:" not in arg and "%d" not in arg for arg in plan.json()["plan"][0]["argv"])
    done = await wait_for(client, headers, (await submit(client, headers, spec))["id"])
    assert done["status"] == "completed", done


@pytest.mark.parametrize("params", [
    {"color": "red:fontfile=/etc/passwd"},
    {"color": "#12345"},
    {"font": "/etc/passwd"},
    {"font": "../../etc/passwd"},
    {"position": "bottom;x"},
    {"font_size": "48:x"},
    {"font_size": 100000},
    {"x": "main_w/2"},
    {"box_color": "black@0.5:x"},
    {"start": "1:2"},
])
async def test_style_params_are_validated_not_spliced(
    client: httpx.AsyncClient, headers: dict, params: dict
) -> None:
    spec = {"type": "text_overlay",
            "params": {"video": str(uuid.uuid4()), "text": "x", **params}}
    response = await client.post("/api/v1/jobs", headers=headers, json=spec)
    assert response.status_code == 422, response.text
    field = next(iter(params))
    assert any(field in d["loc"] for d in response.json()["detail"])


async def test_hung_ffmpeg_is_killed_and_fails_clearly(settings: Settings, tmp_path: Path) -> None:
    """A FIFO nobody writes makes ffmpeg block on open: a real hang, no mock."""
    storage = get_storage(settings)
    key = f"users/test/files/{uuid.uuid4()}"
    fifo = storage.local_path(key)
    assert fifo is not None
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    activities = FFmpegActivities(settings, storage, "cpu")
    activities.stall_seconds = 2.0
    step = PlanStep(index=0, step_id="hang", op="text_overlay",
                    argv=["ffmpeg", "-nostdin", "-progress", "pipe:1", "-protocol_whitelist",
                          "file", "-f", "mov", "-i", "{in0}", "-f", "null", "{out}"],
                    sources=[PlanInput(placeholder="in0", filename="in0.mp4", step_id="prev")],
                    output_name="out.nut", expected_seconds=1)
    request = StepInput(job_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), step=step,
                        pool="cpu", earlier_outputs={"prev": key})
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as failure:
        await asyncio.wait_for(env.run(activities.run_ffmpeg_step, request), 20)
    assert failure.value.type == "FFmpegStalled"
    await asyncio.sleep(0.5)
    left = [p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "ffmpeg" and request.job_id in " ".join(p.info["cmdline"] or [])]
    assert not left, "the hung ffmpeg was left running"
    assert not (settings.scratch_root / request.job_id).exists()
    fifo.unlink()


@asynccontextmanager
async def one_slow_job_allowed(settings: Settings, media_dir: Path,
                               ) -> AsyncIterator[tuple[httpx.AsyncClient, dict, dict, dict]]:
    """An app whose users may run one job at a time, a user, and that user's first slow
    job: (client, headers, the job's spec, the job)."""
    async with other_app(settings, max_active_jobs_per_user=1) as (client, _):
        headers = await new_user_headers(client)
        video = await upload(client, headers, media_dir / "long.mp4")
        spec = {"type": "text_overlay", "params": {"video": video, "text": "x"},
                "output": {"preset": "veryslow"}}
        yield client, headers, spec, await submit(client, headers, spec)


async def test_job_flood_gets_429(settings: Settings, db_engine: object, media_dir: Path) -> None:
    async with one_slow_job_allowed(settings, media_dir) as (client, headers, spec, first):
        second = await client.post("/api/v1/jobs", headers=headers, json=spec)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
        await client.post(f"/api/v1/jobs/{first['id']}/cancel", headers=headers)
        await wait_for(client, headers, first["id"])


@pytest.mark.parametrize("spec", [
    {"type": "join", "params": {"inputs": [str(uuid.uuid4())] * 51}},
    {"type": "combined", "params": {"steps": [
        {"id": f"s{i}", "type": "text_overlay",
         "params": {"video": str(uuid.uuid4()) if i == 0 else f"@s{i - 1}", "text": "x"}}
        for i in range(21)]}},
])
async def test_oversized_jobs_are_422(client: httpx.AsyncClient, headers: dict,
                                      spec: dict) -> None:
    response = await client.post("/api/v1/jobs", headers=headers, json=spec)
    assert response.status_code == 422, response.text


async def test_too_much_media_in_one_job_is_422(
    settings: Settings, db_engine: object, media_dir: Path
) -> None:
    async with other_app(settings, max_media_seconds=5) as (client, _):
        headers = await new_user_headers(client)
        a = await upload(client, headers, media_dir / "a.mp4")  # 2 s: under the limit
        response = await client.post("/api/v1/jobs", headers=headers,
                                     json={"type": "join", "params": {"inputs": [a, a, a]}})
        assert response.status_code == 422
        assert "MEDIAFLOW_MAX_MEDIA_SECONDS" in response.text


async def test_jobs_terminated_in_temporal_stop_counting_against_the_limit(
    settings: Settings, db_engine: object, media_dir: Path, temporal_env
) -> None:
    async with one_slow_job_allowed(settings, media_dir) as (client, headers, spec, first):
        await temporal_env.client.get_workflow_handle(first["workflow_id"]).terminate("test")
        second = await client.post("/api/v1/jobs", headers=headers, json=spec)
        assert second.status_code == 202, second.text
        listed = (await client.get("/api/v1/jobs", headers=headers,
                                   params={"status": "cancelled"})).json()
        assert [job["id"] for job in listed["items"]] == [first["id"]]
        await client.post(f"/api/v1/jobs/{second.json()['id']}/cancel", headers=headers)
        await wait_for(client, headers, second.json()["id"])


class SlowRemoteStorage:
    """Local storage that behaves like a slow remote store: no local path, and a transfer
    that takes a while. (A slow network is the one thing here we cannot cause for real.)"""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def local_path(self, key: str):
        return None

    async def download_to(self, key: str, path: Path) -> None:
        await asyncio.sleep(self.delay)
        await self.inner.download_to(key, path)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


async def test_the_step_heartbeats_through_a_slow_download(
    settings: Settings, media_dir: Path
) -> None:
    storage = get_storage(settings)
    key = f"users/test/files/{uuid.uuid4()}"
    await storage.put_file(key, media_dir / "b.mp4")
    activities = FFmpegActivities(settings, SlowRemoteStorage(storage, 2.0), "cpu")
    activities.keepalive_seconds = 0.3
    step = PlanStep(index=0, step_id="slow", op="join",
                    argv=["ffmpeg", "-nostdin", "-progress", "pipe:1", "-protocol_whitelist",
                          "file", "-f", "mov", "-i", "{in0}", "-c", "copy", "-f", "mp4",
                          "{out}"],
                    sources=[PlanInput(placeholder="in0", filename="in0.mp4", step_id="prev")],
                    output_name="out.mp4", expected_seconds=1.5)
    request = StepInput(job_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), step=step,
                        pool="cpu", earlier_outputs={"prev": key})
    beats: list[float] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(asyncio.get_running_loop().time())
    started = asyncio.get_running_loop().time()
    result = await env.run(activities.run_ffmpeg_step, request)
    assert result.size > 0
    during_download = [t for t in beats if t - started < 2.0]
    assert len(during_download) >= 4, beats  # the initial beat plus the keepalive
    await storage.delete(result.storage_key)
    await storage.delete(key)
