"""The one reader of ffprobe's JSON: numbers, frame rates, durations, the streams that
count, and :class:`MediaInfo`, the facts the plan compiler decides on.

The upload gate (``core.probe``) runs ffprobe once per file (``-print_format json
-show_format -show_streams``), builds the public ``File.metadata`` with these helpers and
stores the JSON; the compiler reads the stored JSON back through
:meth:`MediaInfo.from_ffprobe`. Both therefore agree on every fps, duration and stream
choice. The compiler also *predicts* a MediaInfo for each step output, so later steps can be
planned before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

#: ffprobe format names of still images (single-frame demuxers).
IMAGE_FORMATS = frozenset({"png_pipe", "jpeg_pipe", "webp_pipe", "image2"})
IMAGE_CODECS = frozenset({"png", "mjpeg", "webp"})
SUBTITLE_FORMATS = frozenset({"srt", "ass", "webvtt"})
#: Stored subtitle formats (``File.metadata.format``) → the demuxer that reads them.
SUBTITLE_FORMAT_NAMES = {"srt": "srt", "vtt": "webvtt", "webvtt": "webvtt", "ass": "ass"}


@dataclass(frozen=True)
class SubtitleTrack:
    """A subtitle stream: its codec (``subrip``, ``ass``, ``webvtt``, ``mov_text``...)."""

    codec: str
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """The probed (or predicted) facts the planner decides on."""

    format_name: str
    kind: str  # video | audio | image | subtitle
    duration: float | None = None
    has_video: bool = False
    has_audio: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    pix_fmt: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    subtitles: tuple[SubtitleTrack, ...] = ()

    @property
    def demuxer(self) -> str:
        """The first name of ffprobe's comma list: ``mov`` for ``mov,mp4,m4a,3gp,3g2,mj2``."""
        return self.format_name.split(",", 1)[0]

    def with_(self, **changes: Any) -> MediaInfo:
        return replace(self, **changes)

    @classmethod
    def from_ffprobe(cls, probe: dict[str, Any]) -> MediaInfo:
        """Build from ``ffprobe -show_format -show_streams -print_format json`` output."""
        fmt = probe.get("format") or {}
        streams = probe.get("streams") or []
        video = first_stream(streams, "video")
        audio = first_stream(streams, "audio")
        subtitles = tuple(
            SubtitleTrack(s.get("codec_name") or "unknown", (s.get("tags") or {}).get("language"))
            for s in streams if s.get("codec_type") == "subtitle"
        )
        format_name = str(fmt.get("format_name") or "")
        return cls(
            format_name=format_name,
            kind=_kind(format_name, video, audio, subtitles),
            duration=media_duration(fmt, streams),
            has_video=video is not None,
            has_audio=audio is not None,
            width=integer((video or {}).get("width")),
            height=integer((video or {}).get("height")),
            fps=frame_rate(video) if video else None,
            video_codec=(video or {}).get("codec_name"),
            pix_fmt=(video or {}).get("pix_fmt"),
            audio_codec=(audio or {}).get("codec_name"),
            sample_rate=integer((audio or {}).get("sample_rate")),
            channels=integer((audio or {}).get("channels")),
            subtitles=subtitles,
        )

    @classmethod
    def from_stored(cls, kind: str, probe: dict[str, Any] | None,
                    metadata: dict[str, Any] | None) -> MediaInfo:
        """From a stored file row: subtitles keep only their format (they never reach
        ffprobe), media files their ffprobe JSON."""
        if kind == "subtitle":
            fmt = (metadata or {}).get("format") or "srt"
            return cls(format_name=SUBTITLE_FORMAT_NAMES.get(fmt, fmt), kind="subtitle")
        return cls.from_ffprobe(probe or {})


def is_cover_art(stream: dict[str, Any]) -> bool:
    """An attached picture (album art in an MP3 or M4A): a video stream that is not video."""
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def first_stream(streams: list[dict[str, Any]], codec_type: str) -> dict[str, Any] | None:
    """The first stream of a type; cover art never counts as the video."""
    for stream in streams:
        if stream.get("codec_type") == codec_type and not (
            codec_type == "video" and is_cover_art(stream)
        ):
            return stream
    return None


def _kind(format_name: str, video: dict | None, audio: dict | None,
          subtitles: tuple[SubtitleTrack, ...]) -> str:
    demuxer = format_name.split(",", 1)[0]
    if demuxer in SUBTITLE_FORMATS or (subtitles and not video and not audio):
        return "subtitle"
    if video is not None and (
        demuxer in IMAGE_FORMATS or (video.get("codec_name") in IMAGE_CODECS and not audio)
    ):
        return "image"
    if video is not None:
        return "video"
    return "audio" if audio is not None else "unknown"


def media_duration(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> float | None:
    """The longest of the container's and the streams' durations; None when none is known."""
    known = [number(value) for value in (fmt.get("duration"),
                                         *(s.get("duration") for s in streams))]
    positive = [seconds for seconds in known if seconds]
    return round(max(positive), 3) if positive else None


def frame_rate(stream: dict[str, Any]) -> float | None:
    """Average frame rate, else ffprobe's r_frame_rate guess, to 3 decimals; None when
    unknown or for cover art."""
    if is_cover_art(stream):
        return None
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            rate = Fraction(str(stream.get(key) or "0/0"))
        except (ValueError, ZeroDivisionError):
            continue
        if rate > 0:
            return round(float(rate), 3)
    return None


def number(value: Any) -> float | None:
    """A finite, non-negative number from ffprobe's strings; None for "N/A", NaN, negatives."""
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) and parsed >= 0 else None


def integer(value: Any) -> int | None:
    parsed = number(value)
    return int(parsed) if parsed is not None else None
