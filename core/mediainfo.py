"""The one reader of ffprobe's JSON: numbers, frame rates, durations, the streams that
count, and :class:`MediaInfo`, the facts the plan compiler decides on.

The upload gate (``core.probe``) runs ffprobe once per file (``-print_format json
-show_format -show_streams``), builds the public ``File.metadata`` with these helpers and
stores the JSON; the compiler reads the stored JSON back through
:meth:`MediaInfo.from_stored`. Both therefore agree on every fps, duration, frame size, kind
and stream choice. The compiler also *predicts* a MediaInfo for each step output, so later
steps can be planned before anything runs.

What ffprobe's header reading cannot say, the gate measures from the packets and writes into
the same JSON under ``mediaflow_*`` keys, which only this module reads (docs/API.md "Files"):

* ``format.mediaflow_duration``: seconds, measured when no header declares a duration
  (browser and OBS WebM recordings);
* ``stream.mediaflow_frame_rate``: frames per second measured from a video stream's packet
  timestamps, used when ffprobe has no average frame rate;
* ``stream.mediaflow_vfr``: whether the frame intervals vary (variable frame rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

#: ffprobe format names of still images (single-frame demuxers).
IMAGE_FORMATS = frozenset({"png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
                           "image2"})
#: Demuxers that hold a still image when they hold one frame and an animation (a ``video``)
#: otherwise.
ANIMATION_FORMATS = frozenset({"gif"})
#: Keys the upload gate adds to ffprobe's JSON (see the module docstring).
MEASURED_DURATION = "mediaflow_duration"
MEASURED_FRAME_RATE = "mediaflow_frame_rate"
VARIABLE_FRAME_RATE = "mediaflow_vfr"
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
    rotation: int = 0
    """Degrees the picture is turned on display (0, 90, 180, 270); ``width`` and ``height``
    are already the displayed size. FFmpeg turns the frames upright when it decodes them."""

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
        width, height = display_size(video) if video else (None, None)
        return cls(
            format_name=format_name,
            kind=media_kind(fmt, streams),
            duration=media_duration(fmt, streams),
            has_video=video is not None,
            has_audio=audio is not None,
            width=width,
            height=height,
            fps=frame_rate(video) if video else None,
            video_codec=(video or {}).get("codec_name"),
            pix_fmt=(video or {}).get("pix_fmt"),
            audio_codec=(audio or {}).get("codec_name"),
            sample_rate=integer((audio or {}).get("sample_rate")),
            channels=integer((audio or {}).get("channels")),
            subtitles=subtitles,
            rotation=rotation(video) if video else 0,
        )

    @classmethod
    def from_stored(cls, kind: str, probe: dict[str, Any] | None,
                    metadata: dict[str, Any] | None) -> MediaInfo:
        """From a stored file row: subtitles keep only their format (they never reach
        ffprobe), media files their ffprobe JSON (with what the gate measured) and the kind
        the gate decided."""
        if kind == "subtitle":
            fmt = (metadata or {}).get("format") or "srt"
            return cls(format_name=SUBTITLE_FORMAT_NAMES.get(fmt, fmt), kind="subtitle")
        info = cls.from_ffprobe(probe or {})
        return info.with_(kind=kind) if kind in ("video", "audio", "image") else info


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


def media_kind(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> str:
    """``video``, ``audio``, ``image``, ``subtitle`` or ``unknown``: the one decision of what
    a probed file is. A GIF of one frame is an image, an animated one a video."""
    demuxer = str(fmt.get("format_name") or "").split(",", 1)[0]
    video = first_stream(streams, "video")
    audio = first_stream(streams, "audio")
    has_subtitles = any(s.get("codec_type") == "subtitle" for s in streams)
    if demuxer in SUBTITLE_FORMATS or (has_subtitles and not video and not audio):
        return "subtitle"
    if video is not None:
        if demuxer in IMAGE_FORMATS:
            return "image"
        if demuxer in ANIMATION_FORMATS:
            return "video" if (integer(video.get("nb_frames")) or 0) > 1 else "image"
        return "video"
    return "audio" if audio is not None else "unknown"


def header_duration(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> float | None:
    """The longest of the durations the container and its streams declare; None when none
    does."""
    known = [number(value) for value in (fmt.get("duration"),
                                         *(s.get("duration") for s in streams))]
    positive = [seconds for seconds in known if seconds]
    return round(max(positive), 3) if positive else None


def media_duration(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> float | None:
    """The declared duration, else the one the upload gate measured; None when neither is
    known."""
    declared = header_duration(fmt, streams)
    if declared is not None:
        return declared
    measured = number(fmt.get(MEASURED_DURATION))
    return round(measured, 3) if measured else None


def duration_source(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> str | None:
    """``header`` when the file declares its duration, ``measured`` when the gate measured
    it from the packets, None when it is unknown."""
    if header_duration(fmt, streams) is not None:
        return "header"
    return "measured" if number(fmt.get(MEASURED_DURATION)) else None


def frame_rate(stream: dict[str, Any]) -> float | None:
    """Frames per second to 3 decimals; None when unknown or for cover art.

    ffprobe's average frame rate first, then the rate the gate measured from the packet
    timestamps, then ffprobe's ``r_frame_rate`` guess. A rate that only repeats the stream's
    time base (``1000/1`` in a WebM with 1 ms timestamps) says nothing about the frames, so
    it yields to a measured rate and is never used as a guess.
    """
    if is_cover_art(stream):
        return None
    average = _rate(stream.get("avg_frame_rate"))
    guess = _rate(stream.get("r_frame_rate"))
    measured = number(stream.get(MEASURED_FRAME_RATE))
    ticks = _rate(stream.get("time_base"))
    tick_rate = 1 / ticks if ticks else None
    if average and average != tick_rate:
        return round(float(average), 3)
    if measured:
        return round(measured, 3)
    if average:
        return round(float(average), 3)
    if guess and guess != tick_rate:
        return round(float(guess), 3)
    return None


def is_variable_frame_rate(stream: dict[str, Any]) -> bool | None:
    """Whether the gate found the frame intervals varying; None when it could not tell."""
    value = stream.get(VARIABLE_FRAME_RATE)
    return value if isinstance(value, bool) else None


def rotation(stream: dict[str, Any]) -> int:
    """Display rotation in degrees, 0, 90, 180 or 270: the display matrix side data (phone
    video), else the legacy ``rotate`` tag."""
    for side_data in stream.get("side_data_list") or []:
        if isinstance(side_data, dict) and "rotation" in side_data:
            return _quarter_turns(side_data.get("rotation"))
    return _quarter_turns((stream.get("tags") or {}).get("rotate"))


def display_size(stream: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width and height as shown: swapped when the picture is turned a quarter."""
    width, height = integer(stream.get("width")), integer(stream.get("height"))
    return (height, width) if rotation(stream) in (90, 270) else (width, height)


def _quarter_turns(value: Any) -> int:
    try:
        degrees = float(value)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(degrees):
        return 0
    return int(round(degrees / 90)) % 4 * 90


def _rate(value: Any) -> Fraction | None:
    """A positive fraction from ffprobe's ``num/den`` strings; None for ``0/0`` and junk."""
    try:
        rate = Fraction(str(value or "0/0"))
        finite = math.isfinite(float(rate))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return rate if rate > 0 and finite else None


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
