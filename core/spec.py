"""Job specifications (docs/API.md, "Job spec"): pydantic models, validation and
media-reference helpers.

Everything here is pure: no I/O, no database, no ffmpeg. The API validates a request body
with :class:`JobSpec`, then checks file ownership with :func:`referenced_file_ids` and file
kinds with :func:`check_kinds`; the planner (``core.plan``) compiles a valid spec to argv.

Decisions the contract leaves open, made here:

* Every model forbids unknown fields, so a typo is a 422 with its field path rather than a
  silently ignored option.
* ``params`` is validated against the model for ``type``; errors carry locations such as
  ``("params", "position")`` or ``("params", "steps", 2, "params", "text")``.
* Media parameters take a file id (a canonical UUID). Inside ``combined`` steps they may also
  name an earlier step's output as ``"@<step id>"``. Each parameter declares the file kinds
  it accepts with :class:`Accepts`; one table therefore drives ownership, kind checks and
  reference checks.
* A step's output is a ``video`` (every step type works on a base video). The exceptions:
  a step kept in ``outputs`` while ``output.video_codec`` is ``none`` is audio-only, so
  later steps may not use it as video; and ``thumbnails``/``package`` make a set of files
  (:data:`MULTI_FILE_TYPES`) that no step may use at all.
* ``audio_overlay.audio`` accepts an audio file or a video (its audio track is used);
  ``video_overlay.overlay`` accepts an image or a video; ``subtitles.subtitles`` a subtitle.
* Audio-only containers (m4a, mp3, wav, flac, ogg) imply ``video_codec: none`` and their
  natural audio codec when those fields are not given; webm implies vp9/opus. Explicit
  incompatible combinations are refused; ``pcm_s16le`` is read as ``pcm``.
* ``crf`` is None unless given (23 is used then), so a stored spec with ``video_bitrate``
  re-validates: the two are alternatives.
* ``video_codec``/``audio_codec`` ``copy`` are refused up front when the job necessarily
  re-encodes that stream (drawing on video, mixing audio, resizing).
* ``filename`` is a display name only; it never reaches ffmpeg or a storage path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from core.containers import (
    CONTAINER_AUDIO_CODECS,
    CONTAINER_DEFAULT_CODECS,
    CONTAINER_VIDEO_CODECS,
    SUBTITLE_CONTAINERS,
)
from core.enums import PRIORITY_DEFAULT, PRIORITY_HIGHEST, PRIORITY_LOWEST
from core.styles import FONTS, NAMED_COLORS

# --------------------------------------------------------------------------- vocabularies

JobType = Literal[
    "join", "audio_overlay", "text_overlay", "subtitles", "video_overlay", "transcode", "trim",
    "thumbnails", "package", "combined",
]
StepType = Literal[
    "join", "audio_overlay", "text_overlay", "subtitles", "video_overlay", "transcode", "trim",
    "thumbnails", "package",
]
#: Step types whose result is a set of files (a ``package`` File), never a media stream:
#: nothing may use their output, and they never share a run with the step before them.
MULTI_FILE_TYPES = frozenset({"thumbnails", "package"})
MediaKind = Literal["video", "audio", "image", "subtitle"]
Position = Literal[
    "top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom",
    "bottom-right",
]
Container = Literal["mp4", "mkv", "mov", "webm", "m4a", "mp3", "wav", "flac", "ogg"]
VideoCodec = Literal["h264", "hevc", "vp9", "av1", "copy", "none"]
#: ``pcm_s16le`` is the old name of ``pcm``; stored specs that use it still validate.
AudioCodecName = Literal["aac", "mp3", "opus", "vorbis", "flac", "pcm", "pcm_s16le", "copy",
                         "none"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow",
]

#: Upper bound for any time value (offsets, start/end, fades): one day. It keeps numbers that
#: we format into filtergraphs short and finite; the real media limit is a setting.
MAX_SECONDS = 86_400.0
MAX_FRAME_PX = 8192

# --------------------------------------------------------------------------- scalar types

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_STEP_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_HEX_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_LANGUAGE_RE = re.compile(r"^[a-z]{3}$")
_BITRATE_RE = re.compile(r"^([1-9][0-9]{0,5})([kM])$")
REF_PREFIX = "@"


def _media_ref(value: str) -> str:
    """A file id (canonical UUID, lower-cased) or an ``@<step id>`` reference."""
    if _UUID_RE.match(value):
        return value.lower()
    if value.startswith(REF_PREFIX) and _STEP_ID_RE.match(value[1:]):
        return value
    raise PydanticCustomError(
        "media_ref", "must be a file id (UUID) or '@<step id>' naming an earlier step"
    )


def _color(value: str) -> str:
    """``#RRGGBB[AA]`` (upper-cased) or an allowlisted colour name (lower-cased)."""
    if _HEX_COLOR_RE.match(value):
        return value.upper()
    if value.lower() in NAMED_COLORS:
        return value.lower()
    raise PydanticCustomError(
        "color", "must be #RRGGBB, #RRGGBBAA or one of: {names}",
        {"names": ", ".join(sorted(NAMED_COLORS))},
    )


