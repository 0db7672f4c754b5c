"""thumbnails, sprites and HLS/DASH packages through the HTTP API: one package File each,
its members served one by one (with Range) and as a streamed zip; checked with ffprobe
on the members as downloaded; deleting and purging it removes every member object."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from temporalio.testing import ActivityEnvironment

from activities.purge import PurgeActivities
from core.config import Settings
from core.tables import MediaFile
from tests.jobs.test_control import wait_running
from tests.jobs.test_pipelines import run_counting_ffmpeg
from tests.utils.jobs import download, submit, upload, wait_for
from tests.utils.media import ffprobe
from tests.utils.server import serving
from workflows.types import PurgeInput

pytestmark = pytest.mark.usefixtures("worker")

API = "/api/v1"
FAST = {"preset": "ultrafast"}
SECONDS = 2.0  # media_dir/a.mp4: 320x240, 25 fps, with audio
VTT_CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


async def package_of(client: httpx.AsyncClient, headers: dict, spec: dict) -> tuple[dict, dict]:
    """(the finished job, its one package File)."""
    done = await wait_for(client, headers, (await submit(client, headers, spec))["id"])
    assert done["status"] == "completed", done
    assert done["progress"]["percent"] == 100.0
    [file_id] = done["output_files"]
    row = (await client.get(f"{API}/files/{file_id}", headers=headers)).json()
    assert row["kind"] == "package" and row["source"] == "job_output"
    assert row["content_type"] == "application/zip" and row["filename"].endswith(".zip")
    assert row["size"] == sum(m["size"] for m in row["metadata"]["members"])
    return done, row


async def fetch_members(client: httpx.AsyncClient, headers: dict, row: dict,
                        target: Path) -> Path:
    """Every member through GET /files/{id}/members/{path}, into ``target``."""
    target.mkdir()
    for member in row["metadata"]["members"]:
        response = await client.get(f"{API}/files/{row['id']}/members/{member['path']}",
                                    headers=headers)
        assert response.status_code == 200, response.text
        assert len(response.content) == member["size"]
        (target / member["path"]).write_bytes(response.content)
    return target


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for n, line in enumerate(lines):
        if match := VTT_CUE.match(line):
            h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
            cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000,
                         h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, lines[n + 1]))
    return cues


# --------------------------------------------------------------------------- thumbnails


async def test_thumbnails_at_times(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                                   tmp_path: Path) -> None:
    def runs_measured() -> tuple[float, float]:  # the in-process worker's step metrics
        labels = {"op": "thumbnails", "pool": "cpu"}
        return (REGISTRY.get_sample_value("mediaflow_step_duration_seconds_count",
                                          {**labels, "decoder": "cpu"}) or 0,
                REGISTRY.get_sample_value("mediaflow_ffmpeg_speed_count", labels) or 0)

    measured = runs_measured()
    source = await upload(client, headers, media_dir / "a.mp4")
    done, row = await package_of(client, headers, {
        "type": "thumbnails", "params": {"input": source, "at": [0.2, 1.0, 1.8], "width": 96,
                                         "format": "png"}})
    # a step whose output is a directory is measured like any other
    assert runs_measured() == (measured[0] + 1, measured[1] + 1)
    meta = row["metadata"]
    assert meta["entry"] == "thumb-001.png" and meta["count"] == 3
    assert [m["path"] for m in meta["members"]] == ["thumb-001.png", "thumb-002.png",
                                                    "thumb-003.png"]
    images = await fetch_members(client, headers, row, tmp_path / "thumbs")
    for path in sorted(images.iterdir()):
        stream = ffprobe(path)["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("png", 96, 72)
    [log] = [r for r in (await client.get(f"{API}/jobs/{done['id']}/logs",
                                          headers=headers)).json() if r["step"] >= 0]
    assert log["operation_type"] == "thumbnails" and log["success"]
    assert log["argv"].count("-i") == 1  # one run, one decode


async def test_sprite_sheets_with_webvtt(client: httpx.AsyncClient, headers: dict,
                                         media_dir: Path, tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    _, row = await package_of(client, headers, {
        "type": "thumbnails", "params": {"input": source, "count": 10, "width": 80,
                                         "sprite": {"columns": 4, "rows": 2}}})
    meta = row["metadata"]
    assert meta["entry"] == "sprite.vtt" and meta["sheets"] == 2
    files = await fetch_members(client, headers, row, tmp_path / "sprite")
    assert sorted(p.name for p in files.iterdir()) == ["sprite-001.jpg", "sprite-002.jpg",
                                                       "sprite.vtt"]
    sheets = {}
    for name in ("sprite-001.jpg", "sprite-002.jpg"):
        stream = ffprobe(files / name)["streams"][0]
        sheets[name] = (stream["width"], stream["height"])
        assert sheets[name] == (4 * 80, 2 * 60)
    cues = parse_vtt((files / "sprite.vtt").read_text())
    assert len(cues) == 10
    assert cues[0][0] == 0 and cues[-1][1] == pytest.approx(SECONDS)
    assert all(a[1] == b[0] for a, b in zip(cues, cues[1:], strict=False))
    for _, _, target in cues:  # each cue points inside its sheet
        name, _, fragment = target.partition("#xywh=")
        x, y, w, h = (int(v) for v in fragment.split(","))
        width, height = sheets[name]
        assert (w, h) == (80, 60) and x + w <= width and y + h <= height


# --------------------------------------------------------------------------- packages


async def test_hls_package_with_three_renditions(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path,
    settings: Settings, app: FastAPI,
) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    spec = {"type": "package", "output": FAST, "params": {
        "input": source, "segment_seconds": 2,
        "renditions": [{"height": 240}, {"height": 180}, {"height": 120},
                       {"height": 480}]}}  # above the source: collapses into 240
    [run] = (await client.post(f"{API}/jobs/validate", headers=headers, json=spec)).json()["plan"]
    assert run["op"] == "package" and run["pool"] == "gpu-capable"
    done, row = await package_of(client, headers, spec)
    meta = row["metadata"]
    assert meta["entry"] == "master.m3u8" and meta["format"] == "hls"
    assert [r["height"] for r in meta["renditions"]] == [240, 180, 120]
    files = await fetch_members(client, headers, row, tmp_path / "hls")

    master = (files / "master.m3u8").read_text()
    variants = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    assert [uri for _, uri in variants] == ["v0.m3u8", "v1.m3u8", "v2.m3u8"]
    resolutions = [re.search(r"RESOLUTION=(\d+x\d+)", line).group(1) for line, _ in variants]
    assert resolutions == ["320x240", "240x180", "160x120"]
    assert all("BANDWIDTH=" in line and "CODECS=" in line for line, _ in variants)
    assert all('AUDIO="' in line for line, _ in variants)  # one audio group, shared
    assert re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,.*URI="([^"]+)"', master) == ["a0.m3u8"]
    for n, (width, height) in enumerate([(320, 240), (240, 180), (160, 120)]):
        probe = ffprobe(files / f"v{n}.m3u8")  # every segment of the variant decodes
        [video] = probe["streams"]
        assert (video["width"], video["height"]) == (width, height)
        assert float(probe["format"]["duration"]) == pytest.approx(SECONDS, abs=0.1)
    [audio] = ffprobe(files / "a0.m3u8")["streams"]
    assert audio["codec_type"] == "audio" and audio["channels"] == 2
    assert float(ffprobe(files / "a0.m3u8")["format"]["duration"]) == pytest.approx(SECONDS,
                                                                                  abs=0.1)

    # the zip holds every member, byte for byte
    response = await client.get(f"{API}/files/{row['id']}/download", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "content-length" not in response.headers  # streamed as it is written
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == [m["path"] for m in meta["members"]]
        for name in names:
            assert archive.read(name) == (files / name).read_bytes()

    # a member with Range; paths outside the package are 404
    first = meta["members"][-1]
    ranged = await client.get(f"{API}/files/{row['id']}/members/{first['path']}",
                              headers={**headers, "Range": "bytes=2-9"})
    assert ranged.status_code == 206 and len(ranged.content) == 8
    assert ranged.headers["content-range"] == f"bytes 2-9/{first['size']}"
    for path in ["nope.m3u8", "_index.json", "%2e%2e/%2e%2e/files", "..%2Fmaster.m3u8",
                 "%5Cmaster.m3u8", "master.m3u8%00"]:
        missing = await client.get(f"{API}/files/{row['id']}/members/{path}", headers=headers)
        assert missing.status_code == 404, path

    # delete + purge removes every member object
    stored = await MediaFile.select(MediaFile.storage_key).where(
        MediaFile.id == uuid.UUID(row["id"])).first()
    directory = settings.local_storage_root / stored["storage_key"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [m["path"] for m in meta["members"]] + ["_index.json"])
    assert (await client.delete(f"{API}/files/{row['id']}", headers=headers)).status_code == 204
    purge = PurgeActivities(app.state.storage).purge_deleted_files
    await ActivityEnvironment().run(purge, PurgeInput(retention_seconds=0))
    assert not directory.exists()


async def test_shared_package_plays_over_http(client: httpx.AsyncClient, headers: dict,
                                              media_dir: Path, app: FastAPI) -> None:
    """ffprobe as a stock HTTP client, without credentials: the share link's master
    playlist, every variant through the relative URLs inside it, every frame decoded."""
    source = await upload(client, headers, media_dir / "a.mp4")
    _, row = await package_of(client, headers, {
        "type": "package", "output": FAST, "params": {
            "input": source, "segment_seconds": 2, "hls_segment_type": "ts",
            "renditions": [{"height": 240}, {"height": 180}, {"height": 120}]}})
    async with serving(app) as server:
        app.state.settings.public_url = server  # links name the real server
        try:
            created = await client.post(f"{API}/files/{row['id']}/share", headers=headers)
        finally:
            app.state.settings.public_url = None
        url = created.json()["url"]
        assert url.startswith(f"{server}/s/") and url.endswith("/master.m3u8")
        result = await asyncio.to_thread(
            subprocess.run,
            ["ffprobe", "-v", "error", "-count_frames", "-print_format", "json",
             "-show_entries", "stream=codec_type,width,height,nb_read_frames:format=duration",
             url], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        probe = json.loads(result.stdout)
        videos = [s for s in probe["streams"] if s["codec_type"] == "video"]
        assert sorted((s["width"], s["height"]) for s in videos) == [
            (160, 120), (240, 180), (320, 240)]
        assert all(int(s["nb_read_frames"]) == 50 for s in videos)  # 2 s at 25 fps, each
        audios = [s for s in probe["streams"] if s["codec_type"] == "audio"]
        assert audios and all(int(s["nb_read_frames"]) > 90 for s in audios)  # ~2 s of AAC
        assert float(probe["format"]["duration"]) == pytest.approx(SECONDS, abs=0.1)
        token = url.split("/")[4]
        tampered = url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
        refused = await asyncio.to_thread(
            subprocess.run, ["ffprobe", "-v", "error", tampered], capture_output=True,
            text=True, timeout=30, check=False)
        assert refused.returncode != 0 and "403" in refused.stderr


async def test_dash_package(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                            tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    _, row = await package_of(client, headers, {
        "type": "package", "output": {**FAST, "filename": "stream"},
        "params": {"input": source, "format": "dash", "segment_seconds": 2,
                   "renditions": [{"height": 240}, {"height": 120}]}})
    assert row["filename"] == "stream.zip" and row["metadata"]["entry"] == "manifest.mpd"
    response = await client.get(f"{API}/files/{row['id']}/download", headers=headers)
    files = tmp_path / "dash"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == sorted(m["path"] for m in
                                                    row["metadata"]["members"])
        archive.extractall(files)
    ns = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.parse(files / "manifest.mpd").getroot()  # noqa: S314 - our own output
    sets = root.findall(".//mpd:AdaptationSet", ns)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    probe = ffprobe(files / "manifest.mpd")
    heights = sorted(s["height"] for s in probe["streams"] if s["codec_type"] == "video")
    assert heights == [120, 240]
    assert float(probe["format"]["duration"]) == pytest.approx(SECONDS, abs=0.1)


async def test_package_inputs_and_outputs_are_checked(client: httpx.AsyncClient,
                                                      headers: dict, media_dir: Path) -> None:
    audio = await upload(client, headers, media_dir / "tone.wav")
    refused = await client.post(f"{API}/jobs/validate", headers=headers, json={
        "type": "package", "params": {"input": audio}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "params", "input"]
    video = await upload(client, headers, media_dir / "a.mp4")
    refused = await client.post(f"{API}/jobs", headers=headers, json={
        "type": "combined", "params": {"steps": [
            {"id": "hls", "type": "package", "params": {"input": video}},
            {"id": "again", "type": "transcode", "params": {"input": "@hls"}}]}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "params", "steps", 1, "params",
                                                  "input"]


async def test_combined_trim_text_transcode_then_package_and_sprite(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path,
) -> None:
    """trim → text_overlay → transcode fuse into one ffmpeg run; the package and the
    sprite each read its result in one more run."""
    source = await upload(client, headers, media_dir / "a.mp4")
    spec = {"type": "combined", "output": {**FAST, "filename": "clip.mp4"}, "params": {
        "steps": [
            {"id": "cut", "type": "trim", "params": {"input": source, "start": 0.4, "end": 1.6}},
            {"id": "titled", "type": "text_overlay",
             "params": {"video": "@cut", "text": "Catalogue", "font_size": 20}},
            {"id": "final", "type": "transcode", "params": {"input": "@titled"}},
            {"id": "hls", "type": "package", "params": {
                "input": "@final", "segment_seconds": 2,
                "renditions": [{"height": 240}, {"height": 120}]}},
            {"id": "sprite", "type": "thumbnails", "params": {
                "input": "@final", "count": 4, "width": 64, "sprite": {"columns": 2,
                                                                        "rows": 2}}},
        ],
        "outputs": ["final", "hls", "sprite"]}}
    plan = (await client.post(f"{API}/jobs/validate", headers=headers, json=spec)).json()
    assert [(run["step"], run["op"]) for run in plan["plan"]] == [
        ("final", "fused:trim+text+transcode"), ("hls", "package"), ("sprite", "thumbnails")]

    done, counter = await run_counting_ffmpeg(client, headers, spec)
    assert done["status"] == "completed", done
    assert len(counter.pids) == 3, counter.argvs
    logs = [r for r in (await client.get(f"{API}/jobs/{done['id']}/logs",
                                         headers=headers)).json() if r["step"] >= 0]
    assert [(r["operation_type"], r["success"]) for r in logs] == [
        ("fused:trim+text+transcode", True), ("package", True), ("thumbnails", True)]
    assert done["progress"]["steps_done"] == done["progress"]["steps_total"] == 3

    files = [(await client.get(f"{API}/files/{fid}", headers=headers)).json()
             for fid in done["output_files"]]
    assert [(f["kind"], f["filename"]) for f in files] == [
        ("video", "clip-final.mp4"), ("package", "clip-hls.zip"),
        ("package", "clip-sprite.zip")]
    video = ffprobe(await download(client, headers, files[0]["id"], tmp_path / "clip.mp4"))
    assert float(video["format"]["duration"]) == pytest.approx(1.2, abs=0.05)
    assert files[1]["metadata"]["duration"] == pytest.approx(1.2, abs=0.05)
    assert files[2]["metadata"]["sheets"] == 1


async def test_cancel_after_a_package_discards_every_member(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings,
) -> None:
    """The package is stored when the next step is cancelled: all its members go."""
    short = await upload(client, headers, media_dir / "a.mp4")
    long = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {
        "type": "combined", "output": {"preset": "veryslow", "crf": 18}, "params": {
            "outputs": ["hls", "slow"], "steps": [
                {"id": "hls", "type": "package", "params": {
                    "input": short, "segment_seconds": 2, "renditions": [{"height": 120}]}},
                {"id": "slow", "type": "text_overlay", "params": {"video": long, "text": "x"}},
            ]}})
    for _ in range(300):
        running = (await client.get(f"{API}/jobs/{job['id']}", headers=headers)).json()
        if running["progress"]["steps_done"] == 1:
            break
        await asyncio.sleep(0.1)
    assert running["status"] == "processing", running
    package = settings.local_storage_root / "jobs" / job["id"] / "steps" / "00-hls" / "package"
    assert (package / "master.m3u8").exists()
    assert (await client.post(f"{API}/jobs/{job['id']}/cancel",
                              headers=headers)).status_code == 202
    done = await wait_for(client, headers, job["id"], timeout=30)
    assert done["status"] == "cancelled" and done["output_files"] == []
    assert not package.exists()
    assert not await MediaFile.exists().where(MediaFile.job == job["id"])


async def test_a_package_shows_progress_and_a_cancel_while_it_encodes_leaves_nothing(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings,
) -> None:
    """A package step reports its progress like any other, and a cancel in the middle of
    its ffmpeg run stops it: no member, no File, no scratch left."""
    long = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {
        "type": "package", "output": {"preset": "veryslow", "crf": 18}, "params": {
            "input": long, "segment_seconds": 2, "renditions": [{"height": 240},
                                                                {"height": 120}]}})
    running = await wait_running(client, headers, job["id"], min_percent=5.0)
    assert 5.0 <= running["progress"]["percent"] < 100.0
    assert running["progress"]["step"] is not None
    assert (await client.post(f"{API}/jobs/{job['id']}/cancel",
                              headers=headers)).status_code == 202
    done = await wait_for(client, headers, job["id"], timeout=30)
    assert done["status"] == "cancelled" and done["output_files"] == []
    steps = settings.local_storage_root / "jobs" / job["id"]
    assert not steps.exists() or not any(p.is_file() for p in steps.rglob("*"))
    assert not await MediaFile.exists().where(MediaFile.job == job["id"])
    assert not (settings.scratch_root / job["id"]).exists()
