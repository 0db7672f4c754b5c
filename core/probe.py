"""Validate and classify an upload before anything else touches it.

``probe_file`` is what ``POST /files`` runs on the scratch copy of an upload
(docs/API.md "Files"; docs/SECURITY.md #1, #2, #7, #8, #12). Its defences, cheapest first:

1. Sniff the first bytes. Empty files, playlists (HLS, ffconcat), archives,
   documents and executables are refused without running any tool. Text goes to
   ``core.subtitles`` and never to FFmpeg: every accepted media container is
   binary, and text is how ``concat:``/``file:``/``http:`` tricks get in.
2. Read image dimensions from PNG/JPEG/WebP headers, so a 100000x100000 image
   is refused before a decoder allocates a frame for it.
3. Run ffprobe with ``-protocol_whitelist file`` (no network, no nested
   protocols), ``-format_whitelist`` (the HLS and concat demuxers cannot even
   open, including inside an AVI's embedded subtitle chunk) and ``-max_streams``,
   on an absolute ``file:`` URL that can never be read as an option.
4. Check ffprobe's answer: an allowed container, stream count, pixels, fps and
   duration within limits, a real video stream for ``video``.
5. Decode the one frame of an image, which catches truncated files that
   ffprobe still describes.

The kind, content type and extension come from this probe, never from the
client's file name or Content-Type header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import anyio

from core.config import Settings
from core.mediainfo import frame_rate, integer, is_cover_art, media_duration, number

log = logging.getLogger(__name__)

FFPROBE = "ffprobe"
FFMPEG = "ffmpeg"
PROBE_TIMEOUT = 20.0
MAX_STREAMS = 16
MAX_FPS = 240
HEAD_BYTES = 256 * 1024  # enough to reach a JPEG frame header behind EXIF and ICC segments

Kind = Literal["video", "audio", "image", "subtitle"]


class MediaRejected(Exception):
    """The upload is refused; ``reason`` is safe to show the client (no server paths)."""

    http_status: ClassVar[int] = 415

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedMedia(MediaRejected):
    """Not a media file we accept (wrong type, playlist, archive, corrupt) -> HTTP 415."""

    http_status = 415


class MediaLimitExceeded(MediaRejected):
    """A valid file beyond a processing limit (pixels, duration, streams, fps) -> HTTP 422.

    422 rather than 413: 413 is reserved for byte size and quota, which storage
    enforces while streaming; here the bytes were fine but the content is not.
    """

    http_status = 422


class ProbeUnavailable(Exception):
    """ffprobe/ffmpeg is missing on this host: a server fault -> HTTP 503, not the client's."""


@dataclass(frozen=True)
class ProbeResult:
    kind: Kind
    format_name: str
    """ffprobe's demuxer name (``mov,mp4,m4a,3gp,3g2,mj2``), or srt/ass/vtt."""
    content_type: str
    extension: str
    metadata: dict[str, Any]
    """Exactly the public ``File.metadata``."""
    raw: dict[str, Any] | None = None
    """ffprobe's JSON, for the job compiler's MediaInfo; None for subtitles."""
    sanitized: bytes | None = None
    """Subtitles only: the bytes to store instead of the upload."""


@dataclass(frozen=True)
class _Container:
    label: str
    video: tuple[str, str] | None
    """Content type and extension when the file holds video; None: video not accepted."""
    audio: tuple[str, str]
    """Content type and extension when it holds audio only."""


_CONTAINERS: dict[str, _Container] = {
    "mov,mp4,m4a,3gp,3g2,mj2": _Container("mp4", ("video/mp4", "mp4"), ("audio/mp4", "m4a")),
    "matroska,webm": _Container(
        "matroska", ("video/x-matroska", "mkv"), ("audio/x-matroska", "mka")
    ),
    "avi": _Container("avi", ("video/x-msvideo", "avi"), ("video/x-msvideo", "avi")),
    "mpegts": _Container("mpegts", ("video/mp2t", "ts"), ("audio/mp2t", "ts")),
    "flv": _Container("flv", ("video/x-flv", "flv"), ("video/x-flv", "flv")),
    "ogg": _Container("ogg", ("video/ogg", "ogv"), ("audio/ogg", "ogg")),
    "wav": _Container("wav", None, ("audio/wav", "wav")),
    "mp3": _Container("mp3", None, ("audio/mpeg", "mp3")),
    "flac": _Container("flac", None, ("audio/flac", "flac")),
    "aac": _Container("aac", None, ("audio/aac", "aac")),
}
_IMAGE_DEMUXERS = {"png_pipe", "jpeg_pipe", "webp_pipe", "image2"}
_IMAGE_CODECS = {  # codec -> (format label, content type, extension)
    "png": ("png", "image/png", "png"),
    "mjpeg": ("jpeg", "image/jpeg", "jpg"),
    "webp": ("webp", "image/webp", "webp"),
}
_WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}
_DEMUXER_WHITELIST = ",".join([*_CONTAINERS, *sorted(_IMAGE_DEMUXERS)])