def _font(value: str) -> str:
    if value not in FONTS:
        raise PydanticCustomError(
            "font", "unknown font; choose one of: {names}", {"names": ", ".join(FONTS)}
        )
    return value


def _language(value: str) -> str:
    value = value.lower()
    if not _LANGUAGE_RE.match(value):
        raise PydanticCustomError("language", "must be an ISO 639-2/B code of 3 letters")
    return value


def _display_filename(value: str) -> str:
    """A display name only: one path component, printable, not hidden, not option-like."""
    if any(sep in value for sep in ("/", "\\")) or any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value
    ):
        raise PydanticCustomError(
            "filename", "must not contain path separators or control characters"
        )
    if value.startswith(("-", ".")) or value != value.strip():
        raise PydanticCustomError(
            "filename", "must not start with '-' or '.' nor start or end with whitespace"
        )
    return value


def _drawable_text(value: str) -> str:
    """Text for drawtext: valid UTF-8, no control characters other than newline and tab.
    Windows and old-Mac line ends become plain newlines."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise PydanticCustomError("text", "must be valid Unicode (no lone surrogates)")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise PydanticCustomError(
            "text", "must not contain control characters other than newline and tab"
        )
    return value


def bitrate_bps(value: str) -> int:
    """``"2500k"`` → 2500000, ``"5M"`` → 5000000 (the value has passed :data:`VideoBitrate`
    or :data:`AudioBitrate`)."""
    match = _BITRATE_RE.match(value)
    if match is None:
        raise ValueError(f"not a bitrate: {value!r}")
    return int(match.group(1)) * (1000 if match.group(2) == "k" else 1_000_000)


def _bitrate_between(low: int, high: int) -> Any:
    def check(value: str) -> str:
        if not _BITRATE_RE.match(value):
            raise PydanticCustomError(
                "bitrate", "must be a whole number of kilobits or megabits per second, such "
                           "as '2500k' or '5M'")
        if not low <= bitrate_bps(value) <= high:
            raise PydanticCustomError("bitrate", "must be between {low} and {high} bit/s",
                                      {"low": low, "high": high})
        return value
    return AfterValidator(check)


def _audio_codec_alias(value: str) -> str:
    return "pcm" if value == "pcm_s16le" else value


_HTTP_URL = TypeAdapter(AnyHttpUrl)


def _webhook_url(value: str) -> str:
    """An absolute http(s) URL with a usable port; kept as given. Private targets are
    refused by the API."""
    url = _HTTP_URL.validate_python(value)
    if any(ch.isspace() for ch in value):
        raise PydanticCustomError("url", "must not contain whitespace")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise PydanticCustomError("url", "the port must be 1-65535")
    return value


MediaRef = Annotated[str, AfterValidator(_media_ref), Field(json_schema_extra={
    "pattern": f"^(?:{_UUID_RE.pattern[1:-1]}|@{_STEP_ID_RE.pattern[1:-1]})$",
    "description": "a file id, or '@<step id>' inside a combined job"})]
StepId = Annotated[str, Field(pattern=_STEP_ID_RE.pattern)]
Color = Annotated[str, AfterValidator(_color)]
FontName = Annotated[str, AfterValidator(_font)]
Language = Annotated[str, AfterValidator(_language)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Volume = Annotated[float, Field(ge=0, le=4, allow_inf_nan=False)]
FrameSize = Annotated[int, Field(ge=16, le=MAX_FRAME_PX, multiple_of=2)]
Coordinate = Annotated[int, Field(ge=0, le=MAX_FRAME_PX)]
Margin = Annotated[int, Field(ge=0, le=2000)]
FontSize = Annotated[int, Field(ge=8, le=512)]
AudioCodec = Annotated[AudioCodecName, AfterValidator(_audio_codec_alias)]
VideoBitrate = Annotated[str, _bitrate_between(32_000, 100_000_000)]
AudioBitrate = Annotated[str, _bitrate_between(8_000, 640_000)]
EvenHeight = Annotated[int, Field(ge=16, le=4320, multiple_of=2)]
#: crf when the output gives neither ``crf`` nor ``video_bitrate``.
DEFAULT_CRF = 23


class Accepts:
    """Field metadata: the media kinds a parameter accepts (file ids and step refs alike).

    ``video: Annotated[MediaRef, Accepts("video")]`` — :func:`media_uses` reads it, so one
    declaration drives ownership, kind and reference checks.
    """

    def __init__(self, *kinds: str) -> None:
        self.kinds = frozenset(kinds)


# --------------------------------------------------------------------------- errors


class SpecError(ValueError):
    """A job spec that is well-formed but cannot run: the API answers 422 with ``loc``.

    Raised by the planner (e.g. ``join`` in copy mode over incompatible inputs) and returned by
    :func:`check_kinds`. ``loc`` is relative to the JobSpec body, like pydantic's.
    """

    def __init__(self, loc: tuple[str | int, ...], msg: str, type: str = "spec_error") -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self.loc = tuple(loc)
        self.msg = msg
        self.type = type

    def as_detail(self) -> dict[str, Any]:
        """The FastAPI 422 ``detail`` item shape."""
        return {"type": self.type, "loc": list(self.loc), "msg": self.msg}


#: (loc, error type, message, input) — one validation error found by a model validator.
ErrorItem = tuple[tuple[str | int, ...], str, str, Any]


def _raise_errors(errors: list[ErrorItem]) -> None:
    """Raise one ValidationError carrying every (loc, type, message, input) found."""
    if errors:
        raise ValidationError.from_exception_data(
            "JobSpec",
            [
                InitErrorDetails(type=PydanticCustomError(kind, msg), loc=loc, input=value)
                for loc, kind, msg, value in errors
            ],
        )


# --------------------------------------------------------------------------- models


class SpecModel(BaseModel):
    """Base for every spec model: unknown fields are errors, not silently dropped, and
    values are taken as the JSON types they are (``true`` is not a volume, ``"3"`` is not
    a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class OutputSpec(SpecModel):
    """How the result is written. ``filename`` is a display name; it never reaches ffmpeg.

    ``crf`` and ``video_bitrate`` are alternatives (neither: crf :data:`DEFAULT_CRF`);
    ``audio_bitrate`` replaces the audio encoder's default rate.
    """

    container: Container = "mp4"
    video_codec: VideoCodec = "h264"
    audio_codec: AudioCodec = "aac"
    crf: int | None = Field(default=None, ge=0, le=51)
    video_bitrate: VideoBitrate | None = None
    audio_bitrate: AudioBitrate | None = None
    preset: Preset = "veryfast"
    width: FrameSize | None = None
    height: FrameSize | None = None
    fps: float | None = Field(default=None, ge=1, le=120, allow_inf_nan=False)
    filename: Annotated[str, Field(min_length=1, max_length=255),
                        AfterValidator(_display_filename)] | None = None

    @model_validator(mode="after")
    def _codecs_fit_container(self) -> OutputSpec:
        video_default, audio_default = CONTAINER_DEFAULT_CODECS.get(self.container, (None, None))
        if video_default and "video_codec" not in self.model_fields_set:
            self.video_codec = video_default  # type: ignore[assignment]
        if audio_default and "audio_codec" not in self.model_fields_set:
            self.audio_codec = audio_default  # type: ignore[assignment]
        errors: list[ErrorItem] = []
        if self.video_codec not in CONTAINER_VIDEO_CODECS[self.container]:
            errors.append((("video_codec",), "codec_container",
                           f"{self.container} cannot hold video_codec {self.video_codec}",
                           self.video_codec))
        if self.audio_codec not in CONTAINER_AUDIO_CODECS[self.container]:
            errors.append((("audio_codec",), "codec_container",
                           f"{self.container} cannot hold audio_codec {self.audio_codec}",
                           self.audio_codec))
        if self.video_codec == "none" and self.audio_codec == "none":
            errors.append((("audio_codec",), "no_streams",
                           "video_codec and audio_codec cannot both be none", "none"))
        if self.video_codec == "copy" and self.changes_frames:
            errors.append((("video_codec",), "copy_conflict",
                           "copy cannot be combined with width, height or fps", "copy"))
        errors += self._rate_errors()
        _raise_errors(errors)
        return self

    def _rate_errors(self) -> Iterator[ErrorItem]:
        if self.crf is not None and self.video_bitrate is not None:
            yield (("video_bitrate",), "rate_conflict",
                   "give crf or video_bitrate, not both", self.video_bitrate)
        if self.video_bitrate is not None and self.video_codec in ("copy", "none"):
            yield (("video_bitrate",), "rate_conflict",
                   f"video_codec {self.video_codec} encodes no video", self.video_bitrate)
        if self.audio_bitrate is not None and self.audio_codec in ("copy", "none", "flac", "pcm"):
            yield (("audio_bitrate",), "rate_conflict",
                   f"audio_codec {self.audio_codec} takes no bitrate", self.audio_bitrate)

    @property
    def changes_frames(self) -> bool:
        """Whether the output asks for a frame size or rate (which forces a video re-encode)."""
        return self.width is not None or self.height is not None or self.fps is not None

    @property
    def effective_crf(self) -> int:
        return DEFAULT_CRF if self.crf is None else self.crf


class TimeWindow(SpecModel):
    """Optional ``start``/``end`` seconds during which an overlay is shown."""

    start: Seconds | None = None
    end: Seconds | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> TimeWindow:
        if self.end is not None and self.end <= (self.start or 0.0):
            _raise_errors([(("end",), "time_window", "end must be greater than start",
                            self.end)])
        return self


class Placement(TimeWindow):
    """Where an overlay goes: a named ``position`` with ``margin``, or explicit ``x``/``y``.

    ``x``/``y`` win over ``position`` when given. (Refusing both would break re-validating a
    stored spec, whose dump always carries the default ``position``.)
    """

    position: Position = "bottom"
    x: Coordinate | None = None
    y: Coordinate | None = None
    margin: Margin = 24

    @model_validator(mode="after")
    def _position_or_xy(self) -> Placement:
        if (self.x is None) != (self.y is None):
            missing = "y" if self.y is None else "x"
            _raise_errors([((missing,), "missing", "x and y must be given together", None)])
        return self


class JoinParams(SpecModel):
    """Concatenate clips; ``auto`` stream-copies when they match, else normalises them."""

    inputs: Annotated[list[MediaRef], Field(min_length=2, max_length=50), Accepts("video")]
    mode: Literal["auto", "copy", "reencode"] = "auto"


class AudioOverlayParams(SpecModel):
    """Mix in or replace the soundtrack; the result lasts as long as the video."""

    video: Annotated[MediaRef, Accepts("video")]
    audio: Annotated[MediaRef, Accepts("audio", "video")]
    mode: Literal["mix", "replace"] = "mix"
    audio_volume: Volume = 1.0
    video_volume: Volume = 1.0
    offset: Seconds = 0.0
    loop: bool = False
    fade_in: Seconds = 0.0
    fade_out: Seconds = 0.0


class TextOverlayParams(Placement):
    """Draw ``text`` literally (it goes to a file, never into the filtergraph)."""

    video: Annotated[MediaRef, Accepts("video")]
    text: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_drawable_text)]
    position: Position = "bottom"
    font_size: FontSize = 48
    color: Color = "white"
    font: FontName = "DejaVu Sans"
    box: bool = False
    box_color: Color = "#00000080"


