"""Validate and classify an upload before anything else touches it.

``probe_file`` is what ``POST /files`` runs on the scratch copy of an upload
(docs/API.md "Files"; docs/SECURITY.md #1, #2, #7, #8, #12). Its defences, cheapest first:

1. Sniff the first bytes. Empty files, playlists (HLS, ffconcat), archives,
   documents and executables are refused without running any tool. Text goes to
   ``core.subtitles`` and never to FFmpeg: every accepted media container is
   binary, and text is how ``concat:``/``file:``/``http:`` tricks get in.
2. Read image dimensions from PNG/JPEG/WebP/GIF/BMP/TIFF headers, so a
   100000x100000 image is refused before a decoder allocates a frame for it.
3. Run ffprobe with ``-protocol_whitelist file`` (no network, no nested
   protocols), ``-format_whitelist`` (the HLS and concat demuxers cannot even
   open, including inside an AVI's embedded subtitle chunk) and ``-max_streams``,
   on an absolute ``file:`` URL that can never be read as an option. The same run
   lists the timestamps of the first packets (:data:`SAMPLE_PACKETS`), from which
   the frame rate of a stream without an average rate and variable frame timing are
   measured.
4. When no header declares a duration (browser recordings), measure it from the
   packet timestamps: from the sample when it reached the end of the file, else by a
   bounded scan (:data:`MEASURE_MAX_BYTES`, :data:`MEASURE_TIMEOUT` and
   ``MEDIAFLOW_MAX_MEDIA_SECONDS``). The measured values go into the stored ffprobe
   JSON under ``mediaflow_*`` keys that :mod:`core.mediainfo` reads.
5. Check ffprobe's answer: an allowed container, stream count, pixels, fps,
   animation frames and duration within limits, a real video stream for ``video``.
6. Decode the one frame of an image, which catches truncated files that
   ffprobe still describes.

The kind, content type and extension come from this probe, never from the
client's file name or Content-Type header. Which containers are allowed, and what
each could open, is in docs/SECURITY.md #1, #2 and #7; the table of accepted
formats is in docs/API.md "Files".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import re
import statistics
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import anyio

from core.config import Settings
from core.mediainfo import (
    ANIMATION_FORMATS,
    IMAGE_FORMATS,
    MEASURED_DURATION,
    MEASURED_FRAME_RATE,
    VARIABLE_FRAME_RATE,
    display_size,
    duration_source,
    frame_rate,
    header_duration,
    integer,
    is_cover_art,
    is_variable_frame_rate,
    media_duration,
    media_kind,
    number,
    rotation,
)

log = logging.getLogger(__name__)

FFPROBE = "ffprobe"
FFMPEG = "ffmpeg"
PROBE_TIMEOUT = 20.0
MAX_STREAMS = 16
MAX_FPS = 240
#: Frames an animated GIF may hold: every frame is decoded at the full canvas size, and a
#: GIF of tiny frames packs thousands of them into a few kilobytes.
MAX_ANIMATION_FRAMES = 10_000
HEAD_BYTES = 256 * 1024  # enough to reach a JPEG frame header behind EXIF and ICC segments
#: Packets whose timestamps the main ffprobe run lists (frame timing, short files' duration).
SAMPLE_PACKETS = 500
#: A file whose header declares no duration is measured by reading its packet timestamps;
#: larger ones are refused (422) rather than read whole.
MEASURE_MAX_BYTES = 1024 * 1024 * 1024
MEASURE_TIMEOUT = 60.0
#: Frame intervals that differ from the typical one by more than this (and 2 ms, the
#: rounding of millisecond timestamps) make a stream variable frame rate, from two of them on.
VFR_TOLERANCE = 0.1
MAX_TIFF_PAGES = 16

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


#: The audio/video allowlist, by ffprobe's format name. Each entry is a demuxer FFmpeg may
#: open on an upload; what each one could open and why it is safe is in docs/SECURITY.md #2.
_CONTAINERS: dict[str, _Container] = {
    "mov,mp4,m4a,3gp,3g2,mj2": _Container("mp4", ("video/mp4", "mp4"), ("audio/mp4", "m4a")),
    "matroska,webm": _Container(
        "matroska", ("video/x-matroska", "mkv"), ("audio/x-matroska", "mka")
    ),
    "avi": _Container("avi", ("video/x-msvideo", "avi"), ("video/x-msvideo", "avi")),
    "mpegts": _Container("mpegts", ("video/mp2t", "ts"), ("audio/mp2t", "ts")),
    "mpeg": _Container("mpeg", ("video/mpeg", "mpg"), ("video/mpeg", "mpg")),
    "asf": _Container("asf", ("video/x-ms-wmv", "wmv"), ("audio/x-ms-wma", "wma")),
    "flv": _Container("flv", ("video/x-flv", "flv"), ("video/x-flv", "flv")),
    "ogg": _Container("ogg", ("video/ogg", "ogv"), ("audio/ogg", "ogg")),
    "gif": _Container("gif", ("image/gif", "gif"), ("image/gif", "gif")),  # animated GIF
    "wav": _Container("wav", None, ("audio/wav", "wav")),
    "mp3": _Container("mp3", None, ("audio/mpeg", "mp3")),
    "flac": _Container("flac", None, ("audio/flac", "flac")),
    "aac": _Container("aac", None, ("audio/aac", "aac")),
}
_IMAGE_CODECS = {  # codec -> (format label, content type, extension)
    "png": ("png", "image/png", "png"),
    "mjpeg": ("jpeg", "image/jpeg", "jpg"),
    "webp": ("webp", "image/webp", "webp"),
    "gif": ("gif", "image/gif", "gif"),
    "bmp": ("bmp", "image/bmp", "bmp"),
    "tiff": ("tiff", "image/tiff", "tiff"),
}
_WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}
_DEMUXER_WHITELIST = ",".join([*_CONTAINERS, *sorted(IMAGE_FORMATS)])

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
    _check_image_size(await _declared_image_size(path, head), settings.max_pixels)
    raw, packets = await _ffprobe(path, timeout)
    _check_streams(raw, settings)
    _note_frame_timing(raw, packets)
    if _needs_measuring(raw):
        raw["format"][MEASURED_DURATION] = await _measure_duration(path, raw, packets, settings)
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


def _check_image_size(size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is None:
        return
    width, height = size
    if width == 0 or height == 0:
        raise UnsupportedMedia("image header declares an empty picture")
    if width * height > max_pixels:
        raise MediaLimitExceeded(f"{width}x{height} exceeds the {max_pixels}-pixel limit")


async def _declared_image_size(path: Path, head: bytes) -> tuple[int, int] | None:
    """The largest picture an image header declares, read before any decoder runs; None
    when the file is none of the image formats we read."""
    try:
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return await _tiff_size(path, head)
        return _image_size(head)
    except struct.error:  # a header cut off inside a field
        raise UnsupportedMedia("an image whose header is cut off") from None


def _image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height declared by a PNG, JPEG, WebP, GIF or BMP header; None when not one
    of them or when the header is not within ``head``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])  # the logical screen every frame is drawn on
    if head.startswith(b"BM") and len(head) >= 26:
        return _bmp_size(head)
    return None


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


async def _tiff_size(path: Path, head: bytes) -> tuple[int, int]:
    """The largest page a TIFF declares. Its directories (IFDs) may sit anywhere in the file,
    often at the end, so they are read from the file; a TIFF whose size cannot be read, or
    with more than :data:`MAX_TIFF_PAGES` pages, is refused."""
    order = "<" if head[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", head[4:8])
    largest, seen = (0, 0), set[int]()
    async with await anyio.open_file(path, "rb") as src:
        while offset:
            if offset in seen or len(seen) >= MAX_TIFF_PAGES:
                raise UnsupportedMedia(f"TIFF files of more than {MAX_TIFF_PAGES} pages are "
                                       "not accepted")
            seen.add(offset)
            await src.seek(offset)
            count_bytes = await src.read(2)
            if len(count_bytes) < 2:
                break
            (count,) = struct.unpack(order + "H", count_bytes)
            entries = await src.read(12 * count + 4)
            if len(entries) < 12 * count + 4:
                break
            tags = {}
            for n in range(count):
                tag, kind = struct.unpack(order + "HH", entries[12 * n : 12 * n + 4])
                if tag in (256, 257) and kind in (3, 4):  # ImageWidth, ImageLength
                    value = entries[12 * n + 8 : 12 * n + 12]
                    tags[tag] = struct.unpack(order + ("H" if kind == 3 else "I"),
                                              value[: 2 if kind == 3 else 4])[0]
            if 256 not in tags or 257 not in tags:
                break
            page = (tags[256], tags[257])
            largest = max(largest, page, key=lambda size: size[0] * size[1])
            (offset,) = struct.unpack(order + "I", entries[12 * count :])
    if offset or largest == (0, 0):  # a directory cut off or without a size, or none at all
        raise UnsupportedMedia("a TIFF image without a readable size")
    return largest


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


STDERR_TAIL = 64 * 1024


async def _run_tool(argv: list[str], timeout: float,
                    on_line: Callable[[bytes], None] | None = None) -> _ToolRun:
    """Run a tool without a shell and collect its output.

    With ``on_line``, stdout is handed over line by line instead of collected (a packet scan
    of a long file prints a line per packet), and only the tail of stderr is kept.
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
            if on_line is None:
                stdout, stderr = await proc.communicate()
            else:
                stdout = b""
                _, stderr, _ = await asyncio.gather(
                    _each_line(proc.stdout, on_line), _tail(proc.stderr), proc.wait())
    except TimeoutError:
        raise UnsupportedMedia("media analysis timed out") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            with anyio.CancelScope(shield=True):
                await proc.wait()
    assert proc.returncode is not None  # communicate() returns once the process has exited
    return _ToolRun(proc.returncode, stdout, stderr)


