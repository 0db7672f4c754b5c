"""JobSpec validation: defaults, ranges, unknown fields, combined graphs, kinds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.spec import (
    JobSpec,
    OutputSpec,
    check_kinds,
    referenced_file_ids,
    required_kinds,
)
from core.styles import FONTS

V1 = "0b6c5a5e-1111-4222-8333-944445555661"
V2 = "0b6c5a5e-1111-4222-8333-944445555662"
A1 = "0b6c5a5e-1111-4222-8333-944445555663"
S1 = "0b6c5a5e-1111-4222-8333-944445555664"
IMG = "0b6c5a5e-1111-4222-8333-944445555665"


def errors_of(body: dict[str, Any]) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(body)
    return [(tuple(error["loc"]), error["msg"]) for error in info.value.errors()]


def locs_of(body: dict[str, Any]) -> set[tuple]:
    return {loc for loc, _ in errors_of(body)}


def text_job(**params: Any) -> dict[str, Any]:
    return {"type": "text_overlay", "params": {"video": V1, "text": "Hi", **params}}


def combined(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "combined", "params": {"steps": list(steps), **extra}}


def step(step_id: str, step_type: str, **params: Any) -> dict[str, Any]:
    return {"id": step_id, "type": step_type, "params": params}


# --------------------------------------------------------------------------- defaults


def test_spec_example_and_defaults() -> None:
    spec = JobSpec.model_validate(text_job(position="bottom"))
    assert spec.output == OutputSpec()
    assert spec.output.model_dump() == {
        "container": "mp4", "video_codec": "h264", "audio_codec": "aac", "crf": None,
        "video_bitrate": None, "audio_bitrate": None, "preset": "veryfast", "width": None,
        "height": None, "fps": None, "filename": None,
    }
    assert spec.output.effective_crf == 23
    assert (spec.accelerator, spec.webhook) == ("auto", None)
    params = spec.params.model_dump()
    assert {key: params[key] for key in (
        "position", "font_size", "color", "font", "box", "margin", "start", "end", "x", "y",
    )} == {"position": "bottom", "font_size": 48, "color": "white", "font": "DejaVu Sans",
           "box": False, "margin": 24, "start": None, "end": None, "x": None, "y": None}


@pytest.mark.parametrize(("job_type", "params", "expected"), [
    ("join", {"inputs": [V1, V2]}, {"mode": "auto"}),
    ("audio_overlay", {"video": V1, "audio": A1}, {
        "mode": "mix", "audio_volume": 1.0, "video_volume": 1.0, "offset": 0.0, "loop": False,
        "fade_in": 0.0, "fade_out": 0.0}),
    ("subtitles", {"video": V1, "subtitles": S1}, {
        "mode": "burn", "font_size": None, "language": None, "font": None}),
    ("video_overlay", {"video": V1, "overlay": IMG}, {
        "position": "bottom-right", "scale": 0.25, "opacity": 1.0, "start": None, "end": None,
        "loop": False}),
])
def test_params_defaults(job_type: str, params: dict, expected: dict) -> None:
    dumped = JobSpec.model_validate({"type": job_type, "params": params}).params.model_dump()
    assert {key: dumped[key] for key in expected} == expected


def test_combined_defaults_to_last_step_and_fused() -> None:
    spec = JobSpec.model_validate(combined(
        step("a", "join", inputs=[V1, V2]), step("b", "text_overlay", video="@a", text="x"),
    ))
    assert spec.params.outputs == ["b"]
    assert spec.params.execution == "fused"
    assert spec.output_step_ids() == ["b"]


@pytest.mark.parametrize(("container", "video", "audio"), [
    ("m4a", "none", "aac"), ("mp3", "none", "mp3"), ("wav", "none", "pcm"),
    ("webm", "vp9", "opus"), ("mkv", "h264", "aac"),
])
def test_container_implies_codecs(container: str, video: str, audio: str) -> None:
    output = OutputSpec(container=container)
    assert (output.video_codec, output.audio_codec) == (video, audio)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(("params", "ok"), [
    ({"font_size": 8}, True), ({"font_size": 512}, True),
    ({"font_size": 7}, False), ({"font_size": 513}, False),
    ({"margin": 0}, True), ({"margin": 2000}, True), ({"margin": -1}, False),
    ({"margin": 2001}, False),
    ({"text": "x" * 1000}, True), ({"text": "x" * 1001}, False), ({"text": ""}, False),
    ({"start": 0, "end": 0.1}, True), ({"start": 1, "end": 1}, False),
    ({"start": -0.1}, False), ({"end": 0}, False), ({"start": float("nan")}, False),
    ({"start": 86400}, True), ({"start": 86400.5}, False),
    ({"x": 0, "y": 0}, True), ({"x": 8192, "y": 8192}, True), ({"x": -1, "y": 0}, False),
    ({"x": 10}, False), ({"x": 1, "y": 2, "position": "top"}, True),
    ({"color": "#FFAA00"}, True), ({"color": "#ffaa0080"}, True), ({"color": "Orange"}, True),
    ({"color": "#FFF"}, False), ({"color": "white@0.5"}, False), ({"color": "chartreuse"}, False),
    ({"box": True, "box_color": "grey"}, True), ({"box_color": "0xFFFFFF"}, False),
    ({"font": "DejaVu Sans Mono"}, True), ({"font": "/etc/passwd"}, False),
    ({"font": "dejavu sans"}, False),
    ({"text": "tab\tand\nnewline"}, True), ({"text": "bell\x07"}, False),
    ({"text": "nul\x00"}, False), ({"text": "lone \ud800"}, False),
])
def test_text_overlay_ranges(params: dict, ok: bool) -> None:
    body = text_job(**params)
    if ok:
        JobSpec.model_validate(body)
    else:
        assert all(loc[0] == "params" for loc in locs_of(body))


@pytest.mark.parametrize(("params", "ok"), [
    ({"audio_volume": 0, "video_volume": 4}, True), ({"audio_volume": 4.01}, False),
    ({"video_volume": -0.01}, False), ({"offset": 0}, True), ({"offset": -1}, False),
    ({"fade_in": 0.5, "fade_out": 0.5}, True), ({"fade_out": -1}, False),
    ({"mode": "replace"}, True), ({"mode": "duck"}, False),
])
def test_audio_overlay_ranges(params: dict, ok: bool) -> None:
    body = {"type": "audio_overlay", "params": {"video": V1, "audio": A1, **params}}
    if ok:
        JobSpec.model_validate(body)
    else:
        assert locs_of(body) <= {("params", key) for key in params}


@pytest.mark.parametrize(("params", "ok"), [
    ({"scale": 0.05}, True), ({"scale": 1}, True), ({"scale": 0.049}, False),
    ({"scale": 1.01}, False), ({"opacity": 0}, True), ({"opacity": 1.1}, False),
    ({"position": "center"}, True), ({"position": "middle"}, False), ({"loop": True}, True),
])
def test_video_overlay_ranges(params: dict, ok: bool) -> None:
    body = {"type": "video_overlay", "params": {"video": V1, "overlay": IMG, **params}}
    if ok:
        JobSpec.model_validate(body)
    else:
        assert locs_of(body) == {("params", next(iter(params)))}


@pytest.mark.parametrize(("params", "ok"), [
    ({"mode": "embed", "language": "eng"}, True), ({"language": "ENG"}, True),
    ({"language": "en"}, False), ({"language": "e1g"}, False), ({"font_size": 8}, True),
    ({"font_size": 600}, False), ({"mode": "hardsub"}, False),
])
def test_subtitles_ranges(params: dict, ok: bool) -> None:
    body = {"type": "subtitles", "params": {"video": V1, "subtitles": S1, **params}}
    if ok:
        assert JobSpec.model_validate(body).params.language in (None, "eng")
    else:
        assert locs_of(body) == {("params", next(iter(params)))}


@pytest.mark.parametrize(("inputs", "ok"), [
    ([V1, V2], True), ([V1] * 50, True), ([V1], False), ([V1] * 51, False),
    ([V1, "not-a-uuid"], False), ([V1, "file:/etc/passwd"], False),
    ([V1, "{" + V2 + "}"], False), ([V1, V2.upper()], True),
])
def test_join_inputs(inputs: list[str], ok: bool) -> None:
    body = {"type": "join", "params": {"inputs": inputs}}
    if ok:
        assert JobSpec.model_validate(body).params.inputs[-1] == inputs[-1].lower()
    else:
        assert all(loc[:2] == ("params", "inputs") for loc in locs_of(body))


@pytest.mark.parametrize(("output", "loc"), [
    ({"crf": 0, "preset": "ultrafast"}, None), ({"crf": 51, "preset": "veryslow"}, None),
    ({"crf": 52}, ("output", "crf")), ({"crf": -1}, ("output", "crf")),
    ({"preset": "placebo"}, ("output", "preset")),
    ({"width": 16, "height": 8192}, None), ({"width": 15}, ("output", "width")),
    ({"width": 321}, ("output", "width")), ({"height": 8194}, ("output", "height")),
    ({"fps": 1}, None), ({"fps": 120}, None), ({"fps": 0.5}, ("output", "fps")),
    ({"fps": 121}, ("output", "fps")),
    ({"container": "avi"}, ("output", "container")),
    ({"container": "webm", "video_codec": "h264"}, ("output", "video_codec")),
    ({"container": "mp3", "audio_codec": "aac"}, ("output", "audio_codec")),
    ({"video_codec": "none", "audio_codec": "none"}, ("output", "audio_codec")),
    ({"video_codec": "copy", "width": 320}, ("output", "video_codec")),
    ({"filename": "holiday clip.mp4"}, None), ({"filename": "ünïcødé.mp4"}, None),
    ({"filename": "../../etc/x"}, ("output", "filename")),
    ({"filename": "a\\b"}, ("output", "filename")),
    ({"filename": "-rf.mp4"}, ("output", "filename")),
    ({"filename": ".hidden"}, ("output", "filename")),
    ({"filename": "nul\x00.mp4"}, ("output", "filename")),
    ({"filename": "rtl\u202etxt.mp4"}, ("output", "filename")),
    ({"filename": ""}, ("output", "filename")),
    ({"filename": "x" * 256}, ("output", "filename")),
    ({"bitrate": "1M"}, ("output", "bitrate")),
])
def test_output_spec(output: dict, loc: tuple | None) -> None:
    body = {"type": "join", "params": {"inputs": [V1, V2]}, "output": output}
    if loc is None:
        JobSpec.model_validate(body)
    else:
        assert locs_of(body) == {loc}


@pytest.mark.parametrize(("webhook", "ok"), [
    ({"url": "https://hooks.example.com/x?y=1"}, True),
    ({"url": "http://example.com", "secret": "s" * 256}, True),
    ({"url": "ftp://example.com"}, False), ({"url": "file:///etc/passwd"}, False),
    ({"url": "not a url"}, False), ({"url": "https://e.com/" + "a" * 2048}, False),
    ({"url": "https://e.com", "secret": "s" * 257}, False),
    ({"url": "https://e.com", "secret": ""}, False),
    ({"url": "https://e.com", "events": ["x"]}, False),
])
def test_webhook(webhook: dict, ok: bool) -> None:
    body = {"type": "join", "params": {"inputs": [V1, V2]}, "webhook": webhook}
    if ok:
        assert JobSpec.model_validate(body).webhook.url == webhook["url"]
    else:
        assert all(loc[0] == "webhook" for loc in locs_of(body))


def test_accelerator() -> None:
    body = {"type": "join", "params": {"inputs": [V1, V2]}}
    assert JobSpec.model_validate({**body, "accelerator": "gpu"}).accelerator == "gpu"
    assert locs_of({**body, "accelerator": "tpu"}) == {("accelerator",)}


# --------------------------------------------------------------------------- unknown fields


@pytest.mark.parametrize(("body", "loc"), [
    ({**text_job(), "urgency": 1}, ("urgency",)),
    (text_job(fontfile="/etc/passwd"), ("params", "fontfile")),
    ({**text_job(), "output": {"vf": "x"}}, ("output", "vf")),
    (combined(step("a", "text_overlay", video=V1, text="x", style="bold")),
     ("params", "steps", 0, "params", "style")),
    (combined({"id": "a", "type": "join", "params": {"inputs": [V1, V2]}, "x": 1}),
     ("params", "steps", 0, "x")),
])
def test_unknown_fields_are_errors_with_their_path(body: dict, loc: tuple) -> None:
    assert errors_of(body) == [(loc, "Extra inputs are not permitted")]


def test_dumped_specs_validate_back_unchanged() -> None:
    """Stored specs (model_dump) are validated again by the worker."""
    bodies = [
        text_job(x=5, y=6, color="Red", box=True, start=1, end=2.5),
        {"type": "join", "params": {"inputs": [V1.upper(), V2]}, "output": {"container": "wav"}},
        {"type": "subtitles", "params": {"video": V1, "subtitles": S1, "mode": "embed",
                                         "language": "FRA"}},
        {"type": "video_overlay", "params": {"video": V1, "overlay": IMG, "x": 0, "y": 0},
         "webhook": {"url": "https://example.com/h", "secret": "s"}},
        full_pipeline().model_dump(),
    ]
    for body in bodies:
        spec = JobSpec.model_validate(body)
        for mode in ("python", "json"):
            assert JobSpec.model_validate(spec.model_dump(mode=mode)) == spec


def test_params_are_validated_against_type() -> None:
    assert locs_of({"type": "join", "params": {"video": V1, "text": "x"}}) == {
        ("params", "inputs"), ("params", "video"), ("params", "text")}
    assert locs_of(text_job(position="middle")) == {("params", "position")}
    assert locs_of({"type": "nope", "params": {}}) == {("type",)}
    assert locs_of({"type": "join"}) == {("params",)}


def test_step_refs_outside_combined() -> None:
    assert locs_of(text_job(video="@a")) == {("params", "video")}


def test_copy_conflicts() -> None:
    assert locs_of({**text_job(), "output": {"video_codec": "copy"}}) == {
        ("output", "video_codec")}
    assert locs_of({"type": "audio_overlay", "params": {"video": V1, "audio": A1},
                    "output": {"audio_codec": "copy"}}) == {("output", "audio_codec")}
    assert locs_of({"type": "join", "params": {"inputs": [V1, V2], "mode": "copy"},
                    "output": {"width": 640}}) == {("params", "mode")}
    assert locs_of({"type": "subtitles", "params": {"video": V1, "subtitles": S1,
                                                   "mode": "embed"},
                    "output": {"container": "m4a"}}) == {("output", "container")}
    # audio-only stream copy is fine when nothing touches the audio
    JobSpec.model_validate({"type": "join", "params": {"inputs": [V1, V2]},
                            "output": {"video_codec": "copy", "audio_codec": "copy"}})


# --------------------------------------------------------------------------- combined graphs


def test_combined_deep_error_location() -> None:
    body = combined(
        step("a", "join", inputs=[V1, V2]), step("b", "text_overlay", video="@a", text="x"),
        step("c", "text_overlay", video="@b", text=""),
    )
    assert locs_of(body) == {("params", "steps", 2, "params", "text")}


@pytest.mark.parametrize(("steps", "extra", "loc", "needle"), [
    ([step("a", "text_overlay", video="@zz", text="x")], {},
     ("params", "steps", 0, "params", "video"), "no step"),
    ([step("a", "text_overlay", video="@b", text="x"),
      step("b", "text_overlay", video=V1, text="x")], {},
     ("params", "steps", 0, "params", "video"), "later"),
    ([step("a", "text_overlay", video="@a", text="x")], {},
     ("params", "steps", 0, "params", "video"), "own output"),
    ([step("a", "join", inputs=[V1, V2]), step("a", "text_overlay", video=V1, text="x")],
     {}, ("params", "steps", 1, "id"), "duplicate"),
    ([step("a", "join", inputs=[V1, V2]), step("b", "subtitles", video=V1, subtitles="@a")],
     {}, ("params", "steps", 1, "params", "subtitles"), "subtitle"),
    ([step("a", "join", inputs=[V1, "@b"]), step("b", "join", inputs=[V1, V2])], {},
     ("params", "steps", 0, "params", "inputs", 1), "later"),
    ([step("a", "join", inputs=[V1, V2]), step("b", "join", inputs=["@a", V1], mode="copy")],
     {}, ("params", "steps", 1, "params", "mode"), "copy"),
    ([step("a", "join", inputs=[V1, V2])], {"outputs": ["b"]}, ("params", "outputs", 0),
     "no step"),
    ([step("a", "join", inputs=[V1, V2])], {"outputs": ["a", "a"]}, ("params", "outputs"),
     "unique"),
    ([step("a", "join", inputs=[V1, V2])], {"execution": "parallel"},
     ("params", "execution"), "fused"),
])
def test_combined_graph_errors(steps: list, extra: dict, loc: tuple, needle: str) -> None:
    errors = errors_of(combined(*steps, **extra))
    assert [found for found, _ in errors] == [loc]
    assert needle in errors[0][1]


def test_combined_step_limits_and_ids() -> None:
    twenty = [step(f"s{n}", "text_overlay", video=V1, text="x") for n in range(20)]
    JobSpec.model_validate(combined(*twenty))
    assert locs_of(combined(*twenty, step("s20", "text_overlay", video=V1, text="x"))) == {
        ("params", "steps")}
    assert locs_of(combined()) == {("params", "steps")}
    for bad_id in ("1abc", "a" * 33, "a b", "a/b", "", "@a"):
        assert locs_of(combined(step(bad_id, "text_overlay", video=V1, text="x"))) == {
            ("params", "steps", 0, "id")}
    JobSpec.model_validate(combined(step("A" + "b-_9" * 7 + "zzz", "join", inputs=[V1, V2])))


def test_nested_combined_is_refused() -> None:
    inner = step("a", "combined", steps=[step("b", "join", inputs=[V1, V2])])
    assert locs_of(combined(inner)) == {("params", "steps", 0, "type")}


def test_audio_only_kept_output_cannot_feed_video() -> None:
    body = combined(step("a", "join", inputs=[V1, V2]),
                    step("b", "text_overlay", video="@a", text="x"), outputs=["a", "b"])
    JobSpec.model_validate(body)
    body["output"] = {"video_codec": "none", "container": "m4a"}
    assert locs_of(body) == {("params", "steps", 1, "params", "video")}


# --------------------------------------------------------------------------- kinds


def full_pipeline() -> JobSpec:
    return JobSpec.model_validate(combined(
        step("j", "join", inputs=[V1, V2, V1]),
        step("a", "audio_overlay", video="@j", audio=A1),
        step("o", "video_overlay", video="@a", overlay=IMG),
        step("s", "subtitles", video="@o", subtitles=S1),
        step("m", "audio_overlay", video=V2, audio="@s"),
    ))


def test_referenced_file_ids_unique_in_order() -> None:
    assert referenced_file_ids(full_pipeline()) == [V1, V2, A1, IMG, S1]
    assert referenced_file_ids(JobSpec.model_validate(text_job())) == [V1]


def test_required_kinds() -> None:
    assert required_kinds(full_pipeline()) == {
        V1: {"video"}, V2: {"video"}, A1: {"audio", "video"}, IMG: {"image", "video"},
        S1: {"subtitle"},
    }


def test_check_kinds() -> None:
    spec = full_pipeline()
    good = {V1: "video", V2: "video", A1: "audio", IMG: "image", S1: "subtitle"}
    assert check_kinds(spec, good) == []
    assert check_kinds(spec, {**good, A1: "video", IMG: "video"}) == []
    errors = check_kinds(spec, {**good, V2: "subtitle", S1: "video"})
    assert [error.loc for error in errors] == [
        ("params", "steps", 0, "params", "inputs", 1),
        ("params", "steps", 3, "params", "subtitles"),
        ("params", "steps", 4, "params", "video"),
    ]
    assert "is a subtitle" in errors[0].msg and "needs video" in errors[0].msg
    assert errors[0].as_detail() == {"type": "file_kind", "msg": errors[0].msg,
                                     "loc": ["params", "steps", 0, "params", "inputs", 1]}
    # files the caller could not find are its 404, not a kind error
    assert check_kinds(spec, {V1: "video"}) == []


def test_font_allowlist_files_exist() -> None:
    from pathlib import Path

    assert {name: Path(font.file).is_file() for name, font in FONTS.items()} == {
        name: True for name in FONTS}


def documented_job_files() -> list[dict[str, Any]]:
    """The ``job.json`` files docs/API.md shows for each job type (its "The same from the
    ``mediaflow`` client" section), with a file id for every ``<id>``."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    section = text[text.index("Other `job.json` files"):]
    block = section[section.index("```json") + len("```json"):]
    block = block[:block.index("```")].replace("<id>", V1)
    decoder, specs, at = json.JSONDecoder(), [], 0
    while block[at:].strip():
        at += len(block[at:]) - len(block[at:].lstrip())
        spec, at = decoder.raw_decode(block, at)
        specs.append(spec)
    return specs


def test_the_documented_job_files_are_valid_specs() -> None:
    specs = documented_job_files()
    assert {spec["type"] for spec in specs} == {"transcode", "trim", "thumbnails", "package"}
    for spec in specs:
        assert JobSpec.model_validate(spec).type == spec["type"]