class SubtitlesParams(SpecModel):
    """Burn subtitles into the picture (``font``/``font_size`` style them) or embed a track."""

    video: Annotated[MediaRef, Accepts("video")]
    subtitles: Annotated[MediaRef, Accepts("subtitle")]
    mode: Literal["burn", "embed"] = "burn"
    font_size: FontSize | None = None
    font: FontName | None = None
    language: Language | None = None


class VideoOverlayParams(Placement):
    """Picture-in-picture of an image or a clip, ``scale`` relative to the base width."""

    video: Annotated[MediaRef, Accepts("video")]
    overlay: Annotated[MediaRef, Accepts("image", "video")]
    position: Position = "bottom-right"
    scale: float = Field(default=0.25, ge=0.05, le=1, allow_inf_nan=False)
    opacity: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    loop: bool = False


class TranscodeParams(SpecModel):
    """Re-wrap or re-encode one file into ``output``'s container, codecs, size and rate.

    ``auto`` copies each stream that already has the codec ``output`` asks for (and is not
    resized); ``copy`` copies every stream, whatever ``output``'s codec fields say (the
    container must be able to hold them); ``reencode`` always encodes.
    """

    input: Annotated[MediaRef, Accepts("video", "audio")]
    mode: Literal["auto", "copy", "reencode"] = "auto"


