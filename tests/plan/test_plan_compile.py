"""The compiler's output without running FFmpeg: argv hygiene, grouping, errors, rendering."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.mediainfo import MediaInfo
from core.plan import Plan, PlanStep, compile_plan, gpu_argv_variant
from core.spec import JobSpec, SpecError

PREFIX = ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-progress", "pipe:1", "-nostats"]
HOSTILE_TEXTS = [
    "a':textfile=/etc/passwd", "x',drawtext=text=OWNED", "a'b;c", "[0:v]", "%{pts}",
    "%{eif:1:d}", "back\\slash\\\\ and \\'", "line one\nline two\n\nfour", "🎬" * 1000,
]


def steps_of(plan: Plan) -> list[tuple[str, str]]:
    return [(step.step_id, step.op) for step in plan.steps]


def input_blocks(argv: list[str]) -> list[list[str]]:
    """The options of each input: everything since the previous ``-i`` target."""
    blocks, start = [], argv.index("-nostats") + 1
    for position, arg in enumerate(argv):
        if arg == "-i":
            blocks.append(argv[start:position + 2])
            start = position + 2
    return blocks


def chain(library, job, *, execution: str = "fused", outputs: list[str] | None = None,
          loop: bool = False, **output: Any) -> JobSpec:
    params: dict[str, Any] = {"steps": [
        {"id": "joined", "type": "join",
         "params": {"inputs": [library["clip2s"], library["clip1s"]]}},
        {"id": "titled", "type": "text_overlay",
         "params": {"video": "@joined", "text": "Title", "position": "top"}},
        {"id": "scored", "type": "audio_overlay",
         "params": {"video": "@titled", "audio": library["tone"], "loop": loop}},
        {"id": "subbed", "type": "subtitles",
         "params": {"video": "@scored", "subtitles": library["subs"]}},
    ], "execution": execution}
    if outputs:
        params["outputs"] = outputs
    return job("combined", params, **output)


# --------------------------------------------------------------------------- argv hygiene


def assert_clean_argv(step: PlanStep, library) -> None:
    argv = step.argv
    assert argv[:len(PREFIX)] == PREFIX
    assert argv[-1] == "{out}" and argv[-3] == "-f"
    assert "-safe" not in argv or argv[argv.index("-safe") + 1] == "1"
    for block in input_blocks(argv):
        assert block[:2] == ["-protocol_whitelist", "file"], block
        assert block[block.index("-f") + 1]  # the demuxer is always forced
        assert re.fullmatch(r"\{(in\d+|scratch:[a-z0-9.-]+)\}", block[-1]), block
    joined = " ".join(argv)
    for file_id in library.paths:
        assert file_id not in joined
    assert "/tmp" not in joined and str(library.root) not in joined


def test_fused_chain_is_one_clean_run(library, job) -> None:
    plan = compile_plan(chain(library, job), library.media)
    assert steps_of(plan) == [("subbed", "fused:join+text+audio+subtitles")]
    step = plan.steps[0]
    assert_clean_argv(step, library)
    assert step.covers == ["joined", "titled", "scored", "subbed"]
    assert step.argv.count("-filter_complex") == 1
    assert step.argv.count("-c:v") == 1 and "libx264" in step.argv
    assert [item.filename for item in step.sources] == ["in0.mp4", "in1.mp4", "in2.mp3",
                                                       "in3.srt"]
    assert step.scratch_files["concat.txt"] == (
        "ffconcat version 1.0\nfile 'in0.mp4'\nfile 'in1.mp4'\n")
    assert step.scratch_files["text.txt"] == "Title"
    assert (step.keep_output, step.output_name, step.output_kind, step.gpu_capable) == (
        True, "out.mp4", "video", True)
    assert step.expected_seconds == pytest.approx(3.0, abs=0.1)
    assert step.weight == pytest.approx(step.expected_seconds)
    assert plan.outputs == [step] and plan.warnings == []


def test_stepwise_chain_is_one_run_per_step(library, job) -> None:
    plan = compile_plan(chain(library, job, execution="stepwise"), library.media)
    assert steps_of(plan) == [("joined", "join"), ("titled", "text_overlay"),
                              ("scored", "audio_overlay"), ("subbed", "subtitles")]
    assert [step.keep_output for step in plan.steps] == [False, False, False, True]
    assert [step.output_name for step in plan.steps] == [
        "out.mkv", "out.mkv", "out.mkv", "out.mp4"]
    assert [item.ref for item in plan.steps[1].sources] == ["@joined"]
    assert [item.filename for item in plan.steps[1].sources] == ["in0.mkv"]
    # the joined clips match, so the join is a stream copy and cheap
    assert plan.steps[0].gpu_capable is False
    assert plan.steps[0].weight == pytest.approx(0.05 * plan.steps[0].expected_seconds)
    # the audio overlay leaves the h264 video alone: copied, only audio encoded
    scored = plan.steps[2].argv
    assert scored[scored.index("-c:v") + 1] == "copy" and plan.steps[2].gpu_capable is False
    for step in plan.steps:
        assert_clean_argv(step, library)


def test_kept_intermediate_splits_the_run(library, job) -> None:
    plan = compile_plan(chain(library, job, outputs=["titled", "subbed"]), library.media)
    assert steps_of(plan) == [("titled", "fused:join+text"),
                              ("subbed", "fused:audio+subtitles")]
    assert [step.keep_output for step in plan.steps] == [True, True]
    assert plan.steps[1].sources[0].ref == "@titled"
    assert plan.steps[0].output_name == "out.mp4"


def test_looped_input_cannot_be_fused(library, job) -> None:
    spec = job("combined", {"steps": [
        {"id": "a", "type": "text_overlay", "params": {"video": library["clip2s"], "text": "x"}},
        {"id": "b", "type": "audio_overlay",
         "params": {"video": library["clip1s"], "audio": "@a", "loop": True}},
    ]})
    assert steps_of(compile_plan(spec, library.media)) == [
        ("a", "text_overlay"), ("b", "audio_overlay")]
    fused = compile_plan(chain(library, job, loop=True), library.media)  # loops a file: fine
    assert len(fused.steps) == 1 and "-stream_loop" in fused.steps[0].argv


def test_output_used_twice_is_written_once(library, job) -> None:
    spec = job("combined", {"steps": [
        {"id": "a", "type": "text_overlay", "params": {"video": library["clip2s"], "text": "x"}},
        {"id": "b", "type": "video_overlay", "params": {"video": "@a", "overlay": "@a"}},
    ]})
    plan = compile_plan(spec, library.media)
    assert steps_of(plan) == [("a", "text_overlay"), ("b", "video_overlay")]
    assert [item.ref for item in plan.steps[1].sources] == ["@a"]  # placed once, read twice


def test_unused_steps_are_skipped_with_a_warning(library, job) -> None:
    spec = job("combined", {"steps": [
        {"id": "dead", "type": "text_overlay",
         "params": {"video": library["clip2s"], "text": "x"}},
        {"id": "live", "type": "text_overlay",
         "params": {"video": library["clip1s"], "text": "y"}},
    ]})
    plan = compile_plan(spec, library.media)
    assert steps_of(plan) == [("live", "text_overlay")]
    assert plan.warnings == ["step 'dead' is not used by any output and is skipped"]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_only_in_scratch_file(library, job, text: str) -> None:
    plan = compile_plan(job("text_overlay", {"video": library["clip2s"], "text": text}),
                        library.media)
    step = plan.steps[0]
    assert step.scratch_files == {"text.txt": text}
    for arg in step.argv:
        assert text not in arg
    assert_clean_argv(step, library)
    graph = step.argv[step.argv.index("-filter_complex") + 1]
    assert graph.count("drawtext=") == 1 and "expansion=none" in graph
    assert "textfile={scratch:text.txt}" in graph


def test_drawtext_options_come_from_validated_values(library, job) -> None:
    plan = compile_plan(job("text_overlay", {
        "video": library["clip2s"], "text": "x", "color": "#FF000080", "box": True,
        "box_color": "navy", "font": "DejaVu Serif Bold", "font_size": 30, "x": 10, "y": 20,
        "start": 0.5, "end": 1.25,
    }), library.media)
    graph = plan.steps[0].argv[plan.steps[0].argv.index("-filter_complex") + 1]
    assert "fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf" in graph
    assert "fontcolor=0xFF0000@0.501961" in graph and "boxcolor=0x000080" in graph
    assert ":x=10:y=20:" in graph and "enable=between(t\\,0.5\\,1.25)" in graph


# --------------------------------------------------------------------------- join


def test_join_auto_copies_matching_clips(library, job) -> None:
    plan = compile_plan(job("join", {"inputs": [library["clip2s"], library["clip1s"]]}),
                        library.media)
    argv = plan.steps[0].argv
    assert argv[argv.index("-f") + 1:argv.index("-i")] == ["concat", "-safe", "1"]
    assert "-format_whitelist" in argv and "concat,mov" in argv
    assert argv[argv.index("-c:v") + 1] == "copy" and argv[argv.index("-c:a") + 1] == "copy"
    assert "-filter_complex" not in argv
    assert plan.steps[0].expected_seconds == pytest.approx(3.0, abs=0.1)


def test_join_auto_reencodes_different_clips(library, job) -> None:
    plan = compile_plan(job("join", {"inputs": [library["clip2s"], library["wide_silent"]]}),
                        library.media)
    argv = plan.steps[0].argv
    graph = argv[argv.index("-filter_complex") + 1]
    assert "concat=n=2:v=1:a=1" in graph and "anullsrc" in graph
    assert "scale=w=320:h=240:force_original_aspect_ratio=decrease" in graph
    assert "concat" not in argv[:argv.index("-filter_complex")]
    assert plan.steps[0].gpu_capable is True


def test_join_copy_refuses_different_clips(library, job) -> None:
    spec = job("join", {"inputs": [library["clip2s"], library["wide_silent"]], "mode": "copy"})
    with pytest.raises(SpecError) as info:
        compile_plan(spec, library.media)
    assert info.value.loc == ("params", "mode") and "differ in width" in info.value.msg
    nested = job("combined", {"steps": [{"id": "j", "type": "join", "params": {
        "inputs": [library["clip2s"], library["wide_silent"]], "mode": "copy"}}]})
    with pytest.raises(SpecError) as info:
        compile_plan(nested, library.media)
    assert info.value.loc == ("params", "steps", 0, "params", "mode")


def test_join_copy_into_a_container_that_cannot_hold_the_codec(library, job) -> None:
    spec = job("join", {"inputs": [library["clip2s"], library["clip1s"]], "mode": "copy"},
               container="webm")
    with pytest.raises(SpecError) as info:
        compile_plan(spec, library.media)
    assert info.value.loc == ("output", "container")


# --------------------------------------------------------------------------- other errors


def test_audio_source_without_audio(library, job) -> None:
    spec = job("audio_overlay", {"video": library["clip2s"], "audio": library["wide_silent"]})
    with pytest.raises(SpecError) as info:
        compile_plan(spec, library.media)
    assert info.value.loc == ("params", "audio")


def test_unknown_container_and_missing_probe(library, job) -> None:
    spec = job("text_overlay", {"video": library["clip2s"], "text": "x"})
    odd = {library["clip2s"]: MediaInfo(format_name="hls", kind="video", has_video=True)}
    with pytest.raises(SpecError) as info:
        compile_plan(spec, odd)
    assert info.value.loc == ("params", "video") and "hls" in info.value.msg
    with pytest.raises(SpecError) as info:
        compile_plan(spec, {})
    assert info.value.loc == ("params", "video")


# --------------------------------------------------------------------------- rendering


def test_render_substitutes_and_escapes_embedded_paths(library, job) -> None:
    plan = compile_plan(job("subtitles", {"video": library["clip2s"],
                                          "subtitles": library["subs"]}), library.media)
    step = plan.steps[0]
    paths = step.paths_in("/scratch/it's:odd")
    assert paths == {"in0": "/scratch/it's:odd/in0.mp4", "in1": "/scratch/it's:odd/in1.srt",
                     "out": "/scratch/it's:odd/out.mp4"}
    argv = step.render(paths)
    assert "/scratch/it's:odd/in0.mp4" in argv and argv[-1] == "/scratch/it's:odd/out.mp4"
    graph = argv[argv.index("-filter_complex") + 1]
    assert "filename=/scratch/it\\\\\\'s\\\\:odd/in1.srt" in graph
    assert step.public()["argv"] == step.argv and "{in0}" in step.argv


@pytest.mark.parametrize("bad", ["relative/in0.mp4", "-i", "file:/x", "http://x/in0.mp4", ""])
def test_render_refuses_paths_that_are_not_absolute(library, job, bad: str) -> None:
    step = compile_plan(job("text_overlay", {"video": library["clip2s"], "text": "x"}),
                        library.media).steps[0]
    paths = {**step.paths_in("/s"), "in0": bad}
    with pytest.raises(ValueError):
        step.render(paths)
    paths = step.paths_in("/s")
    del paths["scratch:text.txt"]
    with pytest.raises(ValueError, match="scratch:text.txt"):
        step.render(paths)


def test_render_keeps_concat_inputs_beside_the_list(library, job) -> None:
    step = compile_plan(job("join", {"inputs": [library["clip2s"], library["clip1s"]]}),
                        library.media).steps[0]
    assert step.render(step.paths_in("/s"))[-1] == "/s/out.mp4"
    with pytest.raises(ValueError, match="in1"):
        step.render({**step.paths_in("/s"), "in1": "/elsewhere/in1.mp4"})


def test_public_plan(library, job) -> None:
    plan = compile_plan(chain(library, job, execution="stepwise"), library.media)
    public = plan.public()
    assert [(item["step"], item["op"], item["pool"]) for item in public] == [
        ("joined", "join", "cpu"), ("titled", "text_overlay", "gpu-capable"),
        ("scored", "audio_overlay", "cpu"), ("subbed", "subtitles", "gpu-capable")]
    assert all(item["argv"][0] == "ffmpeg" for item in public)


def test_gpu_variant_decodes_video_inputs_on_nvdec(library, job) -> None:
    spec = job("video_overlay", {"video": library["clip2s"], "overlay": library["logo"]})
    step = compile_plan(spec, library.media).steps[0]
    argv = gpu_argv_variant(step)
    assert argv.count("-hwaccel") == 1  # the png is not decoded on the GPU
    assert argv[argv.index("-hwaccel"):argv.index("-hwaccel") + 2] == ["-hwaccel", "cuda"]
    assert argv[argv.index("-hwaccel") + 2:argv.index("-hwaccel") + 4] == ["-i", "{in0}"]
    assert [arg for arg in argv if arg not in ("-hwaccel", "cuda")] == step.argv
    copy_step = compile_plan(job("join", {"inputs": [library["clip2s"], library["clip1s"]]}),
                             library.media).steps[0]
    assert gpu_argv_variant(copy_step) == copy_step.argv


def test_fused_op_names_fit_the_operation_log() -> None:
    from core.plan.compiler import OP_MAX_LENGTH, op_name

    assert op_name(["text_overlay"]) == "text_overlay"
    assert op_name(["join", "video_overlay"]) == "fused:join+overlay"
    twenty = op_name(["video_overlay"] * 20)
    assert twenty == "fused:20 steps" and len(twenty) <= OP_MAX_LENGTH
