"""The gate on what people really upload, and on what its wider allowlist could let in
(docs/SECURITY.md #1, #2, #7; docs/API.md "Files").

The whole accepted corpus goes through the API in tests/jobs/test_input_corpus.py; here are
the measurements' limits and the hostile files that the new containers and image formats
could carry: absurd sizes declared by GIF, BMP and TIFF headers (refused before any tool
runs), animation bombs, and playlists hidden in MPEG-PS and ASF files.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from core import probe
from core.config import Settings
from core.probe import MediaLimitExceeded, UnsupportedMedia, probe_file
from tests.utils.corpus import SAMPLES
from tests.utils.hostile import (
    ASF_HEADER_GUID,
    PACK_HEADER,
    bmp_header,
    gif_bytes,
    playlist,
    tiff_bytes,
)
from tests.utils.media import FFMPEG, make_video

# --- files made for these tests --------------------------------------------------------


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("real-world")
    paths = {name: SAMPLES[name].make(folder)
             for name in ("recorder.webm", "timebase.webm", "camcorder.mpg", "windows.wmv",
                          "phone.mp4", "still.tiff")}
    paths["three.mp4"] = make_video(folder / "three.mp4", seconds=3)
    long_recording = folder / "long.webm"  # 30 s: more packets than the first ffprobe lists
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-t", "30",
                    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-live", "1",
                    str(long_recording)], check=True)
    paths["long.webm"] = long_recording
    return paths


# --- measured duration and frame timing --------------------------------------------------


async def test_a_recording_without_a_duration_is_measured(
    made: dict[str, Path], probe_settings: Settings, tool_calls: list[list[str]]
) -> None:
    """Short enough for the first ffprobe's packet sample: no second run is needed."""
    result = await probe_file(made["recorder.webm"], settings=probe_settings)

    assert result.metadata["duration"] == pytest.approx(1.0, abs=0.1)
    assert result.metadata["duration_source"] == "measured"
    assert result.raw is not None and "packets" not in result.raw  # the sample is not kept
    assert result.raw["format"]["mediaflow_duration"] == pytest.approx(1.0, abs=0.1)
    assert len(tool_calls) == 1


async def test_a_long_recording_is_measured_by_a_bounded_scan(
    made: dict[str, Path], probe_settings: Settings, tool_calls: list[list[str]]
) -> None:
    result = await probe_file(made["long.webm"], settings=probe_settings)

    assert result.metadata["duration"] == pytest.approx(30.0, abs=0.1)
    assert result.metadata["duration_source"] == "measured"
    first, scan = tool_calls
    assert "-show_streams" in first and "-show_streams" not in scan
    assert scan[scan.index("-protocol_whitelist") + 1] == "file"
    assert "hls" not in scan[scan.index("-format_whitelist") + 1].split(",")
    limit = probe_settings.max_media_seconds
    assert scan[scan.index("-read_intervals") + 1] == f"%+{int(limit) + 1}"


async def test_a_recording_longer_than_the_limit_is_422_without_reading_it_all(
    made: dict[str, Path], probe_settings: Settings
) -> None:
    short = probe_settings.model_copy(update={"max_media_seconds": 5.0})

    with pytest.raises(MediaLimitExceeded, match="longer than the 5 s limit"):
        await probe_file(made["long.webm"], settings=short)


@pytest.mark.parametrize(("limit", "value", "refusal", "says"), [
    ("MEASURE_MAX_BYTES", 1024, MediaLimitExceeded, "measured only up to"),  # a 422
    ("MEASURE_TIMEOUT", 0.0, UnsupportedMedia, "timed out"),  # a 415
], ids=["over-the-measuring-byte-cap", "scan-runs-too-long"])
async def test_a_recording_past_a_measuring_limit_is_refused(
    made: dict[str, Path], probe_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    limit: str, value: float, refusal: type[Exception], says: str,
) -> None:
    monkeypatch.setattr(probe, limit, value)

    with pytest.raises(refusal, match=says):
        await probe_file(made["long.webm"], settings=probe_settings)


async def test_a_timebase_is_not_a_frame_rate_but_1000_real_fps_still_are(
    made: dict[str, Path], media: dict[str, Path], probe_settings: Settings
) -> None:
    """The WebM's stream says r_frame_rate=1000/1 (its 1 ms time base) and has no average
    rate: its frames are measured instead. A real 1000 fps video is still refused."""
    result = await probe_file(made["timebase.webm"], settings=probe_settings)

    assert result.metadata["fps"] == pytest.approx(30.3, abs=0.5)
    assert result.metadata["vfr"] is True

    with pytest.raises(MediaLimitExceeded, match="fps"):
        await probe_file(media["fps1000.mkv"], settings=probe_settings)


async def test_constant_frame_rate_is_not_reported_variable(
    media: dict[str, Path], made: dict[str, Path], probe_settings: Settings
) -> None:
    for name in ("video.mp4",):
        assert (await probe_file(media[name], settings=probe_settings)).metadata["vfr"] is False
    for name in ("camcorder.mpg", "windows.wmv", "recorder.webm"):
        assert (await probe_file(made[name], settings=probe_settings)).metadata["vfr"] is False


async def test_a_turned_phone_video_reports_its_displayed_size(
    made: dict[str, Path], probe_settings: Settings
) -> None:
    result = await probe_file(made["phone.mp4"], settings=probe_settings)

    meta = result.metadata
    assert (meta["width"], meta["height"], meta["rotation"]) == (240, 320, 90)
    assert (meta["streams"][0]["width"], meta["streams"][0]["height"]) == (240, 320)


# --- absurd sizes, read from the headers before any tool runs ----------------------------