class Segment(SpecModel):
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _end_after_start(self) -> Segment:
        if self.end <= self.start:
            _raise_errors([(("end",), "time_window", "end must be greater than start",
                            self.end)])
        return self


class TrimParams(SpecModel):
    """One range (``start`` with ``end`` or ``duration``; neither: to the end) or up to 50
    ``segments`` joined in order. ``accurate``: frame-exact by re-encoding; otherwise cut
    on keyframes by stream copy (the cut may start up to one GOP early)."""

    input: Annotated[MediaRef, Accepts("video", "audio")]
    start: Seconds = 0.0
    end: Seconds | None = None
    duration: Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)] | None = None
    segments: Annotated[list[Segment], Field(min_length=1, max_length=50)] | None = None
    accurate: bool = True

    @model_validator(mode="after")
    def _one_way_to_cut(self) -> TrimParams:
        errors: list[ErrorItem] = []
        if self.segments is not None:
            for field in ("end", "duration"):
                if getattr(self, field) is not None:
                    errors.append(((field,), "trim_conflict",
                                   "give segments or a single range, not both",
                                   getattr(self, field)))
            if self.start:
                errors.append((("start",), "trim_conflict",
                               "give segments or a single range, not both", self.start))
        elif self.end is not None and self.duration is not None:
            errors.append((("duration",), "trim_conflict", "give end or duration, not both",
                           self.duration))
        elif self.end is not None and self.end <= self.start:
            errors.append((("end",), "time_window", "end must be greater than start", self.end))
        _raise_errors(errors)
        return self

    def ranges(self, media_seconds: float | None) -> list[tuple[float, float | None]]:
        """``(start, end)`` pairs in output order; ``end`` None means the end of the media."""
        if self.segments is not None:
            return [(segment.start, segment.end) for segment in self.segments]
        if self.duration is not None:
            return [(self.start, self.start + self.duration)]
        return [(self.start, self.end if self.end is not None else media_seconds)]


