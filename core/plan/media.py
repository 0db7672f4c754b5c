"""What the planner needs to know about a media file, built from ffprobe's JSON.

The planner never probes: the API/worker probe uploads once (``ffprobe -v error
-print_format json -show_format -show_streams``) and hand the parsed JSON to
:meth:`MediaInfo.from_ffprobe`. The planner also *predicts* a MediaInfo for each step output
so later steps can be planned before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

#: ffprobe format names of still images (single-frame demuxers).
IMAGE_FORMATS = frozenset({"png_pipe", "jpeg_pipe", "webp_pipe", "image2"})
IMAGE_CODECS = frozenset({"png", "mjpeg", "webp"})
SUBTITLE_FORMATS = frozenset({"srt", "ass", "webvtt"})


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
        video = _first(streams, "video", skip_cover_art=True)
        audio = _first(streams, "audio")
        subtitles = tuple(
            SubtitleTrack(s.get("codec_name") or "unknown", (s.get("tags") or {}).get("language"))
            for s in streams if s.get("codec_type") == "subtitle"
        )
        format_name = str(fmt.get("format_name") or "")
        return cls(
            format_name=format_name,
            kind=_kind(format_name, video, audio, subtitles),
            duration=_duration(fmt, streams),
            has_video=video is not None,
            has_audio=audio is not None,
            width=_int((video or {}).get("width")),
            height=_int((video or {}).get("height")),
            fps=_fps(video),
            video_codec=(video or {}).get("codec_name"),
            pix_fmt=(video or {}).get("pix_fmt"),
            audio_codec=(audio or {}).get("codec_name"),
            sample_rate=_int((audio or {}).get("sample_rate")),
            channels=_int((audio or {}).get("channels")),
            subtitles=subtitles,
        )


def _first(streams: list[dict], codec_type: str, skip_cover_art: bool = False) -> dict | None:
    for stream in streams:
        if stream.get("codec_type") != codec_type:
            continue
        if skip_cover_art and (stream.get("disposition") or {}).get("attached_pic"):
            continue
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


def _duration(fmt: dict, streams: list[dict]) -> float | None:
    candidates = [fmt.get("duration"), *(s.get("duration") for s in streams)]
    for value in candidates:
        seconds = _float(value)
        if seconds is not None and seconds > 0:
            return seconds
    return None


def _fps(video: dict | None) -> float | None:
    if not video:
        return None
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            rate = Fraction(str(video.get(key) or "0/0"))
        except (ValueError, ZeroDivisionError):
            continue
        if rate > 0:
            return round(float(rate), 6)
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
