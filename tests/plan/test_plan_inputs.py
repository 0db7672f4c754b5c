"""The compiler on what real uploads bring: the demuxers added to the allowlist, turned
phone video, variable frame timing and odd frame sizes (docs/API.md "Files")."""

from __future__ import annotations

import pytest

from core.containers import DEMUXER_EXTENSIONS
from core.mediainfo import IMAGE_FORMATS, MediaInfo
from core.plan import compile_plan
from core.probe import _CONTAINERS
from core.spec import SpecError

# file ids of MediaInfos made up in these tests
F, OVERLAY, P, U, G = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 6))


def input_blocks(argv: list[str]) -> list[list[str]]:
    """The options of each input: everything since the previous ``-i`` target."""
    blocks, start = [], argv.index("-nostats") + 1
    for position, arg in enumerate(argv):
        if arg == "-i":
            blocks.append(argv[start:position + 2])
            start = position + 2
    return blocks


def test_every_accepted_demuxer_can_be_forced() -> None:
    """The gate and the compiler agree: a format accepted at upload can be read by a job."""
    accepted = {name.split(",", 1)[0] for name in _CONTAINERS} | (IMAGE_FORMATS - {"image2"})
    assert accepted <= DEMUXER_EXTENSIONS.keys()


@pytest.mark.parametrize(("demuxer", "kind", "extension"), [
    ("mpeg", "video", "mpg"), ("asf", "video", "asf"), ("gif", "video", "gif"),
])
def test_new_video_demuxers_are_forced(library, job, demuxer: str, kind: str,
                                       extension: str) -> None:
    clip = library.media[library["clip2s"]].with_(format_name=demuxer, kind=kind)
    plan = compile_plan(job("text_overlay", {"video": F, "text": "x"}), {F: clip})
    (block,) = input_blocks(plan.steps[0].argv)
    assert block[block.index("-f") + 1] == demuxer
    assert plan.steps[0].sources[0].filename == f"in0.{extension}"


@pytest.mark.parametrize(("demuxer", "extension"), [
    ("gif", "gif"), ("bmp_pipe", "bmp"), ("tiff_pipe", "tiff"),
])
def test_new_image_demuxers_are_forced(library, job, demuxer: str, extension: str) -> None:
    still = library.media[library["logo"]].with_(format_name=demuxer)
    plan = compile_plan(job("video_overlay", {"video": library["clip2s"], "overlay": OVERLAY}),
                        {**library.media, OVERLAY: still})
    overlay = input_blocks(plan.steps[0].argv)[1]
    assert overlay[overlay.index("-f") + 1] == demuxer
    assert "-stream_loop" not in overlay
    assert "eof_action=repeat" in " ".join(plan.steps[0].argv)


def phone(library) -> MediaInfo:
    """clip2s as a phone stores it: turned a quarter, reported at its displayed size."""
    return library.media[library["clip2s"]].with_(width=240, height=320, rotation=90)


def test_a_turned_video_is_copied_only_into_containers_that_keep_the_turn(library,
                                                                          job) -> None:
    media = {**library.media, P: phone(library)}
    params = {"video": P, "audio": library["tone"]}
    into_mp4 = compile_plan(job("audio_overlay", params), media).steps[0].argv
    assert into_mp4[into_mp4.index("-c:v") + 1] == "copy"
    into_mkv = compile_plan(job("audio_overlay", params, container="mkv"), media).steps[0]
    assert into_mkv.argv[into_mkv.argv.index("-c:v") + 1] == "libx264"  # decoded upright
    with pytest.raises(SpecError) as info:
        compile_plan(job("audio_overlay", params, container="mkv", video_codec="copy"), media)
    assert info.value.loc == ("output", "container") and "rotation" in info.value.msg


def test_turned_and_upright_clips_are_not_joined_by_copy(library, job) -> None:
    upright = library.media[library["clip2s"]].with_(width=240, height=320)
    media = {P: phone(library), U: upright}
    argv = compile_plan(job("join", {"inputs": [P, U]}), media).steps[0].argv
    assert "-filter_complex" in argv and "concat" not in argv[:argv.index("-filter_complex")]
    with pytest.raises(SpecError, match="differ in rotation"):
        compile_plan(job("join", {"inputs": [P, U], "mode": "copy"}), media)


def test_encoded_video_keeps_its_frame_timing(library, job) -> None:
    """Never made constant at the input's rate guess (1000 fps for 1 ms WebM timestamps)."""
    text = compile_plan(job("text_overlay", {"video": library["clip2s"], "text": "x"}),
                        library.media).steps[0].argv
    assert text[text.index("-fps_mode:v") + 1] == "vfr"
    copy = compile_plan(job("join", {"inputs": [library["clip2s"], library["clip1s"]]}),
                        library.media).steps[0].argv
    assert "-fps_mode:v" not in copy


def test_odd_frame_sizes_are_cropped_to_even_for_the_encoder(library, job) -> None:
    odd = library.media[library["clip2s"]].with_(format_name="gif", width=161, height=121)
    step = compile_plan(job("text_overlay", {"video": G, "text": "x"}), {G: odd}).steps[0]
    graph = step.argv[step.argv.index("-filter_complex") + 1]
    assert "crop=w=160:h=120:x=0:y=0" in graph
    joined = compile_plan(job("join", {"inputs": [G, library["clip2s"]]}),
                          {**library.media, G: odd}).steps[0]
    graph = joined.argv[joined.argv.index("-filter_complex") + 1]
    assert "pad=w=160:h=120" in graph