class SpriteSpec(SpecModel):
    columns: Annotated[int, Field(ge=1, le=20)]
    rows: Annotated[int, Field(ge=1, le=20)]


class ThumbnailsParams(SpecModel):
    """Still frames of a video: at given times, ``count`` evenly spaced, or ``every`` N
    seconds (at most 100); single images or ``sprite`` sheets with a WebVTT index."""

    input: Annotated[MediaRef, Accepts("video")]
    at: Annotated[list[Seconds], Field(min_length=1, max_length=100)] | None = None
    count: Annotated[int, Field(ge=1, le=100)] | None = None
    every: Annotated[float, Field(ge=0.5, le=MAX_SECONDS, allow_inf_nan=False)] | None = None
    width: Annotated[int, Field(ge=16, le=3840)] = 320
    format: Literal["jpg", "png", "webp"] = "jpg"
    sprite: SpriteSpec | None = None

    @model_validator(mode="after")
    def _exactly_one_choice(self) -> ThumbnailsParams:
        given = [name for name in ("at", "count", "every") if getattr(self, name) is not None]
        if len(given) != 1:
            field = given[1] if len(given) > 1 else "count"
            _raise_errors([((field,), "thumbnail_choice",
                            "give exactly one of at, count or every", getattr(self, field))])
        if self.at is not None and len(set(self.at)) != len(self.at):
            _raise_errors([(("at",), "thumbnail_times", "times must be distinct", self.at)])
        return self


class Rendition(SpecModel):
    """One rung of a package's ladder; bitrates default from the height."""

    height: EvenHeight
    video_bitrate: VideoBitrate | None = None
    audio_bitrate: AudioBitrate | None = None