@pytest.mark.parametrize(("name", "data", "size"), [
    ("screen.gif", gif_bytes(1, 65535, 65535), "65535x65535"),
    ("wide.bmp", bmp_header(100_000, 100_000), "100000x100000"),
    ("os2.bmp", b"BM" + struct.pack("<IHHIIHHHH", 26, 0, 0, 26, 12, 60000, 60000, 1, 24),
     "60000x60000"),
    ("huge.tiff", tiff_bytes([(100_000, 100_000)]), "100000x100000"),
    ("directory-at-end.tiff", tiff_bytes([(20_000, 20_000)], at_end=True), "20000x20000"),
    ("big-second-page.tiff", tiff_bytes([(64, 64), (50_000, 50_000)]), "50000x50000"),
])
async def test_absurd_image_sizes_are_422_before_any_tool_runs(
    probe_settings: Settings, tmp_path: Path, tool_calls: list[list[str]], name: str,
    data: bytes, size: str,
) -> None:
    with pytest.raises(MediaLimitExceeded, match=size):
        await probe_file(write(tmp_path, name, data), settings=probe_settings)
    assert tool_calls == []


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("loop.tiff", tiff_bytes([(64, 64), (64, 64)], loop=True), "pages"),
    ("pages.tiff", tiff_bytes([(8, 8)] * 17), "pages"),
    ("cut.tiff", tiff_bytes([(64, 64)])[:20], "readable size"),
    ("header-cut.tiff", b"II*\x00\x01", "cut off"),
    ("header-cut-be.tiff", b"MM\x00*\x00\x00", "cut off"),
    ("sizeless.tiff", b"II*\x00\x08\x00\x00\x00\x01\x00" + struct.pack("<HHII", 258, 3, 1, 8)
     + b"\0\0\0\0", "readable size"),
])
async def test_tiffs_whose_size_cannot_be_read_are_415_before_any_tool_runs(
    probe_settings: Settings, tmp_path: Path, tool_calls: list[list[str]], name: str,
    data: bytes, reason: str,
) -> None:
    with pytest.raises(UnsupportedMedia, match=reason):
        await probe_file(write(tmp_path, name, data), settings=probe_settings)
    assert tool_calls == []


async def test_a_tiff_with_its_directory_at_the_end_is_read(
    made: dict[str, Path], probe_settings: Settings
) -> None:
    """FFmpeg writes the directory after the pixels; the gate follows the offset."""
    data = made["still.tiff"].read_bytes()
    (offset,) = struct.unpack("<I", data[4:8])
    assert offset > 1000
    result = await probe_file(made["still.tiff"], settings=probe_settings)
    assert (result.kind, result.metadata["width"], result.metadata["height"]) == (
        "image", 320, 240)


async def test_an_animation_of_100000_frames_is_422(
    probe_settings: Settings, tmp_path: Path
) -> None:
    bomb = write(tmp_path, "frames.gif", gif_bytes(100_000))
    assert bomb.stat().st_size < 3_000_000

    with pytest.raises(MediaLimitExceeded, match="100000 frames"):
        await probe_file(bomb, settings=probe_settings)


async def test_a_gif_of_one_frame_is_an_image_and_of_many_a_video(
    probe_settings: Settings, tmp_path: Path
) -> None:
    still = await probe_file(write(tmp_path, "one.gif", gif_bytes(1, 8, 8)),
                             settings=probe_settings)
    moving = await probe_file(write(tmp_path, "ten.gif", gif_bytes(10, 8, 8, delay=10)),
                              settings=probe_settings)

    assert (still.kind, still.content_type, still.metadata["duration"]) == (
        "image", "image/gif", None)
    assert (moving.kind, moving.content_type) == ("video", "image/gif")
    assert moving.metadata["duration"] == pytest.approx(1.0, abs=0.1)
    assert moving.metadata["fps"] == pytest.approx(10.0)


# --- playlists inside the new containers ----------------------------------------------


async def test_a_playlist_behind_an_mpeg_ps_or_asf_header_is_415(
    made: dict[str, Path], probe_settings: Settings, tmp_path: Path
) -> None:
    """Binary enough to get past the sniffer, so ffprobe sees it: the mpeg and asf demuxers
    find no stream in it, and the HLS demuxer is not on the list to read it as a playlist."""
    text = playlist(made["three.mp4"])
    disguised = {
        "pack.mpg": PACK_HEADER + text,
        "private-stream.mpg": PACK_HEADER + b"\x00\x00\x01\xbd"
        + struct.pack(">H", len(text)) + text,
        "header.wmv": ASF_HEADER_GUID + struct.pack("<Q", 30 + len(text)) + b"\0" * 6 + text,
    }
    for name, data in disguised.items():
        with pytest.raises(UnsupportedMedia):
            await probe_file(write(tmp_path, name, data), settings=probe_settings)


@pytest.mark.parametrize("name", ["camcorder.mpg", "windows.wmv"])
async def test_playlist_text_inside_a_real_file_is_inert(
    made: dict[str, Path], probe_settings: Settings, tmp_path: Path, name: str
) -> None:
    """A real 1 s file with a playlist naming a 3 s local video in its bytes: the gate sees
    the 1 s file and nothing of the named one."""
    data = made[name].read_bytes()
    text = playlist(made["three.mp4"]) * 8
    if name.endswith(".mpg"):  # between packs, where a demuxer resynchronises
        data = data[:2048] + text + data[2048:]
    else:  # after the ASF data object, where the demuxer stops
        data = data + text

    result = await probe_file(write(tmp_path, name, data), settings=probe_settings)

    assert result.metadata["duration"] == pytest.approx(1.0, abs=0.1)
    assert result.metadata["video_codec"] in ("mpeg2video", "wmv2")
    assert result.metadata["width"] == 320  # three.mp4 is 320x240 too, but 3 s long
