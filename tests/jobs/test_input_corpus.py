"""What people really upload (docs/API.md "Files", "Accepted formats"), end to end.

Every sample of ``tests.utils.corpus`` goes through ``POST /files`` and must come back with
its kind, format, codecs, displayed size, duration (within 0.1 s) and a sane fps; then a job
of its kind — ``text_overlay`` for video, ``audio_overlay`` for audio, ``video_overlay``
with it as the overlay for images — must complete, checked with ffprobe. The jobs are
submitted together and run on one module-scoped worker.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core.files import load_inputs, media_of
from core.plan import compile_plan
from core.spec import JobSpec
from tests.utils.corpus import CORPUS, Sample, make_corpus
from tests.utils.jobs import download, submit, wait_for
from tests.utils.media import FFMPEG, duration, ffprobe, make_video, stream_types
from tests.utils.users import new_user_headers

API = "/api/v1"
OUTPUT = {"preset": "ultrafast"}
ACTIVE_JOBS = 6  # below the per-user limit on active jobs


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
async def auth(http: httpx.AsyncClient) -> dict[str, str]:
    return await new_user_headers(http)


async def post(http: httpx.AsyncClient, auth: dict[str, str], path: Path) -> httpx.Response:
    with path.open("rb") as f:
        return await http.post(f"{API}/files", headers=auth,
                               files={"file": (path.name, f, "application/octet-stream")})


async def post_ok(http: httpx.AsyncClient, auth: dict[str, str], path: Path) -> str:
    response = await post(http, auth, path)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
async def uploaded(http: httpx.AsyncClient, auth: dict[str, str],
                   folder: Path) -> dict[str, httpx.Response]:
    paths = make_corpus(folder)
    return {name: await post(http, auth, path) for name, path in paths.items()}


@pytest.fixture(scope="module")
async def base(http: httpx.AsyncClient, auth: dict[str, str], folder: Path) -> str:
    """The 1 s 320x240 video the audio and image samples are laid over."""
    return await post_ok(http, auth, make_video(folder / "base.mp4", seconds=1))


def job_for(sample: Sample, file_id: str, base: str) -> dict[str, Any]:
    if sample.kind == "video":
        params: dict[str, Any] = {"video": file_id, "text": "Hello", "position": "top-left"}
        return {"type": "text_overlay", "params": params, "output": OUTPUT}
    if sample.kind == "audio":
        return {"type": "audio_overlay", "params": {"video": base, "audio": file_id},
                "output": OUTPUT}
    return {"type": "video_overlay", "params": {"video": base, "overlay": file_id},
            "output": OUTPUT}


@pytest.fixture(scope="module")
async def finished(worker: None, http: httpx.AsyncClient, auth: dict[str, str],
                   uploaded: dict[str, httpx.Response], base: str,
                   folder: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """name → (the finished job, ffprobe of its output), run side by side (within the
    per-user limit on active jobs)."""
    slots = asyncio.Semaphore(ACTIVE_JOBS)
    results: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}

    async def one(sample: Sample) -> None:
        response = uploaded[sample.name]
        if response.status_code != 201:
            return
        async with slots:
            job = await submit(http, auth, job_for(sample, response.json()["id"], base))
            job = await wait_for(http, auth, job["id"], timeout=240)
        probe = None
        if job["status"] == "completed":
            out = await download(http, auth, job["output_files"][0],
                                 folder / f"out-{sample.name}")
            probe = ffprobe(out)
        results[sample.name] = (job, probe)

    await asyncio.gather(*(one(sample) for sample in CORPUS))
    return results


def video_stream(probe: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in probe["streams"] if s["codec_type"] == "video")


def turned(stream: dict[str, Any]) -> int:
    """The display rotation ffprobe reports for a stream (0 when upright)."""
    return next((int(side["rotation"]) for side in stream.get("side_data_list", [])
                 if "rotation" in side), 0)


@pytest.mark.parametrize("sample", CORPUS, ids=[sample.name for sample in CORPUS])
async def test_upload_is_accepted_as_its_kind(uploaded: dict[str, httpx.Response],
                                              sample: Sample) -> None:
    response = uploaded[sample.name]
    assert response.status_code == 201, response.text
    body = response.json()
    meta = body["metadata"]
    assert (body["kind"], meta["format"]) == (sample.kind, sample.format)
    assert (meta["video_codec"], meta["audio_codec"]) == (sample.video_codec, sample.audio_codec)
    if sample.duration is None:
        assert meta["duration"] is None
    else:
        assert meta["duration"] == pytest.approx(sample.duration, abs=0.1)
    if sample.fps is None:
        assert meta["fps"] is None
    else:
        assert meta["fps"] == pytest.approx(sample.fps, abs=1)
    size = (meta["width"], meta["height"]) if meta["width"] else None
    assert size == sample.size
    assert (meta["duration_source"], meta["vfr"], meta["rotation"]) == (
        sample.duration_source, sample.vfr, sample.rotation)


@pytest.mark.parametrize("sample", CORPUS, ids=[sample.name for sample in CORPUS])
async def test_a_job_of_its_kind_completes(
    finished: dict[str, tuple[dict[str, Any], dict[str, Any] | None]],
    uploaded: dict[str, httpx.Response], sample: Sample,
) -> None:
    job, probe = finished[sample.name]
    assert job["status"] == "completed", job
    assert probe is not None
    picture = video_stream(probe)
    assert turned(picture) == 0  # every encoded output is upright as stored
    if sample.kind == "video":
        # the text was drawn on the upright picture: the output has the displayed size
        assert (picture["width"], picture["height"]) == sample.size
        expected = uploaded[sample.name].json()["metadata"]["duration"]
        assert duration(probe) == pytest.approx(expected, abs=0.15)
        assert ("audio" in stream_types(probe)) == (sample.audio_codec is not None)
    else:
        assert (picture["width"], picture["height"]) == (320, 240)  # the base video
        assert duration(probe) == pytest.approx(1.0, abs=0.1)
        assert stream_types(probe) == ["audio", "video"]


# --- the new inputs in the jobs that use them ------------------------------------------


def file_id(uploaded: dict[str, httpx.Response], name: str) -> str:
    response = uploaded[name]
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def run(http: httpx.AsyncClient, auth: dict[str, str], spec: dict[str, Any],
              target: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    job = await submit(http, auth, spec)
    done = await wait_for(http, auth, job["id"], timeout=120)
    assert done["status"] == "completed", done
    return done, ffprobe(await download(http, auth, done["output_files"][0], target))


@pytest.mark.usefixtures("worker")
async def test_an_animated_gif_overlay_loops_for_the_whole_video(
    http: httpx.AsyncClient, auth: dict[str, str], uploaded: dict[str, httpx.Response],
    folder: Path, tmp_path: Path,
) -> None:
    longer = await post_ok(http, auth, make_video(folder / "two.mp4", seconds=2))
    _, probe = await run(http, auth, {
        "type": "video_overlay", "output": OUTPUT,
        "params": {"video": longer, "overlay": file_id(uploaded, "animated.gif"),
                   "loop": True, "scale": 0.5}}, tmp_path / "o.mp4")
    assert duration(probe) == pytest.approx(2.0, abs=0.1)  # the 1 s GIF looped, not cut
    assert (video_stream(probe)["width"], video_stream(probe)["height"]) == (320, 240)


@pytest.mark.usefixtures("worker")
async def test_join_normalises_an_animated_gif_and_a_program_stream(
    http: httpx.AsyncClient, auth: dict[str, str], uploaded: dict[str, httpx.Response],
    base: str, tmp_path: Path,
) -> None:
    inputs = [base, file_id(uploaded, "animated.gif"), file_id(uploaded, "camcorder.mpg"),
              file_id(uploaded, "windows.wmv")]
    expected = sum(uploaded[name].json()["metadata"]["duration"]
                   for name in ("animated.gif", "camcorder.mpg", "windows.wmv")) + 1.0
    _, probe = await run(http, auth, {"type": "join", "params": {"inputs": inputs},
                                      "output": OUTPUT}, tmp_path / "o.mp4")
    assert stream_types(probe) == ["audio", "video"]  # the GIF's stretch got silence
    assert duration(probe) == pytest.approx(expected, abs=0.25)


@pytest.mark.usefixtures("worker")
async def test_a_turned_video_copied_into_mp4_keeps_its_rotation(
    http: httpx.AsyncClient, auth: dict[str, str], uploaded: dict[str, httpx.Response],
    tmp_path: Path,
) -> None:
    """audio_overlay leaves the picture alone: it is stream-copied with its display matrix,
    so it still shows upright, and the output File reports the displayed size."""
    tone = file_id(uploaded, "lossless.flac")
    done, probe = await run(http, auth, {
        "type": "audio_overlay", "output": OUTPUT,
        "params": {"video": file_id(uploaded, "phone.mp4"), "audio": tone}},
        tmp_path / "o.mp4")
    picture = video_stream(probe)
    assert (picture["width"], picture["height"], abs(turned(picture))) == (320, 240, 90)
    row = (await http.get(f"{API}/files/{done['output_files'][0]}", headers=auth)).json()
    assert (row["metadata"]["width"], row["metadata"]["height"]) == (240, 320)
    assert row["metadata"]["rotation"] == 90


@pytest.mark.usefixtures("worker")
async def test_a_turned_video_into_matroska_is_encoded_upright(
    http: httpx.AsyncClient, auth: dict[str, str], uploaded: dict[str, httpx.Response],
    tmp_path: Path,
) -> None:
    """Matroska keeps no display matrix here, so the picture is decoded (turned upright by
    FFmpeg) and encoded instead of copied."""
    tone = file_id(uploaded, "lossless.flac")
    _, probe = await run(http, auth, {
        "type": "audio_overlay", "output": {**OUTPUT, "container": "mkv"},
        "params": {"video": file_id(uploaded, "phone.mp4"), "audio": tone}},
        tmp_path / "o.mkv")
    picture = video_stream(probe)
    assert (picture["width"], picture["height"], turned(picture)) == (240, 320, 0)


@pytest.mark.usefixtures("worker")
async def test_an_odd_sized_gif_is_cropped_to_an_even_size(
    http: httpx.AsyncClient, auth: dict[str, str], folder: Path, tmp_path: Path,
) -> None:
    """GIFs are often odd-sized; yuv420p encoders need even sizes."""
    gif = folder / "odd.gif"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=size=161x121:rate=10", "-t", "1",
                    str(gif)], check=True)
    odd = await post_ok(http, auth, gif)
    _, probe = await run(http, auth, {"type": "text_overlay", "output": OUTPUT,
                                      "params": {"video": odd, "text": "odd"}},
                         tmp_path / "o.mp4")
    assert (video_stream(probe)["width"], video_stream(probe)["height"]) == (160, 120)
    assert duration(probe) == pytest.approx(1.0, abs=0.15)


async def test_a_measured_duration_reaches_the_compiler(
    http: httpx.AsyncClient, auth: dict[str, str], uploaded: dict[str, httpx.Response],
) -> None:
    """What the gate measured is stored with the probe, so the plan (progress, ETA and the
    step timeout) knows how long a recording without a header duration runs."""
    recording = file_id(uploaded, "recorder.webm")
    me = (await http.get(f"{API}/auth/me", headers=auth)).json()
    media = media_of(await load_inputs(me["id"], [recording]))
    assert media[recording].duration == pytest.approx(1.0, abs=0.1)
    spec = JobSpec.model_validate({"type": "text_overlay", "output": OUTPUT,
                                   "params": {"video": recording, "text": "x"}})
    (step,) = compile_plan(spec, media).steps
    assert step.expected_seconds == pytest.approx(1.0, abs=0.1)