class PackageParams(SpecModel):
    """An adaptive-streaming package (HLS or DASH) of one video: every rendition from one
    decode, in one FFmpeg run. Renditions above the source height are dropped (one at the
    source height takes their place), and equal heights collapse."""

    input: Annotated[MediaRef, Accepts("video")]
    format: Literal["hls", "dash"] = "hls"
    renditions: Annotated[list[Rendition], Field(min_length=1, max_length=6)] | None = None
    segment_seconds: Annotated[float, Field(ge=2, le=10, allow_inf_nan=False)] = 6.0
    hls_segment_type: Literal["fmp4", "ts"] = "fmp4"


StepParams = JoinParams | AudioOverlayParams | TextOverlayParams | SubtitlesParams | \
    VideoOverlayParams | TranscodeParams | TrimParams | ThumbnailsParams | PackageParams

STEP_PARAMS: dict[str, type[SpecModel]] = {
    "join": JoinParams,
    "audio_overlay": AudioOverlayParams,
    "text_overlay": TextOverlayParams,
    "subtitles": SubtitlesParams,
    "video_overlay": VideoOverlayParams,
    "transcode": TranscodeParams,
    "trim": TrimParams,
    "thumbnails": ThumbnailsParams,
    "package": PackageParams,
}


def _params_for_type(value: Any, handler: ValidatorFunctionWrapHandler,
                     info: ValidationInfo) -> Any:
    """Validate ``params`` with the model named by the sibling ``type`` field.

    Pydantic's discriminated unions need the tag inside the union member and add it to error
    locations; here the tag is a sibling, and locations stay ``("params", <field>)``. A wrap
    validator (whose default ``handler`` goes unused) keeps the union in the JSON schema.
    """
    job_type = info.data.get("type")
    if job_type is None:  # ``type`` itself is invalid; its error is reported already
        return value
    return PARAMS_MODELS[job_type].model_validate(value)


class Step(SpecModel):
    """One step of a ``combined`` job."""

    id: StepId
    type: StepType
    params: StepParams

    _validate_params = field_validator("params", mode="wrap")(_params_for_type)


class CombinedParams(SpecModel):
    """A pipeline of steps; ``"@<id>"`` names an earlier step's output. ``outputs`` defaults
    to the last step and every ``thumbnails``/``package`` step (nothing else can use theirs);
    ``execution`` is explained in :mod:`core.plan.compiler`."""

    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    outputs: Annotated[list[StepId], Field(min_length=1, max_length=20)] | None = None
    execution: Literal["fused", "stepwise"] = "fused"

    @model_validator(mode="after")
    def _check_graph(self) -> CombinedParams:
        if self.outputs is None:
            multi_file = [step.id for step in self.steps if step.type in MULTI_FILE_TYPES]
            self.outputs = list(dict.fromkeys([*multi_file, self.steps[-1].id]))
        _raise_errors(list(_graph_errors(self)))
        return self


def _graph_errors(combined: CombinedParams) -> Iterator[ErrorItem]:
    """Duplicate ids, unknown/forward/self references, wrong-kind references, bad outputs."""
    seen: dict[str, int] = {}
    multi_file = {step.id for step in combined.steps if step.type in MULTI_FILE_TYPES}
    for index, step in enumerate(combined.steps):
        if step.id in seen:
            yield (("steps", index, "id"), "duplicate_step", f"duplicate step id {step.id!r}",
                   step.id)
        seen.setdefault(step.id, index)
    for index, step in enumerate(combined.steps):
        for use in media_uses(step.params, ("steps", index, "params")):
            if not use.is_step_ref:
                continue
            target = seen.get(use.step_id)
            if use.step_id == step.id:
                yield use.loc, "self_ref", "a step cannot use its own output", use.value
            elif target is None:
                yield use.loc, "unknown_ref", f"no step with id {use.step_id!r}", use.value
            elif target > index:
                yield (use.loc, "forward_ref",
                       f"step {use.step_id!r} comes later; only earlier steps can be used",
                       use.value)
            elif use.step_id in multi_file:
                yield (use.loc, "ref_kind",
                       f"step {use.step_id!r} makes a set of files (thumbnails or a package); "
                       "no step can use its output", use.value)
            elif "video" not in use.accepts:
                yield (use.loc, "ref_kind",
                       f"a step produces a video; this parameter needs "
                       f"{' or '.join(sorted(use.accepts))}", use.value)
        if isinstance(step.params, JoinParams) and step.params.mode == "copy" and any(
            ref.startswith(REF_PREFIX) for ref in step.params.inputs
        ):
            yield (("steps", index, "params", "mode"), "copy_ref",
                   "copy mode needs probed files; step outputs are only known when they run",
                   "copy")
    for position, output in enumerate(combined.outputs or []):
        if output not in seen:
            yield ("outputs", position), "unknown_ref", f"no step with id {output!r}", output
    if combined.outputs and len(set(combined.outputs)) != len(combined.outputs):
        yield ("outputs",), "duplicate_output", "outputs must be unique", combined.outputs


