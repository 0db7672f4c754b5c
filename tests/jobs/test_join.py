"""join through the real API, worker, Temporal and ffmpeg; outputs checked with ffprobe."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.utils.jobs import download, keep_history, submit, upload, wait_for
from tests.utils.media import duration, ffprobe, stream_types

pytestmark = pytest.mark.usefixtures("worker")


async def test_join_copy_keeps_codec_and_sums_durations(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path, temporal_env
) -> None:
    a = await upload(client, headers, media_dir / "a.mp4")
    b = await upload(client, headers, media_dir / "b.mp4")
    job = await submit(client, headers, {"type": "join", "params": {"inputs": [a, b, a]}})
    assert job["status"] == "pending" and job["workflow_id"] == f"job-{job['id']}"
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed", done
    assert done["progress"]["percent"] == 100.0 and len(done["output_files"]) == 1
    await keep_history(temporal_env, done["workflow_id"], "join")
    out = await download(client, headers, done["output_files"][0], tmp_path / "out.mp4")
    probe = ffprobe(out)
    assert duration(probe) == pytest.approx(2 + 1.5 + 2, abs=0.15)
    source = ffprobe(media_dir / "a.mp4")
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    src_video = next(s for s in source["streams"] if s["codec_type"] == "video")
    for key in ("codec_name", "profile", "width", "height", "pix_fmt"):
        assert video[key] == src_video[key]
    file_row = (await client.get(f"/api/v1/files/{done['output_files'][0]}",
                                 headers=headers)).json()
    assert file_row["source"] == "job_output" and file_row["job_id"] == done["id"]
    assert file_row["kind"] == "video"
    logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
    assert [entry["success"] for entry in logs] == [True]
    assert logs[0]["operation_type"] == "join" and logs[0]["pool"] == "cpu"


async def test_join_reencode_normalises_size_and_adds_silence(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    wide = await upload(client, headers, media_dir / "wide.mp4")
    silent = await upload(client, headers, media_dir / "silent.mp4")
    a = await upload(client, headers, media_dir / "a.mp4")
    job = await submit(client, headers, {
        "type": "join", "params": {"inputs": [a, wide, silent]},
        "output": {"preset": "ultrafast", "width": 480, "height": 270}})
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed", done
    probe = ffprobe(await download(client, headers, done["output_files"][0], tmp_path / "o.mp4"))
    assert stream_types(probe) == ["audio", "video"]
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (480, 270)
    assert duration(probe) == pytest.approx(2 + 1 + 1, abs=0.2)
