"""Compiled plans run by the real ffmpeg on tiny generated clips; results checked by ffprobe
and, where placement matters, by looking at decoded pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.plan import compile_plan

HOSTILE_TEXTS = [
    "a':textfile=/etc/passwd", "x',drawtext=text=OWNED", "a'b;c", "[0:v]", "%{pts}",
    "%{eif:1:d}", "back\\slash\\\\ and \\'", "line one\nline two\n\nfour", "🎬" * 1000,
]
WIDTH, HEIGHT, MARGIN = 320, 240, 24


def run_job(library, job, tmp_path: Path, job_type: str, params: dict[str, Any],
            **output: Any) -> tuple[Any, Path]:
    plan = compile_plan(job(job_type, params, **output), library.media)
    outputs = library.run(plan, tmp_path)
    return plan, outputs[plan.steps[-1].step_id]


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_is_drawn_literally(library, job, probe, tmp_path, text: str) -> None:
    plan, out = run_job(library, job, tmp_path, "text_overlay",
                        {"video": library["clip1s"], "text": text, "font_size": 16})
    assert all(text not in arg for arg in plan.steps[0].argv)
    result = probe(out)
    assert result.layout == ["video", "audio"]
    assert result.duration == pytest.approx(1.0, abs=0.1)


def test_expansion_is_off(library, job, tmp_path, frame_box) -> None:
    """``%{pts}`` expanded would differ from frame to frame; drawn literally it cannot."""
    _, out = run_job(library, job, tmp_path, "text_overlay",
                     {"video": library["black"], "text": "%{pts} %{frame_num}"})
    assert frame_box(out, 0.2) == frame_box(out, 1.6) is not None


def expected_anchor(position: str) -> tuple[str, str]:
    horizontal = "left" if "left" in position else "right" if "right" in position else "center"
    vertical = "top" if "top" in position else "bottom" if "bottom" in position else "middle"
    return horizontal, vertical


@pytest.mark.parametrize("position", [
    "top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom",
    "bottom-right",
])
def test_text_positions(library, job, tmp_path, frame_box, position: str) -> None:
    _, out = run_job(library, job, tmp_path, "text_overlay", {
        "video": library["black"], "text": "MMMM", "position": position, "font_size": 24})
    x0, y0, x1, y1 = frame_box(out, 0.5)
    horizontal, vertical = expected_anchor(position)
    if horizontal == "left":
        assert x0 == pytest.approx(MARGIN, abs=4)
    elif horizontal == "right":
        assert x1 == pytest.approx(WIDTH - MARGIN, abs=4)
    else:
        assert (x0 + x1) / 2 == pytest.approx(WIDTH / 2, abs=4)
    if vertical == "top":
        assert y0 == pytest.approx(MARGIN, abs=8)
    elif vertical == "bottom":
        assert y1 == pytest.approx(HEIGHT - MARGIN, abs=10)
    else:
        assert (y0 + y1) / 2 == pytest.approx(HEIGHT / 2, abs=6)


def test_text_xy_and_time_window(library, job, tmp_path, frame_box) -> None:
    _, out = run_job(library, job, tmp_path, "text_overlay", {
        "video": library["black"], "text": "MMMM", "x": 50, "y": 60, "font_size": 24,
        "start": 0.5, "end": 1.0, "box": True, "box_color": "#FFFFFF40"})
    assert frame_box(out, 0.2) is None and frame_box(out, 1.4) is None
    x0, y0, _, _ = frame_box(out, 0.7)
    assert x0 == pytest.approx(50, abs=3) and y0 == pytest.approx(60, abs=8)


# --------------------------------------------------------------------------- join


def test_join_copy(library, job, probe, tmp_path) -> None:
    plan, out = run_job(library, job, tmp_path, "join",
                        {"inputs": [library["clip2s"], library["clip1s"]], "mode": "copy"})
    assert plan.steps[0].gpu_capable is False
    result = probe(out)
    assert result.duration == pytest.approx(3.0, abs=0.1)
    assert [s["codec_name"] for s in result.data["streams"]] == ["h264", "aac"]
    assert result.streams("audio")[0]["sample_rate"] == "44100"  # untouched, so copied


def test_join_reencode_mixed_sizes_and_missing_audio(library, job, probe, tmp_path,
                                                     frame_box) -> None:
    _, out = run_job(library, job, tmp_path, "join",
                     {"inputs": [library["clip2s"], library["wide_silent"]]})
    result = probe(out)
    assert result.layout == ["video", "audio"]
    video = result.streams("video")[0]
    assert (video["width"], video["height"], video["r_frame_rate"]) == (320, 240, "25/1")
    assert result.duration == pytest.approx(3.0, abs=0.1)
    assert float(result.streams("audio")[0]["duration"]) == pytest.approx(3.0, abs=0.1)
    # the 16:9 clip is letterboxed: black bars above and below
    assert frame_box(out, 2.5, threshold=30)[1] >= 25


def test_join_to_requested_size_and_audio_only(library, job, probe, tmp_path) -> None:
    _, out = run_job(library, job, tmp_path / "a", "join",
                     {"inputs": [library["wide_silent"], library["clip1s"]], "mode": "reencode"},
                     width=160, fps=10)
    video = probe(out).streams("video")[0]
    assert (video["width"], video["height"], video["r_frame_rate"]) == (160, 90, "10/1")
    _, out = run_job(library, job, tmp_path / "b", "join",
                     {"inputs": [library["clip2s"], library["clip1s"]]}, container="m4a")
    result = probe(out)
    assert result.layout == ["audio"] and result.duration == pytest.approx(3.0, abs=0.1)


# --------------------------------------------------------------------------- audio


@pytest.mark.parametrize(("mode", "video", "extra"), [
    ("mix", "clip2s", {"offset": 0.5, "fade_in": 0.2, "fade_out": 0.2, "audio_volume": 0.8}),
    ("mix", "clip2s", {"loop": True, "video_volume": 0.5}),
    ("replace", "clip2s", {}),
    ("replace", "wide_silent", {"loop": True}),
    ("mix", "wide_silent", {"offset": 0.3}),
])
def test_audio_overlay(library, job, probe, tmp_path, mode: str, video: str,
                       extra: dict) -> None:
    plan, out = run_job(library, job, tmp_path, "audio_overlay", {
        "video": library[video], "audio": library["tone"], "mode": mode, **extra})
    expected = library.media[library[video]].duration
    result = probe(out)
    assert result.layout == ["video", "audio"]
    assert result.duration == pytest.approx(expected, abs=0.1)
    audio = result.streams("audio")[0]
    assert float(audio["duration"]) == pytest.approx(expected, abs=0.1)
    assert (audio["sample_rate"], audio["channels"]) == ("48000", 2)
    # the picture is untouched, so it is stream-copied
    assert plan.steps[0].argv[plan.steps[0].argv.index("-c:v") + 1] == "copy"


# --------------------------------------------------------------------------- subtitles


def test_subtitles_burn_in_a_hostile_directory(library, job, tmp_path, frame_box) -> None:
    workdir = tmp_path / "we:ird'[dir],;\\ x"
    plan = compile_plan(job("subtitles", {"video": library["black"],
                                          "subtitles": library["subs"], "font_size": 24,
                                          "font": "DejaVu Sans Bold"}), library.media)
    out = library.run(plan, workdir)["subtitles"]
    box = frame_box(out, 0.5)
    assert box is not None and box[1] > HEIGHT / 2  # drawn, near the bottom
    assert box[3] - box[1] == pytest.approx(20, abs=8)  # about 24 px type
    assert frame_box(out, 1.7) is None  # after the last cue


@pytest.mark.parametrize(("container", "codec"), [("mp4", "mov_text"), ("mkv", "subrip"),
                                                  ("mov", "mov_text"), ("webm", "webvtt")])
def test_subtitles_embed(library, job, probe, tmp_path, container: str, codec: str) -> None:
    plan, out = run_job(library, job, tmp_path, "subtitles", {
        "video": library["clip1s"], "subtitles": library["subs"], "mode": "embed",
        "language": "eng"}, container=container)
    result = probe(out)
    assert result.layout == ["video", "audio", "subtitle"]
    subtitle = result.streams("subtitle")[0]
    assert subtitle["codec_name"] == codec and subtitle["tags"]["language"] == "eng"
    if container != "webm":
        assert plan.steps[0].gpu_capable is False  # nothing decoded: all streams copied
    # the last cue ends at 1.4 s: the track is cut at the end of the 1 s clip
    assert result.duration == pytest.approx(1.0, abs=0.1)


# --------------------------------------------------------------------------- video overlay


@pytest.mark.parametrize("opacity", [1.0, 0.5])
def test_image_overlay(library, job, probe, tmp_path, frame_box, opacity: float) -> None:
    _, out = run_job(library, job, tmp_path, "video_overlay", {
        "video": library["black"], "overlay": library["logo"], "opacity": opacity})
    assert probe(out).duration == pytest.approx(2.0, abs=0.1)
    # red (gray ≈ 76) logo, 0.25 × 320 = 80 px wide, 60 high, bottom-right with 24 px margin
    threshold = 60 if opacity == 1 else 20
    box = frame_box(out, 1.8, threshold=threshold)
    assert box == pytest.approx((WIDTH - MARGIN - 80, HEIGHT - MARGIN - 60,
                                 WIDTH - MARGIN - 1, HEIGHT - MARGIN - 1), abs=2)
    if opacity < 1:
        assert frame_box(out, 1.8, threshold=60) is None  # half as bright


@pytest.mark.parametrize("loop", [False, True])
def test_video_overlay(library, job, probe, tmp_path, frame_box, loop: bool) -> None:
    _, out = run_job(library, job, tmp_path, "video_overlay", {
        "video": library["black"], "overlay": library["small_clip"], "position": "top-left",
        "scale": 0.5, "start": 0.2, "loop": loop})
    result = probe(out)
    assert result.layout == ["video", "audio"]
    assert result.duration == pytest.approx(2.0, abs=0.1)
    assert frame_box(out, 0.1, threshold=40) is None  # not started
    assert frame_box(out, 0.5, threshold=40) == pytest.approx((24, 24, 183, 143), abs=2)
    late = frame_box(out, 1.5, threshold=40)  # the 0.6 s clip ended at 0.8 s unless looped
    assert (late is not None) == loop


# --------------------------------------------------------------------------- combined


def pipeline(library, execution: str) -> dict[str, Any]:
    return {"steps": [
        {"id": "joined", "type": "join",
         "params": {"inputs": [library["clip2s"], library["wide_silent"]]}},
        {"id": "titled", "type": "text_overlay",
         "params": {"video": "@joined", "text": "a'b;c %{pts}", "position": "top"}},
        {"id": "scored", "type": "audio_overlay",
         "params": {"video": "@titled", "audio": library["tone"], "loop": False}},
        {"id": "subbed", "type": "subtitles",
         "params": {"video": "@scored", "subtitles": library["subs"]}},
    ], "execution": execution}


@pytest.mark.parametrize(("execution", "runs"), [("fused", 1), ("stepwise", 4)])
def test_combined_pipeline(library, job, probe, tmp_path, execution: str, runs: int) -> None:
    plan = compile_plan(job("combined", pipeline(library, execution)), library.media)
    assert len(plan.steps) == runs
    result = probe(library.run(plan, tmp_path)["subbed"])
    assert result.layout == ["video", "audio"]
    assert result.duration == pytest.approx(3.0, abs=0.15)
    video = result.streams("video")[0]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)


def test_combined_keeps_intermediate_and_embeds(library, job, probe, tmp_path) -> None:
    spec = job("combined", {"steps": [
        {"id": "subbed", "type": "subtitles", "params": {
            "video": library["clip2s"], "subtitles": library["subs"], "mode": "embed",
            "language": "fra"}},
        {"id": "titled", "type": "text_overlay", "params": {"video": "@subbed", "text": "x"}},
        {"id": "framed", "type": "video_overlay",
         "params": {"video": "@titled", "overlay": "@subbed", "scale": 0.3}},
    ], "outputs": ["titled", "framed"]}, container="mkv")
    plan = compile_plan(spec, library.media)
    assert [step.step_id for step in plan.steps] == ["subbed", "titled", "framed"]
    outputs = library.run(plan, tmp_path)
    for step_id in ("titled", "framed"):
        result = probe(outputs[step_id])
        assert result.layout == ["video", "audio", "subtitle"]  # carried through the steps
        assert result.streams("subtitle")[0]["tags"]["language"] == "fra"
        assert result.duration == pytest.approx(2.0, abs=0.1)


# --------------------------------------------------------------------------- containers


@pytest.mark.parametrize(("output", "codecs"), [
    ({"container": "mov"}, ["h264", "aac"]),
    ({"container": "mkv", "audio_codec": "opus"}, ["h264", "opus"]),
    ({"container": "webm"}, ["vp9", "opus"]),
    ({"video_codec": "hevc", "audio_codec": "mp3"}, ["hevc", "mp3"]),
    ({"container": "mp3"}, ["mp3"]),
    ({"container": "wav"}, ["pcm_s16le"]),
    ({"audio_codec": "none", "width": 160, "height": 160}, ["h264"]),
])
def test_output_containers(library, job, probe, tmp_path, output: dict,
                           codecs: list[str]) -> None:
    _, out = run_job(library, job, tmp_path, "text_overlay",
                     {"video": library["clip1s"], "text": "x"}, **output)
    result = probe(out)
    assert [s["codec_name"] for s in result.data["streams"]] == codecs
    assert result.duration == pytest.approx(1.0, abs=0.1)
    if "width" in output:
        video = result.streams("video")[0]
        assert (video["width"], video["height"]) == (160, 160)