HttpUrlText = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_webhook_url)]
"""An absolute http(s) URL, kept as given (webhooks, URL imports)."""


class WebhookSpec(SpecModel):
    """Where terminal job events are POSTed (private targets are refused by the API)."""

    url: HttpUrlText
    secret: Annotated[str, Field(min_length=1, max_length=256)] | None = None


PARAMS_MODELS: dict[str, type[SpecModel]] = {**STEP_PARAMS, "combined": CombinedParams}

JobPriority = Annotated[int, Field(
    ge=PRIORITY_HIGHEST, le=PRIORITY_LOWEST,
    description="1 (highest) to 5 (lowest): among waiting steps of one pool, a higher "
                "priority starts first; running steps are never preempted")]


class JobSpec(SpecModel):
    """A job request body (docs/API.md, "Job spec")."""

    type: JobType
    params: StepParams | CombinedParams
    output: OutputSpec = Field(default_factory=lambda: OutputSpec())
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    webhook: WebhookSpec | None = None
    priority: JobPriority = PRIORITY_DEFAULT

    _validate_params = field_validator("params", mode="wrap")(_params_for_type)

    @model_validator(mode="after")
    def _check_whole_job(self) -> JobSpec:
        errors = list(_step_ref_outside_combined(self))
        errors += _copy_conflicts(self)
        errors += _audio_only_outputs_used_as_video(self)
        _raise_errors(errors)
        return self

    def steps(self) -> list[Step]:
        """The job as a list of steps: a single-type job is one step whose id is its type."""
        if isinstance(self.params, CombinedParams):
            return list(self.params.steps)
        return [Step.model_construct(id=self.type, type=self.type, params=self.params)]

    def output_step_ids(self) -> list[str]:
        """Ids of the steps whose results become job outputs."""
        if isinstance(self.params, CombinedParams):
            return list(self.params.outputs or [])
        return [self.type]


def _step_ref_outside_combined(spec: JobSpec) -> Iterator[ErrorItem]:
    if spec.type == "combined":
        return
    for use in iter_media_uses(spec):
        if use.is_step_ref:
            yield (use.loc, "ref_outside_combined",
                   "'@<step id>' references are only allowed inside combined steps", use.value)


def _filters_video(step: Step) -> bool:
    """Whether the step always decodes, redraws and re-encodes video, whatever the inputs."""
    params = step.params
    if isinstance(params, TextOverlayParams | VideoOverlayParams):
        return True
    if isinstance(params, SubtitlesParams):
        return params.mode == "burn"
    return _reencodes(params)


def _filters_audio(step: Step) -> bool:
    """Whether the step always re-encodes audio, whatever the inputs."""
    params = step.params
    if isinstance(params, AudioOverlayParams):
        return True
    return _reencodes(params)


def _reencodes(params: object) -> bool:
    """Steps that re-encode every stream: a join or transcode asked to, a frame-exact trim."""
    if isinstance(params, JoinParams | TranscodeParams):
        return params.mode == "reencode"
    return isinstance(params, TrimParams) and params.accurate


