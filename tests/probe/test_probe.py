"""probe_file on real media and on every hostile upload of docs/SECURITY.md #1, #2, #7,
#8 and #12."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from core import probe
from core.config import Settings
from core.probe import MediaLimitExceeded, UnsupportedMedia, probe_file

from .samples import ASS, SRT, VTT


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def png_bytes(width: int, height: int) -> bytes:
    """A structurally valid PNG (correct CRCs) whose IHDR declares ``width`` x ``height``."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (1 + 3 * 1000) * 10)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --- accepted media ------------------------------------------------------------------


async def test_mp4_is_video_with_its_properties(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    result = await probe_file(media["video.mp4"], settings=probe_settings)

    assert (result.kind, result.content_type, result.extension) == ("video", "video/mp4", "mp4")
    meta = result.metadata
    assert (meta["width"], meta["height"], meta["fps"]) == (320, 240, 25.0)
    assert (meta["video_codec"], meta["audio_codec"]) == ("h264", "aac")
    assert meta["duration"] == pytest.approx(1.0, abs=0.1)
    assert meta["sample_rate"] == 48000 and meta["channels"] == 2
    assert meta["format"] == "mp4" and meta["bit_rate"] > 0
    assert [s["type"] for s in meta["streams"]] == ["video", "audio"]
    assert result.raw is not None and result.raw["format"]["format_name"].startswith("mov")


@pytest.mark.parametrize(
    ("name", "content_type", "codec"),
    [
        ("audio.wav", "audio/wav", "pcm_s16le"),
        ("audio.mp3", "audio/mpeg", "mp3"),
        ("audio.m4a", "audio/mp4", "aac"),
        ("cover.mp3", "audio/mpeg", "mp3"),  # cover art is not a video stream
    ],
)
async def test_audio_files_are_audio(
    media: dict[str, Path], probe_settings: Settings, name: str, content_type: str, codec: str
) -> None:
    result = await probe_file(media[name], settings=probe_settings)

    assert (result.kind, result.content_type) == ("audio", content_type)
    assert result.metadata["audio_codec"] == codec
    assert result.metadata["width"] is None
    assert result.metadata["duration"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    ("name", "content_type", "extension"),
    [("image.png", "image/png", "png"), ("image.jpg", "image/jpeg", "jpg")],
)
async def test_images_are_images(
    media: dict[str, Path], probe_settings: Settings, name: str, content_type: str, extension: str
) -> None:
    result = await probe_file(media[name], settings=probe_settings)

    assert (result.kind, result.content_type, result.extension) == (
        "image",
        content_type,
        extension,
    )
    assert (result.metadata["width"], result.metadata["height"]) == (320, 240)
    assert result.metadata["duration"] is None


async def test_content_type_comes_from_the_bytes_not_the_name(
    media: dict[str, Path], probe_settings: Settings, tmp_path: Path
) -> None:
    disguised = tmp_path / "song.mp4"
    shutil.copy(media["image.png"], disguised)

    result = await probe_file(disguised, settings=probe_settings)

    assert (result.kind, result.content_type) == ("image", "image/png")


async def test_ffprobe_runs_with_protocol_and_format_whitelists(
    media: dict[str, Path], probe_settings: Settings, tool_calls: list[list[str]]
) -> None:
    await probe_file(media["video.mp4"], settings=probe_settings)

    (argv,) = tool_calls
    assert argv[0] == "ffprobe"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert "hls" not in argv[argv.index("-format_whitelist") + 1].split(",")
    assert argv[-1] == f"file:{media['video.mp4']}"


# --- hostile uploads -------------------------------------------------------------------


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("video.mp4", b"\0" * 100)
    return buffer.getvalue()


# name -> (content, expected reason); none of them may reach ffprobe
REFUSED_BY_SNIFFING: dict[str, tuple[bytes | str, str]] = {
    "local.m3u8": ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n", "HLS"),
    "local-disguised.mp4": ("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "HLS"),
    "remote.mp4": ("\ufeff  #extm3u\n#EXTINF:10,\nhttp://169.254.169.254/latest/\n", "HLS"),
    "list.ffconcat": ("ffconcat version 1.0\nfile /etc/passwd\n", "ffconcat"),
    "headerless.m3u8": ("#EXTINF:10,\nhttp://example.com/a.ts\n", "not SRT"),
    "concat.mp4": ("concat:/etc/passwd|/etc/hosts", "not SRT"),
    "subfile.mkv": ("subfile,,start,0,end,100,,:/etc/passwd", "not SRT"),
    "text.mp4": ("just some text, renamed to look like a video\n", "not SRT"),
    "empty.mp4": (b"", "empty"),
    "archive.mp4": (zip_archive(), "archive"),
    "archive.mkv": (gzip.compress(b"not media"), "archive"),
    "document.mp4": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\0" * 50, "document"),
    "program.mp4": (Path("/bin/true").read_bytes(), "executable"),
    "windows.mp4": (b"MZ\x90\x00\x03" + b"\0" * 100, "executable"),
}


@pytest.mark.parametrize("name", REFUSED_BY_SNIFFING)
async def test_playlists_text_archives_executables_are_refused_before_ffprobe(
    probe_settings: Settings, tmp_path: Path, tool_calls: list[list[str]], name: str
) -> None:
    content, reason = REFUSED_BY_SNIFFING[name]

    with pytest.raises(UnsupportedMedia, match=reason):
        await probe_file(write(tmp_path, name, content), settings=probe_settings)
    assert tool_calls == []


async def test_ffprobe_itself_refuses_a_playlist_that_got_past_the_sniffer(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """Defence in depth: with our flags ffprobe will not open the HLS demuxer, so a local
    file named in a playlist (here a real, readable mp4) is never read."""
    playlist = write(tmp_path, "p.m3u8", f"#EXTM3U\n#EXTINF:1,\n{media['video.mp4']}\n")

    with pytest.raises(UnsupportedMedia):
        await probe._ffprobe(playlist, timeout=10)


async def test_truncated_png_is_refused(
    media: dict[str, Path], probe_settings: Settings, tmp_path: Path
) -> None:
    """Half a PNG keeps a valid header that ffprobe describes; decoding the frame fails."""
    whole = media["noise.png"].read_bytes()
    path = write(tmp_path, "png-truncated.png", whole[: len(whole) // 2])

    with pytest.raises(UnsupportedMedia):
        await probe_file(path, settings=probe_settings)


async def test_truncated_mp4_is_refused(
    media: dict[str, Path], probe_settings: Settings, tmp_path: Path
) -> None:
    whole = media["video.mp4"].read_bytes()
    path = write(tmp_path, "cut.mp4", whole[: len(whole) // 2])

    with pytest.raises(UnsupportedMedia):
        await probe_file(path, settings=probe_settings)


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\1",
        b"RIFF\x10\0\0\0WEBPVP8 \x10\0\0\0\x90\x15\0\x9d\x01\x2a\x40",
        b"RIFF\x10\0\0\0WEBPVP8L\x10\0\0\0\x2f\x3f",
        b"\xff\xd8\xff\xe0\0\x10JFIF\0",
    ],
    ids=["png", "webp-vp8", "webp-vp8l", "jpeg"],
)
async def test_image_cut_inside_its_header_is_refused(
    probe_settings: Settings, tmp_path: Path, head: bytes
) -> None:
    with pytest.raises(UnsupportedMedia):
        await probe_file(write(tmp_path, "cut", head), settings=probe_settings)


async def test_random_bytes_are_refused(probe_settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "noise.mp4", bytes(range(256)) * 64)

    with pytest.raises(UnsupportedMedia):
        await probe_file(path, settings=probe_settings)


async def test_formats_outside_the_allowlist_are_refused(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    with pytest.raises(UnsupportedMedia):
        await probe_file(media["video.nut"], settings=probe_settings)


@pytest.mark.parametrize("size", [(100_000, 100_000), (20_000, 20_000)])
async def test_huge_image_header_is_refused_before_any_decode(
    probe_settings: Settings, tmp_path: Path, tool_calls: list[list[str]], size: tuple[int, int]
) -> None:
    path = write(tmp_path, "bomb.png", png_bytes(*size))

    with pytest.raises(MediaLimitExceeded, match="pixel limit"):
        await probe_file(path, settings=probe_settings)
    assert tool_calls == []


async def test_video_over_the_pixel_limit_is_refused(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    with pytest.raises(MediaLimitExceeded, match="pixel limit"):
        await probe_file(
            media["video.mp4"],
            settings=probe_settings.model_copy(update={"max_pixels": 320 * 239}),
        )


async def test_media_longer_than_the_limit_is_refused(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    short_limit = probe_settings.model_copy(update={"max_media_seconds": 0.5})

    with pytest.raises(MediaLimitExceeded, match="s limit"):
        await probe_file(media["video.mp4"], settings=short_limit)


async def test_too_many_streams_are_refused(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    with pytest.raises(MediaLimitExceeded, match="streams"):
        await probe_file(media["streams20.mkv"], settings=probe_settings)


async def test_absurd_frame_rate_is_refused(
    media: dict[str, Path], probe_settings: Settings
) -> None:
    with pytest.raises(MediaLimitExceeded, match="fps"):
        await probe_file(media["fps1000.mkv"], settings=probe_settings)


async def test_a_tool_that_hangs_is_killed_on_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]

    with pytest.raises(UnsupportedMedia, match="timed out"):
        await probe._run_tool(argv, timeout=0.5)

    with pytest.raises(ProcessLookupError):  # killed and reaped, not orphaned
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("a.srt", SRT, "application/x-subrip"),
        ("a.vtt", VTT, "text/vtt"),
        ("a.ass", ASS, "text/x-ssa"),
    ],
)
async def test_subtitles_are_classified_without_ffprobe(
    probe_settings: Settings,
    tmp_path: Path,
    tool_calls: list[list[str]],
    name: str,
    body: str,
    content_type: str,
) -> None:
    result = await probe_file(write(tmp_path, name, body), settings=probe_settings)

    assert (result.kind, result.content_type) == ("subtitle", content_type)
    assert result.format_name == result.extension == name.split(".")[1]
    assert result.metadata["duration"] == pytest.approx(4.25 if name != "a.vtt" else 3604.25)
    assert result.sanitized is not None and b"[Fonts]" not in result.sanitized
    assert tool_calls == []
