"""thumbnails, sprites and HLS/DASH packages: one ffmpeg run each, writing a directory;
checked with ffprobe and by reading the playlists, the manifest and the WebVTT index."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.plan import compile_plan
from core.plan.filters import even
from core.plan.multifile import ladder, sprite_vtt
from core.spec import JobSpec, Rendition, SpecError
from tests.plan.conftest import generate

SECONDS = 2.0  # clip2s: 320x240, 25 fps, with audio


def run(library, job, tmp_path: Path, job_type: str, params: dict[str, Any],
        **output: Any) -> tuple[Any, Path]:
    plan = compile_plan(job(job_type, params, **output), library.media)
    assert len(plan.steps) == 1 and plan.steps[0].is_directory_output
    return plan, library.run(plan, tmp_path)[plan.steps[0].step_id]


def members(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


VTT_CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT\n")
    cues = []
    lines = text.splitlines()
    for n, line in enumerate(lines):
        match = VTT_CUE.match(line)
        if match:
            parts = [int(part) for part in match.groups()]
            start = parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1000
            end = parts[4] * 3600 + parts[5] * 60 + parts[6] + parts[7] / 1000
            cues.append((start, end, lines[n + 1]))
    return cues


# --------------------------------------------------------------------------- thumbnails


def test_thumbnails_at_times(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "thumbnails", {
        "input": library["clip2s"], "at": [1.5, 0, 0.5, 1.99], "width": 160})
    step = plan.steps[0]
    assert step.op == "thumbnails" and step.gpu_capable
    assert step.argv.count("-i") == 1  # one run, one decode
    assert members(out) == ["thumb-001.jpg", "thumb-002.jpg", "thumb-003.jpg",
                            "thumb-004.jpg"]
    for name in members(out):
        image = probe(out / name).streams("video")[0]
        assert (image["codec_name"], image["width"], image["height"]) == ("mjpeg", 160, 120)
    assert step.output_entry == "thumb-001.jpg"
    assert step.output_metadata["times"] == [0, 0.5, 1.5, 1.99]  # in time order


def test_thumbnails_are_the_frames_shown_at_their_times(library, job, tmp_path) -> None:
    """Compared with ffmpeg's own frame-exact seek, pixel for pixel (PNG is lossless)."""
    _, out = run(library, job, tmp_path, "thumbnails", {
        "input": library["clip2s"], "at": [0.48, 1.2, 1.97], "width": 80, "format": "png"})
    source = library.paths[library["clip2s"]]
    for name, at in zip(members(out), [0.48, 1.2, 1.96], strict=True):
        reference = tmp_path / f"ref-{at}.png"
        generate(reference, "-ss", str(at), "-i", str(source), "-frames:v", "1",
                 "-vf", "scale=w=80:h=60,setsar=sar=1")
        assert gray(out / name) == gray(reference), (name, at)


