"""An HLS master as ffmpeg's muxer writes it for audio groups, tidied before it is stored:
its audio-only variants go, the video variants and the audio renditions stay."""

from __future__ import annotations

from pathlib import Path

from core.packages import drop_audio_only_variants, finish_package

FFMPEG_MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_aud0",NAME="audio_3",DEFAULT=YES,URI="a0.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_aud1",NAME="audio_4",DEFAULT=YES,URI="a1.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=470800,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2",AUDIO="group_aud0"
v0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=180400,RESOLUTION=160x120,CODECS="avc1.42c00c,mp4a.40.2",AUDIO="group_aud1"
v1.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2",AUDIO="group_aud0"
a0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=70400,CODECS="mp4a.40.2",AUDIO="group_aud1"
a1.m3u8

"""


def test_audio_only_variants_go_and_everything_else_stays() -> None:
    tidy = drop_audio_only_variants(FFMPEG_MASTER)
    lines = tidy.splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == [
        "v0.m3u8", "v1.m3u8"]
    assert sum(line.startswith("#EXT-X-MEDIA:TYPE=AUDIO") for line in lines) == 2
    assert all("RESOLUTION=" in line for line in lines if line.startswith("#EXT-X-STREAM-INF"))
    assert tidy.endswith("v1.m3u8\n") and "\n\n\n" not in tidy
    assert drop_audio_only_variants(tidy) == tidy


def test_a_master_without_video_variants_is_left_alone() -> None:
    audio_only = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\"\na0.m3u8\n"
    assert drop_audio_only_variants(audio_only) == audio_only


def test_finish_package_rewrites_only_an_hls_master(tmp_path: Path) -> None:
    (tmp_path / "master.m3u8").write_text(FFMPEG_MASTER)
    (tmp_path / "manifest.mpd").write_text("<MPD/>")
    finish_package(tmp_path, "master.m3u8")
    finish_package(tmp_path, "manifest.mpd")
    assert (tmp_path / "master.m3u8").read_text() == drop_audio_only_variants(FFMPEG_MASTER)
    assert (tmp_path / "manifest.mpd").read_text() == "<MPD/>"
