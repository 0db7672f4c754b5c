"""MediaInfo.from_ffprobe on real probes and on awkward JSON."""

from __future__ import annotations

import pytest

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