def gray(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo",
                           "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout


@pytest.mark.parametrize(("params", "count", "codec"), [
    ({"count": 5, "format": "png"}, 5, "png"),
    ({"every": 0.5, "format": "webp", "width": 100}, 4, "webp"),
])
def test_thumbnails_count_and_every(library, job, probe, tmp_path, params: dict, count: int,
                                    codec: str) -> None:
    _, out = run(library, job, tmp_path, "thumbnails", {"input": library["clip2s"], **params})
    names = members(out)
    assert len(names) == count and names[0].endswith(f".{params['format']}")
    image = probe(out / names[-1]).streams("video")[0]
    width = params.get("width", 320)
    assert (image["codec_name"], image["width"]) == (codec, width)
    assert image["height"] == even(width * 3 / 4)


def test_sprite_sheets_and_index(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "thumbnails", {
        "input": library["clip2s"], "every": 0.5, "width": 64,
        "sprite": {"columns": 3, "rows": 1}})
    step = plan.steps[0]
    assert members(out) == ["sprite-001.jpg", "sprite-002.jpg", "sprite.vtt"]
    assert step.output_entry == "sprite.vtt"
    for name in ("sprite-001.jpg", "sprite-002.jpg"):
        sheet = probe(out / name).streams("video")[0]
        assert (sheet["width"], sheet["height"]) == (3 * 64, 48)
    cues = parse_vtt((out / "sprite.vtt").read_text())
    assert len(cues) == 4
    assert cues[0][0] == 0 and cues[-1][1] == SECONDS  # the whole duration...
    assert all(a[1] == b[0] for a, b in zip(cues, cues[1:], strict=False))  # ...without gaps
    targets = [cue[2] for cue in cues]
    assert targets == ["sprite-001.jpg#xywh=0,0,64,48", "sprite-001.jpg#xywh=64,0,64,48",
                       "sprite-001.jpg#xywh=128,0,64,48", "sprite-002.jpg#xywh=0,0,64,48"]


def test_a_hundred_thumbnails_in_one_run(library, job, probe, tmp_path) -> None:
    """The most a job may ask for: one select expression with a hundred times."""
    clip = generate(tmp_path / "five.mp4", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25", "-t", "5", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    source = library.add(f"five-{tmp_path.name}", clip)
    plan = compile_plan(job("thumbnails", {"input": source, "count": 100, "width": 16,
                                           "sprite": {"columns": 10, "rows": 10}}),
                        library.media)
    out = library.run(plan, tmp_path)[plan.steps[0].step_id]
    assert members(out) == ["sprite-001.jpg", "sprite.vtt"]
    sheet = probe(out / "sprite-001.jpg").streams("video")[0]
    assert (sheet["width"], sheet["height"]) == (160, 120)
    assert len(parse_vtt((out / "sprite.vtt").read_text())) == 100


def test_sprite_vtt_layout() -> None:
    cues = [(n * 10.0, n * 10.0 + 10) for n in range(7)]
    parsed = parse_vtt(sprite_vtt(cues, "s-{:03d}.png", 2, 2, 100, 50))
    assert parsed[4] == (40.0, 50.0, "s-002.png#xywh=0,0,100,50")
    assert parsed[3][2] == "s-001.png#xywh=100,50,100,50"
    assert parse_vtt(sprite_vtt([(3599.5, 3723.25)], "x-{:03d}.jpg", 1, 1, 8, 8))[0][:2] == \
        (3599.5, 3723.25)


@pytest.mark.parametrize(("params", "loc"), [
    ({"at": [0.5, 2.0]}, ("params", "at", 1)),
    ({"at": [0.5, 0.51]}, ("params", "at")),
    ({"every": 0.5, "input_seconds": 60}, ("params", "every")),
    ({"count": 100}, ("params", "count")),  # 2 s at 25 fps has 50 frames
])
def test_thumbnail_times_are_checked(library, job, params: dict, loc: tuple) -> None:
    source = library["clip2s"]
    media = dict(library.media)
    if params.pop("input_seconds", None):
        media[source] = media[source].with_(duration=60.0)
    with pytest.raises(SpecError) as caught:
        compile_plan(job("thumbnails", {"input": source, **params}), media)
    assert caught.value.loc == loc


@pytest.mark.parametrize("params", [
    {}, {"at": [1], "count": 2}, {"every": 0.4}, {"count": 0}, {"count": 101},
    {"at": [1, 1]}, {"at": []}, {"count": 1, "width": 15}, {"count": 1, "width": 3841},
    {"count": 1, "format": "gif"}, {"count": 1, "sprite": {"columns": 21, "rows": 1}},
])
def test_thumbnail_params_are_validated(params: dict) -> None:
    with pytest.raises(ValidationError):
        JobSpec.model_validate({"type": "thumbnails", "params": {
            "input": "00000000-0000-4000-8000-000000000000", **params}})


# --------------------------------------------------------------------------- package


def test_default_ladder_is_capped_at_the_source() -> None:
    assert [(r.height, r.width, r.video_bitrate) for r in ladder(None, 1280, 720)] == [
        (720, 1280, "2800k"), (480, 854, "1400k"), (360, 640, "800k")]
    assert [(r.height, r.video_bitrate) for r in ladder(None, 1920, 1000)] == [
        (1000, "5000k"), (720, "2800k"), (480, "1400k"), (360, "800k")]
    assert [(r.height, r.video_bitrate, r.audio_bitrate) for r in ladder(None, 320, 240)] == [
        (240, "800k", "128k")]


def test_explicit_renditions_collapse_and_default_bitrates() -> None:
    rungs = ladder([Rendition(height=360), Rendition(height=720, video_bitrate="3M"),
                    Rendition(height=360, video_bitrate="1M"), Rendition(height=1080)],
                   640, 480)
    assert [(r.height, r.width, r.video_bitrate) for r in rungs] == [
        (480, 640, "3M"), (360, 480, "800k")]  # the lowest rung above the source, at 480


def test_hls_package(library, job, probe, tmp_path) -> None:
    renditions = [{"height": 240}, {"height": 180, "video_bitrate": "300k"},
                  {"height": 120, "video_bitrate": "150k", "audio_bitrate": "64k"}]
    plan, out = run(library, job, tmp_path, "package", {
        "input": library["clip2s"], "renditions": renditions, "segment_seconds": 2},
        preset="ultrafast")
    step = plan.steps[0]
    assert step.op == "package" and step.output_entry == "master.m3u8"
    assert step.argv.count("-i") == 1 and "split=outputs=3" in " ".join(step.argv)
    assert step.argv.count("libx264") == 1  # one encoder option for every rendition
    # one AAC encode per distinct audio bitrate (128k twice, 64k once), not per rendition
    assert step.argv.count("-c:a") == 1 and "-b:a:1" in step.argv and "-b:a:2" not in step.argv
    names = members(out)
    assert {"master.m3u8", "v0.m3u8", "v1.m3u8", "v2.m3u8", "v0-init.mp4", "a0.m3u8",
            "a1.m3u8", "a0-init.mp4"} <= set(names)
    master = (out / "master.m3u8").read_text()
    variants = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    assert [uri for _, uri in variants] == ["v0.m3u8", "v1.m3u8", "v2.m3u8"]  # no audio-only
    attributes = [dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line)) for line, _ in variants]
    assert [a["RESOLUTION"] for a in attributes] == ["320x240", "240x180", "160x120"]
    assert all(int(a["BANDWIDTH"]) > 0 and a["CODECS"].startswith('"avc1.') and
               "mp4a.40.2" in a["CODECS"] for a in attributes)
    groups = dict(re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=("[^"]+").*URI="([^"]+)"',
                             master))
    assert sorted(groups.values()) == ["a0.m3u8", "a1.m3u8"]
    assert [groups[a["AUDIO"]] for a in attributes] == ["a0.m3u8", "a0.m3u8", "a1.m3u8"]
    for n in range(3):
        result = probe(out / f"v{n}.m3u8")
        assert result.duration == pytest.approx(SECONDS, abs=0.1)
        assert result.layout == ["video"] and result.streams("video")[0]["height"] == \
            (240, 180, 120)[n]
    for name, rate in (("a0.m3u8", 128_000), ("a1.m3u8", 64_000)):
        [audio] = probe(out / name).streams("audio")
        assert int(audio["bit_rate"]) == pytest.approx(rate, rel=0.15)
    whole = probe(out / "master.m3u8")  # a player's view: every rendition and its audio
    assert sorted(s["height"] for s in whole.streams("video")) == [120, 180, 240]
    assert whole.streams("audio")
    assert step.output_metadata["renditions"][2] == {
        "height": 120, "width": 160, "video_bitrate": "150k", "audio_bitrate": "64k"}


def test_hls_package_with_one_fmp4_rendition(library, job, probe, tmp_path) -> None:
    _, out = run(library, job, tmp_path, "package", {
        "input": library["clip2s"], "renditions": [{"height": 120}], "segment_seconds": 2},
        preset="ultrafast")
    # the audio rendition's last segment holds the AAC frames just past 2 s
    assert members(out) == ["a0-00000.m4s", "a0-00001.m4s", "a0-init.mp4", "a0.m3u8",
                            "master.m3u8", "v0-00000.m4s", "v0-init.mp4", "v0.m3u8"]
    assert probe(out / "master.m3u8").duration == pytest.approx(SECONDS, abs=0.1)


def test_hls_package_with_ts_segments(library, job, probe, tmp_path) -> None:
    _, out = run(library, job, tmp_path, "package", {
        "input": library["clip2s"], "renditions": [{"height": 120}], "segment_seconds": 2,
        "hls_segment_type": "ts"}, preset="ultrafast")
    assert members(out) == ["a0-00000.ts", "a0-00001.ts", "a0.m3u8", "master.m3u8",
                            "v0-00000.ts", "v0.m3u8"]
    assert probe(out / "v0.m3u8").duration == pytest.approx(SECONDS, abs=0.1)
    assert sorted(probe(out / "master.m3u8").layout) == ["audio", "video"]


def test_dash_package(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "package", {
        "input": library["clip2s"], "format": "dash",
        "renditions": [{"height": 240}, {"height": 120}], "segment_seconds": 2},
        preset="ultrafast")
    assert plan.steps[0].output_entry == "manifest.mpd"
    ns = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.parse(out / "manifest.mpd").getroot()  # noqa: S314 - our own ffmpeg output
    sets = root.findall(".//mpd:AdaptationSet", ns)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    heights = [r.get("height") for r in sets[0].findall("mpd:Representation", ns)]
    assert heights == ["240", "120"]
    result = probe(out / "manifest.mpd")
    assert result.duration == pytest.approx(SECONDS, abs=0.1)
    assert sorted(s["height"] for s in result.streams("video")) == [120, 240]


def test_package_without_audio(library, job, probe, tmp_path) -> None:
    _, out = run(library, job, tmp_path, "package", {
        "input": library["wide_silent"], "renditions": [{"height": 180}, {"height": 90}],
        "segment_seconds": 2}, preset="ultrafast")
    assert "a:0" not in (out / "master.m3u8").read_text()
    assert probe(out / "v1.m3u8").streams("video")[0]["width"] == 160


# --------------------------------------------------------------------------- in combined


def test_nothing_may_use_a_multi_file_output() -> None:
    source = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate({"type": "combined", "params": {"steps": [
            {"id": "thumbs", "type": "thumbnails", "params": {"input": source, "count": 2}},
            {"id": "text", "type": "text_overlay", "params": {"video": "@thumbs", "text": "x"}},
        ]}})
    assert caught.value.errors()[0]["loc"] == ("params", "steps", 1, "params", "video")
    assert caught.value.errors()[0]["type"] == "ref_kind"


def test_multi_file_steps_are_kept_by_default() -> None:
    source = "00000000-0000-4000-8000-000000000000"
    spec = JobSpec.model_validate({"type": "combined", "params": {"steps": [
        {"id": "cut", "type": "trim", "params": {"input": source, "end": 1}},
        {"id": "hls", "type": "package", "params": {"input": "@cut"}},
        {"id": "thumbs", "type": "thumbnails", "params": {"input": "@cut", "count": 2}},
        {"id": "final", "type": "transcode", "params": {"input": "@cut"}},
    ]}})
    assert spec.output_step_ids() == ["hls", "thumbs", "final"]


def test_trim_text_transcode_is_one_run_and_packages_read_it(library, job, probe,
                                                             tmp_path) -> None:
    spec = job("combined", {
        "steps": [
            {"id": "cut", "type": "trim",
             "params": {"input": library["clip2s"], "start": 0.4, "end": 1.6}},
            {"id": "titled", "type": "text_overlay", "params": {"video": "@cut", "text": "T"}},
            {"id": "final", "type": "transcode", "params": {"input": "@titled"}},
            {"id": "hls", "type": "package",
             "params": {"input": "@final", "renditions": [{"height": 240}, {"height": 120}],
                        "segment_seconds": 2}},
            {"id": "thumbs", "type": "thumbnails",
             "params": {"input": "@final", "every": 0.5, "width": 64,
                        "sprite": {"columns": 2, "rows": 2}}},
        ],
        "outputs": ["final", "hls", "thumbs"]}, container="webm", video_bitrate="200k")
    plan = compile_plan(spec, library.media)
    assert [(s.step_id, s.op) for s in plan.steps] == [
        ("final", "fused:trim+text+transcode"), ("hls", "package"), ("thumbs", "thumbnails")]
    first = plan.steps[0]
    assert first.argv.count("-i") == 1 and first.argv.count("-filter_complex") == 1
    assert [s.ref for s in plan.steps[1].sources] == ["@final"]
    outputs = library.run(plan, tmp_path)
    final = probe(outputs["final"])
    assert [s["codec_name"] for s in final.data["streams"]] == ["vp9", "opus"]
    assert final.duration == pytest.approx(1.2, abs=0.05)
    assert probe(outputs["hls"] / "v1.m3u8").duration == pytest.approx(1.2, abs=0.1)
    assert members(outputs["thumbs"]) == ["sprite-001.jpg", "sprite.vtt"]
    cues = parse_vtt((outputs["thumbs"] / "sprite.vtt").read_text())
    assert len(cues) == 3 and cues[-1][1] == pytest.approx(1.2)