async def _each_line(stream: asyncio.StreamReader | None,
                     on_line: Callable[[bytes], None]) -> None:
    assert stream is not None
    async for line in stream:
        on_line(line)


async def _tail(stream: asyncio.StreamReader | None) -> bytes:
    """Read a stream to its end, keeping only its last :data:`STDERR_TAIL` bytes."""
    assert stream is not None
    kept = b""
    while chunk := await stream.read(STDERR_TAIL):
        kept = (kept + chunk)[-STDERR_TAIL:]
    return kept


_PACKET_FIELDS = "packet=stream_index,pts_time,dts_time,duration_time"


async def _ffprobe(path: Path, timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """ffprobe's JSON (format and streams) and the first :data:`SAMPLE_PACKETS` packets'
    timestamps, which are not part of the JSON kept."""
    argv = [
        FFPROBE, "-v", "error", *_input_options(),
        "-print_format", "json", "-show_format", "-show_streams",
        "-show_entries", _PACKET_FIELDS, "-read_intervals", f"%+#{SAMPLE_PACKETS}",
        _input_url(path),
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
    if not isinstance(raw.get("format"), dict):
        raise UnsupportedMedia("not a recognised media file")
    raw["format"].pop("filename", None)  # a server path: never stored or shown
    packets = raw.pop("packets", None)
    return raw, packets if isinstance(packets, list) else []


# --- what the headers do not say: frame timing and duration, measured --------------------


@dataclass
class _StreamTiming:
    """Timestamps of one stream's packets, in seconds."""

    pts: list[float]
    last_dts: float | None = None
    start: float | None = None
    end: float | None = None  # the latest pts + packet duration

    def add(self, pts: float | None, dts: float | None, duration: float | None,
            keep_pts: bool = True) -> None:
        stamp = pts if pts is not None else dts
        if stamp is None:
            return
        if keep_pts:
            self.pts.append(stamp)
        if dts is not None:
            self.last_dts = dts if self.last_dts is None else max(self.last_dts, dts)
        self.start = stamp if self.start is None else min(self.start, stamp)
        finish = stamp + (duration or 0.0)
        self.end = finish if self.end is None else max(self.end, finish)


def _seconds(value: Any) -> float | None:
    """A finite timestamp (negative allowed: audio priming starts before zero)."""
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) else None


def _timings(packets: list[dict[str, Any]]) -> dict[int, _StreamTiming]:
    timings: dict[int, _StreamTiming] = {}
    for packet in packets:
        if not isinstance(packet, dict) or not isinstance(packet.get("stream_index"), int):
            continue
        timing = timings.setdefault(packet["stream_index"], _StreamTiming([]))
        timing.add(_seconds(packet.get("pts_time")), _seconds(packet.get("dts_time")),
                   number(packet.get("duration_time")))
    return timings


def _note_frame_timing(raw: dict[str, Any], packets: list[dict[str, Any]]) -> None:
    """Write each video stream's measured frame rate and whether its frames come at
    varying intervals into its ffprobe entry (``mediaflow_frame_rate``, ``mediaflow_vfr``)."""
    timings = _timings(packets)
    sample_is_whole = len(packets) < SAMPLE_PACKETS
    for stream in raw.get("streams") or []:
        if stream.get("codec_type") != "video" or is_cover_art(stream):
            continue
        timing = timings.get(stream.get("index"))
        if timing is None:
            continue
        stamps = sorted(timing.pts)
        if not sample_is_whole and timing.last_dts is not None:
            # Frames are read in decode order: past the last decode time read, a
            # presentation time may be missing, and its gap would look like a dropped frame.
            stamps = [stamp for stamp in stamps if stamp <= timing.last_dts]
        intervals = [later - earlier for earlier, later in itertools.pairwise(stamps)
                     if later > earlier]
        if not intervals:
            continue
        stream[MEASURED_FRAME_RATE] = round(len(intervals) / sum(intervals), 3)
        if len(intervals) >= 2:
            # One odd interval (a gap after the first frame where audio priming shifted the
            # start, a single dropped frame) does not make a stream variable frame rate.
            typical = statistics.median(intervals)
            slack = max(0.002, VFR_TOLERANCE * typical)
            odd = sum(abs(gap - typical) > slack for gap in intervals)
            stream[VARIABLE_FRAME_RATE] = odd >= 2


def _needs_measuring(raw: dict[str, Any]) -> bool:
    fmt, streams = raw["format"], raw.get("streams") or []
    return media_kind(fmt, streams) in ("video", "audio") and header_duration(
        fmt, streams) is None


async def _measure_duration(path: Path, raw: dict[str, Any], packets: list[dict[str, Any]],
                            settings: Settings) -> float:
    """Seconds from the first packet to the end of the last, for a file whose header has no
    duration: from the sample when it reached the end of the file, else from a scan that
    stops after ``MEDIAFLOW_MAX_MEDIA_SECONDS`` (+1 s) of packets, of a file of at most
    :data:`MEASURE_MAX_BYTES`, within :data:`MEASURE_TIMEOUT`."""
    limit = settings.max_media_seconds
    media = {stream.get("index") for stream in raw.get("streams") or []
             if stream.get("codec_type") in ("video", "audio") and not is_cover_art(stream)}
    if len(packets) < SAMPLE_PACKETS:
        timings = {index: timing for index, timing in _timings(packets).items()
                   if index in media}
    else:
        size = (await anyio.Path(path).stat()).st_size
        if size > MEASURE_MAX_BYTES:
            raise MediaLimitExceeded(
                f"the header declares no duration, and such files are measured only up to "
                f"{MEASURE_MAX_BYTES // (1024 * 1024)} MiB")
        timings = await _scan_packets(path, media, limit)
    starts = [t.start for t in timings.values() if t.start is not None]
    ends = [t.end for t in timings.values() if t.end is not None]
    duration = round(max(ends) - min(starts), 6) if starts and ends else 0.0
    if duration <= 0:
        raise UnsupportedMedia("media without a known duration")
    if duration > limit:
        raise MediaLimitExceeded(f"longer than the {limit:.0f} s limit")  # the scan stopped past it
    return duration


async def _scan_packets(path: Path, media: set[Any], limit: float) -> dict[int, _StreamTiming]:
    """Every packet's timestamps up to ``limit`` + 1 s into the file, read without decoding
    and folded as they stream in (a long file has millions of packets)."""
    timings: dict[int, _StreamTiming] = {}

    def take(line: bytes) -> None:
        fields = dict(part.split("=", 1) for part in line.decode("ascii", "replace").strip()
                      .split("|") if "=" in part)
        index = integer(fields.get("stream_index"))
        if index is None or index not in media:
            return
        timings.setdefault(index, _StreamTiming([])).add(
            _seconds(fields.get("pts_time")), _seconds(fields.get("dts_time")),
            number(fields.get("duration_time")), keep_pts=False)

    argv = [
        FFPROBE, "-v", "error", *_input_options(),
        "-show_entries", _PACKET_FIELDS, "-read_intervals", f"%+{math.ceil(limit) + 1}",
        "-print_format", "compact=print_section=0", _input_url(path),
    ]  # fmt: skip
    try:
        run = await _run_tool(argv, MEASURE_TIMEOUT, on_line=take)
    except UnsupportedMedia:
        raise UnsupportedMedia("measuring the duration timed out") from None
    if run.returncode != 0:
        raise UnsupportedMedia("media without a known duration")
    return timings


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


def _check_streams(raw: dict[str, Any], settings: Settings) -> None:
    """Stream count and picture sizes: checked before anything reads further."""
    streams: list[dict[str, Any]] = raw.get("streams") or []
    if len(streams) > MAX_STREAMS:
        raise MediaLimitExceeded(f"more than {MAX_STREAMS} streams")
    for stream in streams:
        if stream.get("codec_type") == "video":
            _check_picture_size(stream, settings.max_pixels)


def _classify(raw: dict[str, Any], settings: Settings) -> ProbeResult:
    fmt: dict[str, Any] = raw.get("format") or {}
    streams: list[dict[str, Any]] = raw.get("streams") or []
    format_name = str(fmt.get("format_name", ""))
    _check_streams(raw, settings)
    for stream in streams:
        if stream.get("codec_type") == "video":
            _check_frame_rate(stream)
    kind = media_kind(fmt, streams)
    if kind == "image" or format_name in IMAGE_FORMATS:
        return _image_result(format_name, streams, raw)
    container = _CONTAINERS.get(format_name)
    if container is None:
        raise UnsupportedMedia(f"{format_name or 'this'} format is not accepted")
    if format_name in ANIMATION_FORMATS:
        _check_animation(streams)
    return _audio_video_result(_refine(container, fmt, streams), format_name, raw, settings)


def _check_picture_size(stream: dict[str, Any], max_pixels: int) -> None:
    width, height = integer(stream.get("width")) or 0, integer(stream.get("height")) or 0
    if width <= 0 or height <= 0:
        raise UnsupportedMedia("a video stream without a picture size")
    if width * height > max_pixels:
        raise MediaLimitExceeded(f"{width}x{height} exceeds the {max_pixels}-pixel limit")


def _check_frame_rate(stream: dict[str, Any]) -> None:
    fps = frame_rate(stream)
    if fps is not None and fps > MAX_FPS:
        raise MediaLimitExceeded(f"{fps:g} fps exceeds the {MAX_FPS} fps limit")


def _check_animation(streams: list[dict[str, Any]]) -> None:
    frames = max((integer(s.get("nb_frames")) or 0 for s in streams), default=0)
    if frames > MAX_ANIMATION_FRAMES:
        raise MediaLimitExceeded(
            f"{frames} frames exceed the {MAX_ANIMATION_FRAMES}-frame limit of animations")


def _image_result(
    format_name: str, streams: list[dict[str, Any]], raw: dict[str, Any]
) -> ProbeResult:
    codec = streams[0].get("codec_name") if len(streams) == 1 else None
    if codec not in _IMAGE_CODECS:
        raise UnsupportedMedia("only single PNG, JPEG, WebP, GIF, BMP or TIFF images are "
                               "accepted")
    label, content_type, extension = _IMAGE_CODECS[codec]
    summary = _summarize(streams[0]) | {"fps": None, "duration": None, "vfr": None}
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
    streams = raw.get("streams") or []
    duration = _duration(fmt, streams, settings.max_media_seconds)
    return ProbeResult(
        kind=kind,
        format_name=format_name,
        content_type=content_type,
        extension=extension,
        metadata=_metadata(
            container.label,
            duration=duration,
            duration_source=duration_source(fmt, streams),
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
        width, height = display_size(stream)
        summary |= {
            "width": width,
            "height": height,
            "fps": frame_rate(stream),
            "vfr": is_variable_frame_rate(stream),
            "rotation": rotation(stream),
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
    duration_source: str | None = None,
    video: dict[str, Any] | None = None,
    audio: dict[str, Any] | None = None,
    bit_rate: int | None = None,
) -> dict[str, Any]:
    """The public File.metadata, with the first video and audio streams lifted to the top."""
    video, audio = video or {}, audio or {}
    return {
        "duration": duration,
        "duration_source": duration_source,
        "format": label,
        "width": video.get("width"),
        "height": video.get("height"),
        "fps": video.get("fps"),
        "vfr": video.get("vfr"),
        "rotation": video.get("rotation"),
        "video_codec": video.get("codec"),
        "audio_codec": audio.get("codec"),
        "sample_rate": audio.get("sample_rate"),
        "channels": audio.get("channels"),
        "bit_rate": bit_rate,
        "streams": streams,
    }
