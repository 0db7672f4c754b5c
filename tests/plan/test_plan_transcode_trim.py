"""transcode and trim: the extended output options, compiled and run by the real ffmpeg on
tiny generated clips, results checked with ffprobe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.ffmpeg import available_encoders, parse_encoders
from core.plan import compile_plan
from core.spec import JobSpec, OutputSpec, SpecError

FRAME = 1 / 25  # the library's clips run at 25 fps


def run(library, job, tmp_path: Path, job_type: str, params: dict[str, Any],
        **output: Any) -> tuple[Any, Path]:
    plan = compile_plan(job(job_type, params, **output), library.media)
    outputs = library.run(plan, tmp_path)
    return plan, outputs[plan.steps[-1].step_id]


def loc_of(exc: ValidationError) -> list[tuple]:
    return [tuple(error["loc"]) for error in exc.errors()]


# --------------------------------------------------------------------------- output options


@pytest.mark.parametrize(("container", "video", "audio"), [
    ("flac", "none", "flac"), ("ogg", "none", "vorbis"), ("wav", "none", "pcm"),
])
def test_new_audio_containers_imply_codecs(container: str, video: str, audio: str) -> None:
    output = OutputSpec(container=container)
    assert (output.video_codec, output.audio_codec) == (video, audio)


def test_pcm_s16le_is_an_alias_of_pcm() -> None:
    assert OutputSpec(container="wav", audio_codec="pcm_s16le").audio_codec == "pcm"
    assert OutputSpec(container="mkv", audio_codec="pcm").audio_codec == "pcm"


@pytest.mark.parametrize(("output", "loc"), [
    ({"container": "webm", "video_codec": "h264"}, ("video_codec",)),
    ({"container": "mov", "video_codec": "av1"}, ("video_codec",)),
    ({"container": "mp4", "audio_codec": "vorbis"}, ("audio_codec",)),
    ({"container": "mp4", "audio_codec": "flac"}, ("audio_codec",)),
    ({"container": "ogg", "audio_codec": "aac"}, ("audio_codec",)),
    ({"container": "flac", "video_codec": "h264"}, ("video_codec",)),
    ({"crf": 20, "video_bitrate": "2500k"}, ("video_bitrate",)),
    ({"video_codec": "copy", "video_bitrate": "2500k"}, ("video_bitrate",)),
    ({"container": "flac", "audio_bitrate": "128k"}, ("audio_bitrate",)),
])
def test_refused_combinations(output: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as caught:
        OutputSpec.model_validate(output)
    assert loc in loc_of(caught.value)


@pytest.mark.parametrize(("value", "ok"), [
    ("2500k", True), ("5M", True), ("32k", True), ("100M", True),
    ("2500", False), ("2.5M", False), ("0k", False), ("2500kb", False), ("k", False),
    (" 2500k", False), ("2500K", False), ("31k", False), ("101M", False), ("-5k", False),
    ("1e3k", False), ("２５００k", False),
])
def test_bitrates_are_validated_strictly(value: str, ok: bool) -> None:
    if ok:
        assert OutputSpec(video_bitrate=value).video_bitrate == value
    else:
        with pytest.raises(ValidationError):
            OutputSpec(video_bitrate=value)


def test_encoder_listing_is_parsed() -> None:
    listing = ("Encoders:\n V..... = Video\n ------\n V....D libx264   libx264 H.264\n"
               " A....D aac       AAC\n")
    assert parse_encoders(listing) == {"libx264", "aac"}
    assert {"libx264", "aac", "libopus", "libvpx-vp9"} <= available_encoders()


def test_codec_the_build_lacks_is_refused(library, job) -> None:
    spec = job("transcode", {"input": library["clip1s"]}, container="mkv", video_codec="av1")
    without_av1 = available_encoders() - {"libsvtav1"}
    with pytest.raises(SpecError) as caught:
        compile_plan(spec, library.media, encoders=without_av1)
    assert caught.value.loc == ("output", "video_codec")
    assert caught.value.type == "encoder_missing"
    compile_plan(spec, library.media, encoders=available_encoders())  # this build has it


# --------------------------------------------------------------------------- transcode


def test_transcode_auto_copies_into_a_new_container(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "transcode", {"input": library["clip2s"]},
                    container="mkv")
    argv = plan.steps[0].argv
    assert ["-c:v", "copy"] == argv[argv.index("-c:v"):argv.index("-c:v") + 2]
    assert "libx264" not in argv and plan.steps[0].gpu_capable is False
    result = probe(out)
    assert result.data["format"]["format_name"].startswith("matroska")
    assert [s["codec_name"] for s in result.data["streams"]] == ["h264", "aac"]


def test_transcode_reencode_and_copy_modes(library, job) -> None:
    reencode = compile_plan(job("transcode", {"input": library["clip2s"], "mode": "reencode"},
                                container="mkv"), library.media).steps[0].argv
    assert "libx264" in reencode and "aac" in reencode
    with pytest.raises(SpecError) as caught:  # webm cannot hold h264 by copy
        compile_plan(job("transcode", {"input": library["clip2s"], "mode": "copy"},
                         container="webm"), library.media)
    assert caught.value.loc == ("output", "container")
    with pytest.raises(ValidationError):  # copy cannot resize
        job("transcode", {"input": library["clip2s"], "mode": "copy"}, width=160)


@pytest.mark.parametrize(("output", "codecs"), [
    ({"container": "webm"}, ["vp9", "opus"]),
    ({"container": "webm", "video_codec": "av1", "audio_codec": "vorbis"}, ["av1", "vorbis"]),
    ({"container": "mp3"}, ["mp3"]),
    ({"container": "flac"}, ["flac"]),
    ({"container": "ogg", "audio_codec": "opus", "audio_bitrate": "64k"}, ["opus"]),
    ({"container": "m4a"}, ["aac"]),
    ({"container": "mov", "audio_codec": "pcm"}, ["h264", "pcm_s16le"]),
])
def test_transcode_containers(library, job, probe, tmp_path, output: dict,
                              codecs: list[str]) -> None:
    _, out = run(library, job, tmp_path, "transcode", {"input": library["clip1s"]}, **output)
    result = probe(out)
    assert [s["codec_name"] for s in result.data["streams"]] == codecs
    assert result.duration == pytest.approx(1.0, abs=0.1)


def test_transcode_size_bitrate_and_fps(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "transcode", {"input": library["wide_silent"]},
                    width=320, fps=15, video_bitrate="300k")
    argv = plan.steps[0].argv
    assert argv[argv.index("-b:v") + 1] == "300k" and "-crf" not in argv
    video = probe(out).streams("video")[0]
    assert (video["width"], video["height"]) == (320, 180)  # height keeps the aspect ratio
    assert video["avg_frame_rate"] == "15/1"


# --------------------------------------------------------------------------- trim


def test_trim_accurate_is_frame_exact(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "trim",
                    {"input": library["clip2s"], "start": 0.52, "end": 1.4})
    argv = plan.steps[0].argv
    assert argv[argv.index("-ss") + 1] == "0.52" and argv[argv.index("-t") + 1] == "0.88"
    assert plan.steps[0].expected_seconds == pytest.approx(0.88)
    result = probe(out)
    video = result.streams("video")[0]
    assert float(video["duration"]) == pytest.approx(0.88, abs=FRAME)
    assert int(video["nb_frames"]) == 22
    assert float(result.streams("audio")[0]["duration"]) == pytest.approx(0.88, abs=FRAME)


def test_trim_by_duration_and_to_the_end(library, job, probe, tmp_path) -> None:
    _, out = run(library, job, tmp_path, "trim",
                 {"input": library["clip2s"], "start": 0.4, "duration": 1.0})
    assert probe(out).duration == pytest.approx(1.0, abs=FRAME)
    _, out = run(library, job, tmp_path / "tail", "trim",
                 {"input": library["clip2s"], "start": 1.5})
    assert probe(out).duration == pytest.approx(0.5, abs=FRAME)


def test_trim_on_keyframes_copies(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "trim",
                    {"input": library["clip2s"], "start": 0.5, "end": 1.5, "accurate": False})
    step = plan.steps[0]
    assert step.argv.count("copy") == 2 and "libx264" not in step.argv
    assert step.scratch_files["concat.txt"] == (
        "ffconcat version 1.0\nfile 'in0.mp4'\ninpoint 0.5\noutpoint 1.5\n")
    result = probe(out)
    assert [s["codec_name"] for s in result.data["streams"]] == ["h264", "aac"]
    # the clip's only keyframe is at 0: the copy starts there, up to one GOP early
    assert 1.0 - FRAME <= result.duration <= 1.5 + FRAME


def test_trim_segments_join_in_sync(library, job, probe, tmp_path) -> None:
    segments = [{"start": 1.2, "end": 1.6}, {"start": 0.0, "end": 0.4}, {"start": 0.8,
                                                                         "end": 1.0}]
    plan, out = run(library, job, tmp_path, "trim",
                    {"input": library["clip2s"], "segments": segments})
    assert plan.steps[0].argv.count("-ss") == 3
    result = probe(out)
    video, audio = result.streams("video")[0], result.streams("audio")[0]
    assert float(video["duration"]) == pytest.approx(1.0, abs=FRAME)
    assert float(audio["duration"]) == pytest.approx(float(video["duration"]), abs=FRAME)


def test_trim_segments_on_keyframes(library, job, probe, tmp_path) -> None:
    plan, out = run(library, job, tmp_path, "trim", {
        "input": library["clip2s"], "accurate": False,
        "segments": [{"start": 0, "end": 0.6}, {"start": 0, "end": 2}]})
    assert plan.steps[0].scratch_files["concat.txt"].count("file 'in0.mp4'") == 2
    assert probe(out).duration == pytest.approx(2.6, abs=2 * FRAME)


@pytest.mark.parametrize(("params", "loc"), [
    ({"start": 2.5, "end": 3}, ("params", "start")),
    ({"start": 1, "end": 2.5}, ("params", "end")),
    ({"start": 1, "duration": 1.5}, ("params", "duration")),
    ({"segments": [{"start": 0, "end": 1}, {"start": 1.5, "end": 2.2}]},
     ("params", "segments", 1, "end")),
])
def test_trim_outside_the_media_is_refused(library, job, params: dict, loc: tuple) -> None:
    with pytest.raises(SpecError) as caught:
        compile_plan(job("trim", {"input": library["clip2s"], **params}), library.media)
    assert caught.value.loc == loc and caught.value.type == "out_of_range"


@pytest.mark.parametrize(("params", "loc"), [
    ({"start": 1, "end": 1}, ("params", "end")),
    ({"end": 1, "duration": 1}, ("params", "duration")),
    ({"segments": [{"start": 0, "end": 1}], "end": 1}, ("params", "end")),
    ({"segments": [{"start": 1, "end": 0.5}]}, ("params", "segments", 0, "end")),
    ({"segments": [{"start": 0, "end": 1}] * 51}, ("params", "segments")),
    ({"segments": []}, ("params", "segments")),
])
def test_trim_params_are_validated(params: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate({"type": "trim", "params": {
            "input": "00000000-0000-4000-8000-000000000000", **params}})
    assert loc in loc_of(caught.value)


def test_accurate_trim_cannot_copy(library, job) -> None:
    with pytest.raises(ValidationError) as caught:
        job("trim", {"input": library["clip2s"], "end": 1}, video_codec="copy")
    assert ("output", "video_codec") in loc_of(caught.value)
    job("trim", {"input": library["clip2s"], "end": 1, "accurate": False}, video_codec="copy")


def test_trim_fused_after_a_step_cuts_by_filter(library, job, probe, tmp_path) -> None:
    spec = job("combined", {"steps": [
        {"id": "titled", "type": "text_overlay",
         "params": {"video": library["clip2s"], "text": "x"}},
        {"id": "cut", "type": "trim", "params": {
            "input": "@titled", "segments": [{"start": 0.2, "end": 0.6},
                                             {"start": 1.0, "end": 1.6}]}},
    ]})
    plan = compile_plan(spec, library.media)
    assert [step.op for step in plan.steps] == ["fused:text+trim"]
    assert "split=outputs=2" in plan.steps[0].argv[plan.steps[0].argv.index(
        "-filter_complex") + 1]
    out = library.run(plan, tmp_path)["cut"]
    result = probe(out)
    assert float(result.streams("video")[0]["duration"]) == pytest.approx(1.0, abs=FRAME)
    assert float(result.streams("audio")[0]["duration"]) == pytest.approx(1.0, abs=FRAME)