# Matched against the start of the file, lower-cased and with a UTF-8 BOM and blanks removed.
_REFUSED_PREFIXES: dict[str, tuple[bytes, ...]] = {
    "HLS playlists are not accepted": (b"#extm3u",),
    "ffconcat lists are not accepted": (b"ffconcat version",),
    "archives are not accepted": (
        b"pk\x03\x04", b"pk\x05\x06", b"\x1f\x8b", b"bzh", b"\xfd7zxz\x00",
        b"7z\xbc\xaf\x27\x1c", b"rar!\x1a\x07", b"\x28\xb5\x2f\xfd",
    ),
    "documents are not accepted": (b"%pdf-", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    "executables are not accepted": (
        b"\x7felf", b"mz", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
    ),
}  # fmt: skip
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


async def probe_file(
    path: Path, *, settings: Settings, timeout: float = PROBE_TIMEOUT
) -> ProbeResult:
    """Classify the file at ``path`` or raise UnsupportedMedia / MediaLimitExceeded.

    ``path`` must be a server-generated scratch file; it is resolved to an
    absolute path so it can never look like an option or a URL to FFmpeg.
    """
    path = Path(await anyio.Path(path).resolve())
    if "%" in str(path):  # FFmpeg's image2 demuxer would read it as a numbered sequence
        raise ValueError("scratch file names must not contain '%'")
    async with await anyio.open_file(path, "rb") as src:
        head = await src.read(HEAD_BYTES)
    _reject_by_signature(head)
    if not _BINARY_BYTES.search(head):
        return await _probe_subtitles(path)
    _check_image_header(head, settings.max_pixels)
    raw = await _ffprobe(path, timeout)
    result = _classify(raw, settings)
    if result.kind == "image":
        await _decode_one_frame(path, timeout)
    return result


def _reject_by_signature(head: bytes) -> None:
    if not head:
        raise UnsupportedMedia("the file is empty")
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:32].lower()
    for reason, prefixes in _REFUSED_PREFIXES.items():
        if start.startswith(prefixes):
            raise UnsupportedMedia(reason)
    if head[257:262] == b"ustar":  # tar keeps its magic after the first file's header
        raise UnsupportedMedia("archives are not accepted")


async def _probe_subtitles(path: Path) -> ProbeResult:
    # Imported here because core.subtitles imports this module's exceptions.
    from core.subtitles import MAX_SUBTITLE_BYTES, detect_and_validate

    async with await anyio.open_file(path, "rb") as src:
        data = await src.read(MAX_SUBTITLE_BYTES + 1)
    info = detect_and_validate(data)
    codec, content_type = {
        "srt": ("subrip", "application/x-subrip"),
        "vtt": ("webvtt", "text/vtt"),
        "ass": ("ass", "text/x-ssa"),
    }[info.format]
    stream = {"index": 0, "type": "subtitle", "codec": codec, "cues": info.cue_count}
    return ProbeResult(
        kind="subtitle",
        format_name=info.format,
        content_type=content_type,
        extension=info.format,
        metadata=_metadata(info.format, duration=info.duration, streams=[stream]),
        sanitized=info.data,
    )


# --- image headers -------------------------------------------------------------------


def _check_image_header(head: bytes, max_pixels: int) -> None:
    size = _image_size(head)
    if size is None:
        return
    width, height = size
    if width == 0 or height == 0:
        raise UnsupportedMedia("image header declares an empty picture")
    if width * height > max_pixels:
        raise MediaLimitExceeded(f"{width}x{height} exceeds the {max_pixels}-pixel limit")


