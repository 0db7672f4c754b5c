"""transcode and trim end to end through the HTTP API: real worker, Temporal and ffmpeg;
every output checked with ffprobe, refusals checked on /jobs/validate and POST /jobs alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

import api.routes.jobs
from core.ffmpeg import available_encoders
from tests.utils.jobs import download, submit, upload, wait_for
from tests.utils.media import duration, ffprobe, make_video

pytestmark = pytest.mark.usefixtures("worker")

FAST = {"preset": "ultrafast"}
FRAME = 1 / 25


async def finished(client: httpx.AsyncClient, headers: dict, spec: dict) -> dict:
    done = await wait_for(client, headers, (await submit(client, headers, spec))["id"])
    assert done["status"] == "completed", done
    assert done["progress"]["percent"] == 100.0
    return done


async def output(client: httpx.AsyncClient, headers: dict, done: dict,
                 tmp_path: Path) -> tuple[dict, dict]:
    """(the output File, its ffprobe)."""
    file_id = done["output_files"][0]
    row = (await client.get(f"/api/v1/files/{file_id}", headers=headers)).json()
    path = await download(client, headers, file_id, tmp_path / row["filename"])
    return row, ffprobe(path)


async def logs(client: httpx.AsyncClient, headers: dict, job_id: str) -> list[dict]:
    rows = (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=headers)).json()
    return [row for row in rows if row["step"] >= 0]


def steps_measured(op: str) -> float:
    """Steps of ``op`` the in-process worker has measured (its step duration histogram)."""
    return REGISTRY.get_sample_value("mediaflow_step_duration_seconds_count",
                                     {"op": op, "pool": "cpu", "decoder": "cpu"}) or 0


def codecs(probe: dict) -> list[str]:
    return [s["codec_name"] for s in probe["streams"]]


def video_packets(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0",
                          str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


async def refused_everywhere(client: httpx.AsyncClient, headers: dict, spec: dict) -> list:
    """The 422 detail, after checking that /jobs/validate and POST /jobs agree."""
    validated = await client.post("/api/v1/jobs/validate", headers=headers, json=spec)
    submitted = await client.post("/api/v1/jobs", headers=headers, json=spec)
    assert validated.status_code == submitted.status_code == 422, (validated.text,
                                                                   submitted.text)
    assert validated.json() == submitted.json()
    return validated.json()["detail"]


# --------------------------------------------------------------------------- transcode


async def test_transcode_to_webm(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                                 tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    measured = steps_measured("transcode")
    done = await finished(client, headers, {
        "type": "transcode", "params": {"input": source},
        "output": {**FAST, "container": "webm", "video_bitrate": "300k"}})
    assert steps_measured("transcode") == measured + 1
    row, probe = await output(client, headers, done, tmp_path)
    assert row["filename"] == "transcode.webm" and row["kind"] == "video"
    assert codecs(probe) == ["vp9", "opus"]
    assert duration(probe) == pytest.approx(2.0, abs=0.1)
    [log] = await logs(client, headers, done["id"])
    assert log["operation_type"] == "transcode" and log["success"]


async def test_transcode_to_mkv_by_copy(client: httpx.AsyncClient, headers: dict,
                                        media_dir: Path, tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    spec = {"type": "transcode", "params": {"input": source}, "output": {"container": "mkv"}}
    [run] = (await client.post("/api/v1/jobs/validate", headers=headers,
                               json=spec)).json()["plan"]
    assert run["pool"] == "cpu"  # nothing to decode
    done = await finished(client, headers, spec)
    row, probe = await output(client, headers, done, tmp_path)
    assert probe["format"]["format_name"].startswith("matroska")
    assert codecs(probe) == ["h264", "aac"]
    # no re-encode: the same packets, rewrapped
    assert video_packets(tmp_path / row["filename"]) == video_packets(media_dir / "a.mp4")
    [log] = await logs(client, headers, done["id"])
    argv = log["argv"]
    assert argv[argv.index("-c:v") + 1] == "copy" and argv[argv.index("-c:a") + 1] == "copy"


async def test_transcode_video_to_mp3(client: httpx.AsyncClient, headers: dict,
                                      media_dir: Path, tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    done = await finished(client, headers, {
        "type": "transcode", "params": {"input": source},
        "output": {"container": "mp3", "audio_bitrate": "96k", "filename": "sound.mp3"}})
    row, probe = await output(client, headers, done, tmp_path)
    assert (row["filename"], row["kind"]) == ("sound.mp3", "audio")
    assert codecs(probe) == ["mp3"]
    assert int(probe["streams"][0]["bit_rate"]) == pytest.approx(96_000, rel=0.1)
    assert duration(probe) == pytest.approx(2.0, abs=0.1)


async def test_transcode_720p_to_width_640(client: httpx.AsyncClient, headers: dict,
                                           tmp_path: Path) -> None:
    clip = make_video(tmp_path / "hd.mp4", seconds=1, size="1280x720")
    source = await upload(client, headers, clip)
    done = await finished(client, headers, {
        "type": "transcode", "params": {"input": source}, "output": {**FAST, "width": 640}})
    _, probe = await output(client, headers, done, tmp_path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (640, 360)
    assert duration(probe) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("output", "loc"), [
    ({"container": "webm", "video_codec": "h264"}, ["body", "output", "video_codec"]),
    ({"container": "mp4", "audio_codec": "vorbis"}, ["body", "output", "audio_codec"]),
    ({"container": "flac", "video_codec": "h264"}, ["body", "output", "video_codec"]),
    ({"video_bitrate": "2.5M"}, ["body", "output", "video_bitrate"]),
    ({"crf": 20, "video_bitrate": "2500k"}, ["body", "output", "video_bitrate"]),
])
async def test_transcode_refused_combinations(client: httpx.AsyncClient, headers: dict,
                                              media_dir: Path, output: dict,
                                              loc: list) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    detail = await refused_everywhere(client, headers, {
        "type": "transcode", "params": {"input": source}, "output": output})
    assert loc in [item["loc"] for item in detail]


async def test_copy_into_a_container_that_cannot_hold_it(client: httpx.AsyncClient,
                                                         headers: dict,
                                                         media_dir: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    detail = await refused_everywhere(client, headers, {
        "type": "transcode", "params": {"input": source, "mode": "copy"},
        "output": {"container": "webm"}})
    assert detail[0]["loc"] == ["body", "output", "container"]


async def test_codec_the_build_lacks(client: httpx.AsyncClient, headers: dict,
                                     media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def without_av1() -> frozenset[str]:
        return available_encoders() - {"libsvtav1"}

    monkeypatch.setattr(api.routes.jobs, "encoders", without_av1)
    source = await upload(client, headers, media_dir / "a.mp4")
    detail = await refused_everywhere(client, headers, {
        "type": "transcode", "params": {"input": source},
        "output": {"container": "mkv", "video_codec": "av1"}})
    assert detail[0]["loc"] == ["body", "output", "video_codec"]
    assert detail[0]["type"] == "encoder_missing"


# --------------------------------------------------------------------------- trim


async def test_trim_accurate(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                             tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    measured = steps_measured("trim")
    done = await finished(client, headers, {
        "type": "trim", "params": {"input": source, "start": 0.36, "end": 1.48},
        "output": FAST})
    assert steps_measured("trim") == measured + 1
    _, probe = await output(client, headers, done, tmp_path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert float(video["duration"]) == pytest.approx(1.12, abs=FRAME)
    assert duration(probe) == pytest.approx(1.12, abs=FRAME)
    [log] = await logs(client, headers, done["id"])
    assert log["operation_type"] == "trim" and "libx264" in log["argv"]


async def test_trim_on_keyframes_by_copy(client: httpx.AsyncClient, headers: dict,
                                         media_dir: Path, tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    done = await finished(client, headers, {
        "type": "trim", "params": {"input": source, "start": 0, "end": 1.2, "accurate": False}})
    row, probe = await output(client, headers, done, tmp_path)
    assert codecs(probe) == ["h264", "aac"]
    assert duration(probe) == pytest.approx(1.2, abs=2 * FRAME)
    [log] = await logs(client, headers, done["id"])
    argv = log["argv"]
    assert argv[argv.index("-c:v") + 1] == "copy" and "libx264" not in argv
    assert log["pool"] == "cpu"
    # no re-encode: the packets kept are the source's first ones, byte for byte
    assert video_packets(tmp_path / row["filename"]) == 30


async def joined(client: httpx.AsyncClient, headers: dict, source: str, segments: list,
                 tmp_path: Path) -> tuple[dict, dict, dict]:
    """(the finished trim job joining ``segments`` frame-exact, its video stream, its audio
    stream), as ffprobe reads its output."""
    done = await finished(client, headers, {
        "type": "trim", "params": {"input": source, "segments": segments}, "output": FAST})
    _, probe = await output(client, headers, done, tmp_path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    return done, video, audio


async def test_trim_three_segments(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                                   tmp_path: Path) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    segments = [{"start": 1.6, "end": 2.0}, {"start": 0.2, "end": 0.6},
                {"start": 1.0, "end": 1.28}]
    _, video, audio = await joined(client, headers, source, segments, tmp_path)
    assert float(video["duration"]) == pytest.approx(1.08, abs=FRAME)
    assert float(audio["duration"]) == pytest.approx(float(video["duration"]), abs=FRAME)


async def test_trim_fifty_segments_and_no_more(client: httpx.AsyncClient, headers: dict,
                                              media_dir: Path, tmp_path: Path) -> None:
    """The most segments a trim takes, joined frame-exact in one run with audio in step;
    one more is refused by /jobs/validate and POST /jobs alike."""
    source = await upload(client, headers, media_dir / "a.mp4")
    segments = [{"start": round(n * 0.04, 2), "end": round(n * 0.04 + 0.04, 2)}
                for n in range(50)]  # 50 frames of 25 fps, the first two seconds in order
    done, video, audio = await joined(client, headers, source, segments, tmp_path)
    assert float(video["duration"]) == pytest.approx(2.0, abs=FRAME)
    assert float(audio["duration"]) == pytest.approx(float(video["duration"]), abs=2 * FRAME)
    [log] = await logs(client, headers, done["id"])
    assert log["argv"].count("-i") == 50  # one run over every range

    more = [*segments, {"start": 0.0, "end": 0.04}]
    detail = await refused_everywhere(client, headers, {
        "type": "trim", "params": {"input": source, "segments": more}})
    assert detail[0]["loc"] == ["body", "params", "segments"]
    assert detail[0]["type"] == "too_long"


@pytest.mark.parametrize(("params", "loc"), [
    ({"start": 2.5, "duration": 1}, ["body", "params", "start"]),
    ({"start": 0.5, "end": 9}, ["body", "params", "end"]),
    ({"segments": [{"start": 0, "end": 1}, {"start": 1, "end": 3}]},
     ["body", "params", "segments", 1, "end"]),
])
async def test_trim_out_of_range(client: httpx.AsyncClient, headers: dict, media_dir: Path,
                                 params: dict, loc: list) -> None:
    source = await upload(client, headers, media_dir / "a.mp4")
    detail = await refused_everywhere(client, headers, {
        "type": "trim", "params": {"input": source, **params}})
    assert detail[0]["loc"] == loc and detail[0]["type"] == "out_of_range"
