"""MediaInfo.from_ffprobe on real probes and on awkward JSON."""

from __future__ import annotations

import pytest

from core.mediainfo import duration_source, media_kind
from core.plan import MediaInfo


def test_video_with_audio(library) -> None:
    info = library.media[library["clip2s"]]
    assert (info.kind, info.demuxer, info.has_video, info.has_audio) == ("video", "mov", True, True)
    assert (info.width, info.height, info.fps, info.video_codec, info.pix_fmt) == (
        320, 240, 25.0, "h264", "yuv420p")
    assert (info.audio_codec, info.sample_rate, info.channels) == ("aac", 44100, 1)
    assert info.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(("name", "kind", "demuxer"), [
    ("wide_silent", "video", "mov"), ("tone", "audio", "mp3"), ("logo", "image", "png_pipe"),
    ("subs", "subtitle", "srt"),
])
def test_kinds(library, name: str, kind: str, demuxer: str) -> None:
    info = library.media[library[name]]
    assert (info.kind, info.demuxer) == (kind, demuxer)


def test_silent_video_and_subtitle_tracks(library) -> None:
    assert library.media[library["wide_silent"]].has_audio is False
    assert library.media[library["wide_silent"]].fps == 30.0
    subs = library.media[library["subs"]]
    assert [track.codec for track in subs.subtitles] == ["subrip"]


def test_cover_art_is_not_video() -> None:
    info = MediaInfo.from_ffprobe({
        "format": {"format_name": "mp3", "duration": "3.5"},
        "streams": [
            {"codec_type": "audio", "codec_name": "mp3", "sample_rate": "44100", "channels": 2},
            {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
        ],
    })
    assert (info.kind, info.has_video, info.duration) == ("audio", False, 3.5)


def test_missing_and_malformed_values() -> None:
    info = MediaInfo.from_ffprobe({
        "format": {"format_name": "matroska,webm", "duration": "N/A"},
        "streams": [{"codec_type": "video", "codec_name": "vp9", "width": "x",
                     "avg_frame_rate": "0/0", "r_frame_rate": "30000/1001", "duration": "4"}],
    })
    assert (info.demuxer, info.width, info.duration) == ("matroska", None, 4.0)
    assert info.fps == pytest.approx(29.97, abs=0.001)
    assert MediaInfo.from_ffprobe({}).kind == "unknown"


# --- what real uploads carry: measured values, rotation, timebase-like rates -------------


def webm_recording(**video: object) -> dict:
    """ffprobe's JSON for a browser recording: no duration anywhere, 1 ms time base."""
    stream = {"index": 0, "codec_type": "video", "codec_name": "vp8", "width": 320,
              "height": 240, "avg_frame_rate": "0/0", "r_frame_rate": "1000/1",
              "time_base": "1/1000", **video}
    return {"format": {"format_name": "matroska,webm", "duration": "N/A"}, "streams": [stream]}


def test_a_rate_that_is_only_the_time_base_is_not_the_frame_rate() -> None:
    assert MediaInfo.from_ffprobe(webm_recording()).fps is None
    measured = webm_recording(mediaflow_frame_rate=30.303)
    assert MediaInfo.from_ffprobe(measured).fps == 30.303
    # a real 1000 fps stream has an average rate too, and keeps it
    real = webm_recording(avg_frame_rate="1000/1", r_frame_rate="1000/1", time_base="1/1")
    assert MediaInfo.from_ffprobe(real).fps == 1000.0


def test_measured_duration_reaches_the_compiler_through_the_stored_json() -> None:
    probe = webm_recording(mediaflow_frame_rate=30.0, mediaflow_vfr=True)
    probe["format"]["mediaflow_duration"] = 1.021
    info = MediaInfo.from_stored("video", probe, {"duration": 1.021})
    assert (info.duration, info.fps, info.kind) == (1.021, 30.0, "video")
    assert duration_source(probe["format"], probe["streams"]) == "measured"
    probe["format"]["duration"] = "2.5"  # a declared duration wins
    assert MediaInfo.from_ffprobe(probe).duration == 2.5
    assert duration_source(probe["format"], probe["streams"]) == "header"


@pytest.mark.parametrize(("side_data", "tags", "size", "turn"), [
    ([{"side_data_type": "Display Matrix", "rotation": -90}], {}, (240, 320), 270),
    ([{"side_data_type": "Display Matrix", "rotation": 90}], {}, (240, 320), 90),
    ([{"side_data_type": "Display Matrix", "rotation": 180}], {}, (320, 240), 180),
    ([], {"rotate": "270"}, (240, 320), 270),
    ([], {"rotate": "nonsense"}, (320, 240), 0),
])
def test_a_turned_picture_reports_its_displayed_size(side_data: list, tags: dict,
                                                     size: tuple[int, int], turn: int) -> None:
    stream = {"codec_type": "video", "codec_name": "h264", "width": 320, "height": 240,
              "side_data_list": side_data, "tags": tags, "avg_frame_rate": "30/1"}
    info = MediaInfo.from_ffprobe({"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2",
                                              "duration": "1"}, "streams": [stream]})
    assert ((info.width, info.height), info.rotation) == (size, turn)


@pytest.mark.parametrize(("format_name", "codec", "frames", "audio", "kind"), [
    ("gif", "gif", "1", False, "image"),
    ("gif", "gif", "25", False, "video"),
    ("bmp_pipe", "bmp", None, False, "image"),
    ("tiff_pipe", "tiff", None, False, "image"),
    ("avi", "mjpeg", None, False, "video"),  # an MJPEG clip is not a photo
    ("mpeg", "mpeg2video", None, True, "video"),
    ("asf", None, None, True, "audio"),
])
def test_media_kind(format_name: str, codec: str | None, frames: str | None, audio: bool,
                    kind: str) -> None:
    streams: list[dict] = []
    if codec:
        streams.append({"codec_type": "video", "codec_name": codec, "nb_frames": frames})
    if audio:
        streams.append({"codec_type": "audio", "codec_name": "mp2"})
    assert media_kind({"format_name": format_name}, streams) == kind


def test_the_stored_kind_is_the_gates() -> None:
    probe = {"format": {"format_name": "avi", "duration": "1"},
             "streams": [{"codec_type": "video", "codec_name": "png", "width": 64}]}
    assert MediaInfo.from_stored("video", probe, {}).kind == "video"