def _copy_conflicts(spec: JobSpec) -> Iterator[ErrorItem]:
    """``copy`` codecs are impossible when a step always re-encodes that stream."""
    steps = spec.steps()
    if spec.output.video_codec == "copy" and any(map(_filters_video, steps)):
        yield (("output", "video_codec"), "copy_conflict",
               "this job redraws the video, so it cannot be stream-copied", "copy")
    if spec.output.audio_codec == "copy" and any(map(_filters_audio, steps)):
        yield (("output", "audio_codec"), "copy_conflict",
               "this job changes the audio, so it cannot be stream-copied", "copy")
    for index, step in enumerate(steps):
        params = step.params
        if isinstance(params, JoinParams | TranscodeParams) and params.mode == "copy" and \
                spec.output.changes_frames:
            loc = ("params", "mode") if spec.type != "combined" else (
                "params", "steps", index, "params", "mode")
            yield loc, "copy_conflict", "copy mode cannot apply width, height or fps", "copy"
        if isinstance(params, SubtitlesParams) and params.mode == "embed" and (
            spec.output.container not in SUBTITLE_CONTAINERS
        ):
            yield (("output", "container"), "subtitle_container",
                   f"{spec.output.container} cannot hold a subtitle track",
                   spec.output.container)


def _audio_only_outputs_used_as_video(spec: JobSpec) -> Iterator[ErrorItem]:
    """With ``video_codec: none`` a kept step is audio-only; later steps cannot use its video."""
    if not isinstance(spec.params, CombinedParams) or spec.output.video_codec != "none":
        return
    kept = set(spec.params.outputs or [])
    for use in iter_media_uses(spec):
        if use.is_step_ref and use.step_id in kept and "audio" not in use.accepts:
            yield (use.loc, "ref_kind",
                   f"step {use.step_id!r} is kept as audio-only output (video_codec none)",
                   use.value)


# --------------------------------------------------------------------------- media uses


@dataclass(frozen=True)
class MediaUse:
    """One media parameter occurrence: where it is, what it names, which kinds it accepts."""

    loc: tuple[str | int, ...]
    value: str
    accepts: frozenset[str]

    @property
    def is_step_ref(self) -> bool:
        return self.value.startswith(REF_PREFIX)

    @property
    def step_id(self) -> str:
        return self.value[len(REF_PREFIX):]


def _accepted_kinds(model: type[BaseModel], field: str) -> frozenset[str] | None:
    for meta in model.model_fields[field].metadata:
        if isinstance(meta, Accepts):
            return meta.kinds
    return None


def media_uses(params: BaseModel,
               prefix: tuple[str | int, ...] = ("params",)) -> Iterator[MediaUse]:
    """Every media parameter of one step's params, in field order."""
    for field in type(params).model_fields:
        accepts = _accepted_kinds(type(params), field)
        if accepts is None:
            continue
        value = getattr(params, field)
        if isinstance(value, list):
            for position, item in enumerate(value):
                yield MediaUse((*prefix, field, position), item, accepts)
        else:
            yield MediaUse((*prefix, field), value, accepts)


def iter_media_uses(spec: JobSpec) -> Iterator[MediaUse]:
    """Every media parameter of a job, with its location in the JobSpec body."""
    if isinstance(spec.params, CombinedParams):
        for index, step in enumerate(spec.params.steps):
            yield from media_uses(step.params, ("params", "steps", index, "params"))
    else:
        yield from media_uses(spec.params)


def referenced_file_ids(spec: JobSpec) -> list[str]:
    """File ids the job reads (no step refs), unique, in first-use order: check ownership."""
    ids = (use.value for use in iter_media_uses(spec) if not use.is_step_ref)
    return list(dict.fromkeys(ids))


def required_kinds(spec: JobSpec) -> dict[str, set[str]]:
    """For each file id, the kinds that satisfy every parameter naming it."""
    required: dict[str, set[str]] = {}
    for use in iter_media_uses(spec):
        if not use.is_step_ref:
            required.setdefault(use.value, set(use.accepts)).intersection_update(use.accepts)
    return required


def check_kinds(spec: JobSpec, kinds: dict[str, str]) -> list[SpecError]:
    """One SpecError per media parameter whose file's kind it does not accept.

    ``kinds`` maps file id to the probed kind (``video``, ``audio``, ``image``, ``subtitle``);
    files missing from it are the caller's 404 and are skipped here.
    """
    errors = []
    for use in iter_media_uses(spec):
        kind = kinds.get(use.value)
        if use.is_step_ref or kind is None or kind in use.accepts:
            continue
        errors.append(SpecError(
            use.loc, f"file {use.value} is {_article(kind)} {kind}; this parameter needs "
                     f"{' or '.join(sorted(use.accepts))}", "file_kind",
        ))
    return errors


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
