"""text_overlay and audio_overlay end to end; outputs checked with ffprobe."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.utils.jobs import download, keep_history, submit, upload, wait_for
from tests.utils.media import duration, ffprobe, stream_types

pytestmark = pytest.mark.usefixtures("worker")


async def run_job(client: httpx.AsyncClient, headers: dict, spec: dict, tmp_path: Path,
                  temporal_env=None, record: str = "") -> dict:
    job = await submit(client, headers, spec)
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed", done
    if record:
        await keep_history(temporal_env, done["workflow_id"], record)
    return ffprobe(await download(client, headers, done["output_files"][0], tmp_path / "o.mp4"))


async def test_text_overlay(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                            tmp_path: Path, temporal_env) -> None:
    video = await upload(client, headers, media_dir / "a.mp4")
    probe = await run_job(client, headers, {
        "type": "text_overlay",
        "params": {"video": video, "text": "Hello", "position": "top-left", "box": True},
        "output": {"preset": "ultrafast", "filename": "hello.mp4"}}, tmp_path, temporal_env,
        "text_overlay")
    assert stream_types(probe) == ["audio", "video"]
    assert duration(probe) == pytest.approx(2.0, abs=0.1)


async def test_audio_overlay_mix(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                                 tmp_path: Path, temporal_env) -> None:
    video = await upload(client, headers, media_dir / "a.mp4")
    audio = await upload(client, headers, media_dir / "tone.wav")
    probe = await run_job(client, headers, {
        "type": "audio_overlay",
        "params": {"video": video, "audio": audio, "mode": "mix", "audio_volume": 0.5,
                   "offset": 0.5, "fade_in": 0.2},
        "output": {"preset": "ultrafast"}}, tmp_path, temporal_env, "audio_overlay")
    assert stream_types(probe) == ["audio", "video"]
    assert duration(probe) == pytest.approx(2.0, abs=0.1)  # as long as the video


async def test_audio_overlay_replace_on_silent_video(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    video = await upload(client, headers, media_dir / "silent.mp4")
    audio = await upload(client, headers, media_dir / "tone.wav")
    probe = await run_job(client, headers, {
        "type": "audio_overlay", "params": {"video": video, "audio": audio, "mode": "replace"},
        "output": {"preset": "ultrafast"}}, tmp_path)
    assert stream_types(probe) == ["audio", "video"]
    audio_stream = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert audio_stream["codec_name"] == "aac"
    assert duration(probe) == pytest.approx(1.0, abs=0.1)


async def test_validate_shows_the_plan_without_running(
    client: httpx.AsyncClient, headers: dict, media_dir: Path
) -> None:
    video = await upload(client, headers, media_dir / "a.mp4")
    spec = {"type": "text_overlay", "params": {"video": video, "text": "x';drawtext=OWNED"}}
    response = await client.post("/api/v1/jobs/validate", headers=headers, json=spec)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is True and len(body["plan"]) == 1
    step = body["plan"][0]
    assert step["op"] == "text_overlay" and step["pool"] in ("cpu", "gpu-capable")
    argv = " ".join(step["argv"])
    assert "{in0}" in argv and "{out}" in argv and "OWNED" not in argv
    assert "/scratch" not in argv and video not in argv
    jobs = (await client.get("/api/v1/jobs", headers=headers)).json()
    assert jobs["total"] == 0  # nothing ran
