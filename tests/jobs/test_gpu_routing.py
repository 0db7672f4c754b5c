"""GPU pool routing and fallback, on a machine without a GPU (as CI is).

A ``--pool gpu`` worker here has no NVDEC: its ffmpeg with ``-hwaccel cuda`` fails for
real and the step falls back to CPU decoding on the same worker. The workers of this
module live in their own Temporal namespace so the rest of the session never sees a
GPU poller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from activities.worker import build_workers
from core.config import Settings
from core.storage import get_storage
from core.temporal import gpu_workers_polling
from tests.conftest import ISOLATED_NAMESPACE
from tests.utils.apps import other_app
from tests.utils.jobs import download, submit, upload, wait_for
from tests.utils.media import duration, ffprobe
from tests.utils.users import new_user_headers


@pytest.fixture(scope="module")
def gpu_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_namespace": ISOLATED_NAMESPACE})


@pytest.fixture(scope="module")
async def gpu_client(gpu_settings: Settings, db_engine: object) -> AsyncIterator[httpx.AsyncClient]:
    async with other_app(gpu_settings) as (client, _):
        yield client


async def start_workers(settings: Settings, pools: list[str]) -> contextlib.AsyncExitStack:
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stack = contextlib.AsyncExitStack()
    for position, pool in enumerate(pools):
        for w in build_workers(client, settings, get_storage(settings), pool=pool, concurrency=1,
                               poll_jobs_queue=position == 0):
            await stack.enter_async_context(w)
    if "gpu" in pools:  # the server lists a poller only once its first poll arrived
        for _ in range(100):
            if await gpu_workers_polling(client):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the GPU worker never showed up as a poller")
    return stack


async def test_gpu_without_a_gpu_worker_is_refused(
    gpu_client: httpx.AsyncClient, media_dir: Path
) -> None:
    headers = await new_user_headers(gpu_client)
    video = await upload(gpu_client, headers, media_dir / "a.mp4")
    response = await gpu_client.post("/api/v1/jobs", headers=headers, json={
        "type": "text_overlay", "params": {"video": video, "text": "x"}, "accelerator": "gpu"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "accelerator"]


async def test_gpu_pool_runs_with_cpu_decode_fallback(
    gpu_client: httpx.AsyncClient, gpu_settings: Settings, media_dir: Path, tmp_path: Path
) -> None:
    headers = await new_user_headers(gpu_client)
    video = await upload(gpu_client, headers, media_dir / "a.mp4")
    async with await start_workers(gpu_settings, ["cpu", "gpu"]):
        results = {}
        for accelerator in ("gpu", "auto", "cpu"):
            job = await submit(gpu_client, headers, {
                "type": "text_overlay", "params": {"video": video, "text": accelerator},
                "output": {"preset": "ultrafast"}, "accelerator": accelerator})
            done = await wait_for(gpu_client, headers, job["id"])
            assert done["status"] == "completed", done
            out = await download(gpu_client, headers, done["output_files"][0],
                                 tmp_path / f"{accelerator}.mp4")
            assert duration(ffprobe(out)) == pytest.approx(2.0, abs=0.1)
            logs = (await gpu_client.get(f"/api/v1/jobs/{job['id']}/logs",
                                         headers=headers)).json()
            results[accelerator] = logs[0]
    assert results["gpu"]["pool"] == "gpu" and results["auto"]["pool"] == "gpu"
    assert results["cpu"]["pool"] == "cpu"
    # no NVDEC on this machine: the GPU worker tried it and fell back to CPU decoding
    assert results["gpu"]["decoder"] == "cpu" and "-hwaccel" not in results["gpu"]["argv"]


async def test_copy_join_stays_on_cpu_under_auto(
    gpu_client: httpx.AsyncClient, gpu_settings: Settings, media_dir: Path
) -> None:
    headers = await new_user_headers(gpu_client)
    a = await upload(gpu_client, headers, media_dir / "a.mp4")
    async with await start_workers(gpu_settings, ["cpu", "gpu"]):
        job = await submit(gpu_client, headers, {"type": "join", "params": {"inputs": [a, a]}})
        done = await wait_for(gpu_client, headers, job["id"])
    assert done["status"] == "completed"
    logs = (await gpu_client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
    assert logs[0]["pool"] == "cpu"


async def test_admin_reroute_sends_remaining_steps_to_cpu(
    gpu_client: httpx.AsyncClient, gpu_settings: Settings, media_dir: Path
) -> None:
    admin = await new_user_headers(gpu_client, superuser=True)
    user = await new_user_headers(gpu_client)
    video = await upload(gpu_client, user, media_dir / "long.mp4")
    async with await start_workers(gpu_settings, ["cpu", "gpu"]):
        job = await submit(gpu_client, user, {
            "type": "combined", "accelerator": "gpu", "output": {"preset": "veryfast"},
            "params": {"execution": "stepwise", "steps": [
                {"id": "one", "type": "text_overlay", "params": {"video": video, "text": "1"}},
                {"id": "two", "type": "text_overlay", "params": {"video": "@one", "text": "2"}},
            ]}})
        forbidden = await gpu_client.post(f"/api/v1/admin/jobs/{job['id']}/reroute",
                                          headers=user, json={"pool": "cpu"})
        assert forbidden.status_code == 403
        response = await gpu_client.post(f"/api/v1/admin/jobs/{job['id']}/reroute",
                                         headers=admin, json={"pool": "cpu"})
        assert response.status_code == 202, response.text
        done = await wait_for(gpu_client, user, job["id"], timeout=120)
    assert done["status"] == "completed", done
    logs = (await gpu_client.get(f"/api/v1/jobs/{job['id']}/logs", headers=user)).json()
    assert [entry["pool"] for entry in logs if entry["step"] >= 0][-1] == "cpu"


async def test_the_new_job_types_decode_on_the_gpu_pool_or_stay_on_the_cpu(
    gpu_client: httpx.AsyncClient, gpu_settings: Settings, media_dir: Path, tmp_path: Path
) -> None:
    """A package, thumbnails and a frame-exact trim decode video: asked for the GPU, they
    run on its pool, whose ffmpeg falls back to CPU decoding here, and their outputs are
    whole. A keyframe trim and a copy transcode decode nothing: ``auto`` keeps them on
    the CPU pool even while a GPU worker polls."""
    headers = await new_user_headers(gpu_client)
    video = await upload(gpu_client, headers, media_dir / "a.mp4")
    decoding = {
        "package": {"type": "package", "output": {"preset": "ultrafast"}, "params": {
            "input": video, "segment_seconds": 2, "renditions": [{"height": 240},
                                                                  {"height": 120}]}},
        "thumbnails": {"type": "thumbnails", "params": {
            "input": video, "at": [0.5, 1.5], "width": 64, "format": "jpg"}},
        "trim": {"type": "trim", "output": {"preset": "ultrafast"}, "params": {
            "input": video, "start": 0.2, "end": 1.4, "accurate": True}},
    }
    copying = {
        "trim": {"type": "trim", "params": {"input": video, "start": 0.0, "end": 1.0,
                                            "accurate": False}},
        "transcode": {"type": "transcode", "params": {"input": video},
                      "output": {"container": "mkv"}},
    }
    async with await start_workers(gpu_settings, ["cpu", "gpu"]):
        jobs = {name: await submit(gpu_client, headers, {**spec, "accelerator": "gpu"})
                for name, spec in decoding.items()}
        jobs |= {f"copy {name}": await submit(gpu_client, headers, spec)
                 for name, spec in copying.items()}
        done = {name: await wait_for(gpu_client, headers, job["id"], timeout=120)
                for name, job in jobs.items()}
    for name, job in done.items():
        assert job["status"] == "completed", (name, job)
        [log] = (await gpu_client.get(f"/api/v1/jobs/{job['id']}/logs",
                                      headers=headers)).json()
        if name in decoding:
            assert (log["pool"], log["decoder"]) == ("gpu", "cpu"), name  # fell back
            assert "-hwaccel" not in log["argv"], name
        else:
            assert log["pool"] == "cpu", name

    trimmed = await download(gpu_client, headers, done["trim"]["output_files"][0],
                             tmp_path / "trim.mp4")
    assert duration(ffprobe(trimmed)) == pytest.approx(1.2, abs=0.1)
    members = {}
    for name in ("package", "thumbnails"):
        [file_id] = done[name]["output_files"]
        row = (await gpu_client.get(f"/api/v1/files/{file_id}", headers=headers)).json()
        members[name] = tmp_path / name
        members[name].mkdir()
        for member in row["metadata"]["members"]:
            body = await gpu_client.get(f"/api/v1/files/{file_id}/members/{member['path']}",
                                        headers=headers)
            assert body.status_code == 200 and len(body.content) == member["size"]
            (members[name] / member["path"]).write_bytes(body.content)
    for variant, height in (("v0.m3u8", 240), ("v1.m3u8", 120)):
        probe = ffprobe(members["package"] / variant)  # every segment decodes
        [stream] = probe["streams"]
        assert stream["height"] == height
        assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    thumbs = sorted(members["thumbnails"].glob("*.jpg"))
    assert len(thumbs) == 2
    for thumb in thumbs:
        stream = ffprobe(thumb)["streams"][0]
        assert (stream["codec_name"], stream["width"]) == ("mjpeg", 64)