def _image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height declared by a PNG, JPEG or WebP header; None when not one of them
    or when the header is not within ``head``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Walk the JPEG marker segments to the first start-of-frame (SOF0-SOF15)."""
    offset = 2
    while offset + 9 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
            return width, height
        (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
        offset += 2 + length
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a" and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f" and len(head) >= 25:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


# --- running ffprobe / ffmpeg ---------------------------------------------------------


def _input_options() -> list[str]:
    """What every FFmpeg tool gets before the untrusted input (docs/SECURITY.md #1, #2, #7)."""
    return [
        "-protocol_whitelist", "file",
        "-format_whitelist", _DEMUXER_WHITELIST,
        "-max_streams", str(MAX_STREAMS),
    ]  # fmt: skip


def _input_url(path: Path) -> str:
    """An explicit ``file:`` URL: it can neither start with '-' nor name another protocol."""
    return f"file:{path}"


@dataclass(frozen=True)
class _ToolRun:
    returncode: int
    stdout: bytes
    stderr: bytes


async def _run_tool(argv: list[str], timeout: float) -> _ToolRun:
    """Run a tool without a shell and collect its output.

    The process is killed on timeout and on cancellation, so a hostile file that
    makes ffprobe hang cannot leave it running.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise ProbeUnavailable(f"{argv[0]} is not installed") from exc
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        raise UnsupportedMedia("media analysis timed out") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            with anyio.CancelScope(shield=True):
                await proc.wait()
    assert proc.returncode is not None  # communicate() returns once the process has exited
    return _ToolRun(proc.returncode, stdout, stderr)


async def _ffprobe(path: Path, timeout: float) -> dict[str, Any]:
    argv = [
        FFPROBE, "-v", "error", *_input_options(),
        "-print_format", "json", "-show_format", "-show_streams", _input_url(path),
    ]  # fmt: skip
    run = await _run_tool(argv, timeout)
    if b"exceeds max_streams" in run.stderr:
        raise MediaLimitExceeded(f"more than {MAX_STREAMS} streams")
    if run.returncode != 0:
        log.info("ffprobe refused an upload: %s", run.stderr[-500:].decode(errors="replace"))
        raise UnsupportedMedia("not a recognised media file")
    try:
        raw: dict[str, Any] = json.loads(run.stdout)
    except ValueError:
        raise UnsupportedMedia("not a recognised media file") from None
    (raw.get("format") or {}).pop("filename", None)  # a server path: never stored or shown
    return raw


async def _decode_one_frame(path: Path, timeout: float) -> None:
    """Decode the image for real: a truncated PNG still has a valid header."""
    argv = [
        FFMPEG, "-nostdin", "-v", "error", "-xerror", *_input_options(),
        "-i", _input_url(path), "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-",
    ]  # fmt: skip
    run = await _run_tool(argv, timeout)
    if run.returncode != 0:
        raise UnsupportedMedia("the image is truncated or corrupt")


# --- classifying ffprobe's answer ------------------------------------------------------


def _classify(raw: dict[str, Any], settings: Settings) -> ProbeResult:
    fmt: dict[str, Any] = raw.get("format") or {}
    streams: list[dict[str, Any]] = raw.get("streams") or []
    format_name = str(fmt.get("format_name", ""))
    if len(streams) > MAX_STREAMS:
        raise MediaLimitExceeded(f"more than {MAX_STREAMS} streams")
    for stream in streams:
        if stream.get("codec_type") == "video":
            _check_picture(stream, settings.max_pixels)
    if format_name in _IMAGE_DEMUXERS:
        return _image_result(format_name, streams, raw)
    container = _CONTAINERS.get(format_name)
    if container is None:
        raise UnsupportedMedia(f"{format_name or 'this'} format is not accepted")
    return _audio_video_result(_refine(container, fmt, streams), format_name, raw, settings)


def _check_picture(stream: dict[str, Any], max_pixels: int) -> None:
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise UnsupportedMedia("a video stream without a picture size")
    if width * height > max_pixels:
        raise MediaLimitExceeded(f"{width}x{height} exceeds the {max_pixels}-pixel limit")
    fps = frame_rate(stream)
    if fps is not None and fps > MAX_FPS:
        raise MediaLimitExceeded(f"{fps:g} fps exceeds the {MAX_FPS} fps limit")


def _image_result(
    format_name: str, streams: list[dict[str, Any]], raw: dict[str, Any]
) -> ProbeResult:
    codec = streams[0].get("codec_name") if len(streams) == 1 else None
    if codec not in _IMAGE_CODECS:
        raise UnsupportedMedia("only single PNG, JPEG or WebP images are accepted")
    label, content_type, extension = _IMAGE_CODECS[codec]
    summary = _summarize(streams[0]) | {"fps": None, "duration": None}
    return ProbeResult(
        kind="image",
        format_name=format_name,
        content_type=content_type,
        extension=extension,
        metadata=_metadata(label, duration=None, streams=[summary], video=summary),
        raw=raw,
    )


def _audio_video_result(
    container: _Container, format_name: str, raw: dict[str, Any], settings: Settings
) -> ProbeResult:
    fmt: dict[str, Any] = raw.get("format") or {}
    summaries = [_summarize(stream) for stream in raw.get("streams") or []]
    video = next((s for s in summaries if s["type"] == "video" and not s["attached_pic"]), None)
    audio = next((s for s in summaries if s["type"] == "audio"), None)
    kind: Kind
    if video is not None:
        if container.video is None:
            raise UnsupportedMedia(f"{container.label} files cannot carry video")
        kind, (content_type, extension) = "video", container.video
    elif audio is not None:
        kind, (content_type, extension) = "audio", container.audio
    else:
        raise UnsupportedMedia("no audio or video stream")
    duration = _duration(fmt, raw.get("streams") or [], settings.max_media_seconds)
    return ProbeResult(
        kind=kind,
        format_name=format_name,
        content_type=content_type,
        extension=extension,
        metadata=_metadata(
            container.label,
            duration=duration,
            streams=summaries,
            video=video,
            audio=audio,
            bit_rate=integer(fmt.get("bit_rate")),
        ),
        raw=raw,
    )


def _refine(
    container: _Container, fmt: dict[str, Any], streams: list[dict[str, Any]]
) -> _Container:
    """QuickTime and WebM share a demuxer with MP4 and Matroska; tell them apart."""
    if container.label == "mp4" and (fmt.get("tags") or {}).get("major_brand", "").strip() == "qt":
        return _Container("mov", ("video/quicktime", "mov"), ("video/quicktime", "mov"))
    codecs = {stream.get("codec_name") for stream in streams}
    if container.label == "matroska" and codecs <= _WEBM_CODECS:
        return _Container("webm", ("video/webm", "webm"), ("audio/webm", "webm"))
    return container


def _duration(fmt: dict[str, Any], streams: list[dict[str, Any]], limit: float) -> float:
    """The media's duration, which must be known and within the limit."""
    duration = media_duration(fmt, streams)
    if duration is None:
        raise UnsupportedMedia("media without a known duration")
    if duration > limit:
        raise MediaLimitExceeded(f"{duration:.0f} s exceeds the {limit:.0f} s limit")
    return duration


def _summarize(stream: dict[str, Any]) -> dict[str, Any]:
    """The per-stream part of File.metadata: what jobs and clients need, no ffprobe noise."""
    kind = stream.get("codec_type")
    summary: dict[str, Any] = {
        "index": stream.get("index"),
        "type": kind,
        "codec": stream.get("codec_name"),
        "duration": number(stream.get("duration")),
        "bit_rate": integer(stream.get("bit_rate")),
        "language": (stream.get("tags") or {}).get("language"),
    }
    if kind == "video":
        summary |= {
            "width": stream.get("width"),
            "height": stream.get("height"),
            "fps": frame_rate(stream),
            "attached_pic": is_cover_art(stream),
        }
    elif kind == "audio":
        summary |= {
            "sample_rate": integer(stream.get("sample_rate")),
            "channels": stream.get("channels"),
        }
    return summary


def _metadata(
    label: str,
    *,
    duration: float | None,
    streams: list[dict[str, Any]],
    video: dict[str, Any] | None = None,
    audio: dict[str, Any] | None = None,
    bit_rate: int | None = None,
) -> dict[str, Any]:
    """The public File.metadata, with the first video and audio streams lifted to the top."""
    video, audio = video or {}, audio or {}
    return {
        "duration": duration,
        "format": label,
        "width": video.get("width"),
        "height": video.get("height"),
        "fps": video.get("fps"),
        "video_codec": video.get("codec"),
        "audio_codec": audio.get("codec"),
        "sample_rate": audio.get("sample_rate"),
        "channels": audio.get("channels"),
        "bit_rate": bit_rate,
        "streams": streams,
    }
