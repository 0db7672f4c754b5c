"""Subtitle uploads: recognised by content, validated, and sanitised before storage.

Subtitles never go through ffprobe. Handing arbitrary text to FFmpeg's probing
is how playlist tricks (HLS, ffconcat, ``concat:``) get in, and the three
formats we accept are simple enough to check exactly here:

* SRT: blocks of an optional index, ``hh:mm:ss,mmm --> hh:mm:ss,mmm`` and text;
* WebVTT: a ``WEBVTT`` header line, then cues with ``[hh:]mm:ss.mmm --> ...``;
* ASS/SSA: ``[Script Info]`` and an ``[Events]`` section with a ``Format:`` line.

The result always carries UTF-8 bytes with ``\\n`` line ends, so the FFmpeg
``subtitles`` filter never needs a ``charenc``; ASS files lose their ``[Fonts]``
and ``[Graphics]`` sections, whose embedded (uuencoded) fonts and images would
otherwise be loaded by libass (docs/SECURITY.md #6). Callers store ``SubtitleInfo.data``,
not the upload.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from core.probe import MediaLimitExceeded, UnsupportedMedia

MAX_SUBTITLE_BYTES = 5 * 1024 * 1024

SubtitleFormat = Literal["srt", "ass", "vtt"]

_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SRT_TIME = r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t].*)?")
_VTT_TIME = r"(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t].*)?")
_VTT_HEADER = re.compile(r"WEBVTT(?:[ \t].*)?")
_ASS_TIME = re.compile(r"(\d{1,2}):([0-5]\d):([0-5]\d)[.:](\d{1,3})")
_ASS_SECTION = re.compile(r"\[([^\]]+)\][ \t]*")
_BLOCK_SEPARATOR = re.compile(r"\n[ \t]*\n")
_ASS_EMBEDDED_SECTIONS = {"fonts", "graphics"}


@dataclass(frozen=True)
class SubtitleInfo:
    format: SubtitleFormat
    encoding: str
    """What the upload was decoded from: ``utf-8`` (BOM or not) or ``latin-1``."""
    cue_count: int
    duration: float
    """End of the last cue, in seconds."""
    data: bytes
    """The sanitised UTF-8 text to store in place of the upload."""


def detect_and_validate(data: bytes) -> SubtitleInfo:
    """Recognise SRT, WebVTT or ASS/SSA in ``data`` and return it validated and sanitised.

    Raises UnsupportedMedia for anything that is not one of the three formats
    with at least one cue, and MediaLimitExceeded for subtitles over
    MAX_SUBTITLE_BYTES (a caller need pass no more than MAX_SUBTITLE_BYTES + 1).
    """
    text, encoding = _decode(data)
    subtitle_format = _detect(text)
    if subtitle_format is None:
        raise UnsupportedMedia("text file is not SRT, WebVTT or ASS/SSA subtitles")
    if len(data) > MAX_SUBTITLE_BYTES:
        raise MediaLimitExceeded(f"subtitle files are limited to {MAX_SUBTITLE_BYTES} bytes")
    if subtitle_format == "ass":
        text = sanitize_ass(text)
    cue_ends = _PARSERS[subtitle_format](text)
    if not cue_ends:
        raise UnsupportedMedia(f"{subtitle_format} subtitles without any cue")
    return SubtitleInfo(
        format=subtitle_format,
        encoding=encoding,
        cue_count=len(cue_ends),
        duration=max(cue_ends),
        data=text.encode("utf-8"),
    )


def sanitize_ass(text: str) -> str:
    """Drop an ASS script's ``[Fonts]`` and ``[Graphics]`` sections, header to next section."""
    kept, skipping = [], False
    for line in text.split("\n"):
        section = _ASS_SECTION.fullmatch(line.strip())
        if section:
            skipping = section.group(1).strip().lower() in _ASS_EMBEDDED_SECTIONS
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _decode(data: bytes) -> tuple[str, str]:
    """Text with normalised line ends; UTF-8 first, latin-1 (which never fails) as fallback."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    if _BINARY_CHARS.search(text):
        raise UnsupportedMedia("not a text subtitle file (binary content)")
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _detect(text: str) -> SubtitleFormat | None:
    """The format whose signature opens ``text``: only the start is looked at, as players do."""
    lines = text.lstrip().split("\n", 2)
    first = lines[0].strip()
    if _VTT_HEADER.fullmatch(first):
        return "vtt"
    if first.lower() == "[script info]":
        return "ass"
    timing = lines[1].strip() if first.isdigit() and len(lines) > 1 else first
    if _SRT_TIMING.fullmatch(timing):
        return "srt"
    return None


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str) -> float:
    """Seconds from timestamp parts; the fraction is decimal (ms in SRT/VTT, cs in ASS)."""
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + float(f"0.{fraction}")


def _end_of(timing: re.Match[str]) -> float:
    """End time of a ``start --> end`` match: its groups 5-8."""
    return _seconds(*timing.groups()[4:8])


def _parse_srt(text: str) -> list[float]:
    """Cue end times. Blocks without a timing line extend the previous cue's text,
    as players treat blank lines inside a cue; the first block must be a cue."""
    ends: list[float] = []
    for block in _BLOCK_SEPARATOR.split(text.strip()):
        lines = [line.strip() for line in block.split("\n")]
        if lines[0].isdigit() and len(lines) > 1:
            lines = lines[1:]
        timing = _SRT_TIMING.fullmatch(lines[0])
        if timing:
            ends.append(_end_of(timing))
        elif not ends:
            raise UnsupportedMedia("srt subtitles must start with a cue")
    return ends


def _parse_vtt(text: str) -> list[float]:
    """Cue end times; NOTE, STYLE and REGION blocks and stray text blocks are skipped,
    as the WebVTT parsing rules say."""
    ends: list[float] = []
    for block in _BLOCK_SEPARATOR.split(text.strip())[1:]:
        lines = [line.strip() for line in block.split("\n")]
        candidates = lines[:2] if not lines[0].startswith(("NOTE", "STYLE", "REGION")) else []
        for line in candidates:
            timing = _VTT_TIMING.fullmatch(line)
            if timing:
                ends.append(_end_of(timing))
                break
    return ends


def _parse_ass(text: str) -> list[float]:
    """End times of the ``Dialogue:`` lines, read through the ``[Events]`` ``Format:`` line."""
    events = _ass_section(text, "events")
    if events is None:
        raise UnsupportedMedia("ass subtitles without an [Events] section")
    fields: list[str] | None = None
    ends: list[float] = []
    for line in events:
        name, _, value = line.partition(":")
        if name.strip().lower() == "format":
            fields = [field.strip().lower() for field in value.split(",")]
        elif name.strip().lower() == "dialogue":
            ends.append(_ass_dialogue_end(value, fields))
    return ends


def _ass_section(text: str, wanted: str) -> list[str] | None:
    """The lines of section ``wanted`` (case-insensitive), or None when it is absent."""
    lines: list[str] | None = None
    for line in text.split("\n"):
        section = _ASS_SECTION.fullmatch(line.strip())
        if section:
            if lines is not None:
                break
            if section.group(1).strip().lower() == wanted:
                lines = []
        elif lines is not None:
            lines.append(line)
    return lines


def _ass_dialogue_end(value: str, fields: list[str] | None) -> float:
    if fields is None or "end" not in fields or "text" not in fields:
        raise UnsupportedMedia("ass [Events] needs a Format line with End and Text before dialogue")
    values = value.split(",", len(fields) - 1)
    end = (
        _ASS_TIME.fullmatch(values[fields.index("end")].strip())
        if len(values) == len(fields)
        else None
    )
    if end is None:
        raise UnsupportedMedia("ass dialogue line with a malformed End time")
    return _seconds(*end.groups())


_PARSERS: dict[SubtitleFormat, Callable[[str], list[float]]] = {
    "srt": _parse_srt,
    "vtt": _parse_vtt,
    "ass": _parse_ass,
}
