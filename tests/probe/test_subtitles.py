"""core.subtitles: SRT, WebVTT and ASS recognised by content, validated and sanitised."""

from __future__ import annotations

import codecs

import pytest

from core.probe import MediaLimitExceeded, UnsupportedMedia
from core.subtitles import MAX_SUBTITLE_BYTES, detect_and_validate, sanitize_ass

from .samples import ASS, ASS_EVENTS_FORMAT, SRT, VTT


@pytest.mark.parametrize(
    ("body", "subtitle_format", "cues", "duration"),
    [(SRT, "srt", 2, 4.25), (VTT, "vtt", 2, 3604.25), (ASS, "ass", 2, 4.25)],
)
def test_formats_are_recognised(
    body: str, subtitle_format: str, cues: int, duration: float
) -> None:
    info = detect_and_validate(body.encode())

    assert (info.format, info.cue_count, info.encoding) == (subtitle_format, cues, "utf-8")
    assert info.duration == pytest.approx(duration)


def test_bom_and_crlf_are_normalised() -> None:
    info = detect_and_validate(codecs.BOM_UTF8 + SRT.replace("\n", "\r\n").encode())

    assert info.format == "srt"
    assert info.data == SRT.encode()


def test_latin1_is_stored_as_utf8() -> None:
    body = "1\n00:00:01,000 --> 00:00:02,000\nCafé déjà vu\n"

    info = detect_and_validate(body.encode("latin-1"))

    assert info.encoding == "latin-1"
    assert info.data.decode("utf-8") == body


def test_srt_tolerates_blank_lines_inside_a_cue() -> None:
    body = (
        "1\n00:00:01,000 --> 00:00:02,000\nfirst line\n\nsecond paragraph\n\n"
        "2\n00:00:03,000 --> 00:00:05,000\nx\n"
    )

    assert detect_and_validate(body.encode()).cue_count == 2


def test_ass_embedded_fonts_and_graphics_are_stripped() -> None:
    info = detect_and_validate(ASS.encode())
    text = info.data.decode()

    assert "[Fonts]" not in text and "evil.ttf" not in text
    assert "[Graphics]" not in text and "logo.png" not in text
    assert "[V4+ Styles]" in text and "{\\i1}Again{\\i0}" in text


def test_sanitize_ass_keeps_everything_else_verbatim() -> None:
    script = "[Script Info]\nTitle: x\n\n[fonts]\nfontname: a.ttf\nABC\n[Events]\nDialogue: y\n"

    assert sanitize_ass(script) == "[Script Info]\nTitle: x\n\n[Events]\nDialogue: y\n"


@pytest.mark.parametrize(
    "body",
    [
        "just a text file renamed .srt\n",
        "#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",
        "ffconcat version 1.0\nfile /etc/passwd\n",
        "hello\n1\n00:00:01,000 --> 00:00:02,000\nlate cue\n",  # must start with a cue
        "1\n00:00:01,000 -> 00:00:02,000\nbroken arrow\n",
        "1\n00:61:01,000 --> 00:00:02,000\nbad minutes\n",
        "WEBVTT\n\nNOTE only a note\n",  # no cue
        "WEBVTTX\n\n00:01.000 --> 00:02.000\nnot a header\n",
        "[Script Info]\nTitle: no events\n",
        f"[Script Info]\n[Events]\n{ASS_EVENTS_FORMAT}\n",  # no dialogue
        "[Script Info]\n[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,no format\n",
        f"[Script Info]\n[Events]\n{ASS_EVENTS_FORMAT}\nDialogue: 0,0:00:01.00,soon,D,,0,0,0,,x\n",
        "1\n00:00:01,000 --> 00:00:02,000\nnul \x00 inside\n",
    ],
)
def test_anything_else_is_unsupported(body: str) -> None:
    with pytest.raises(UnsupportedMedia):
        detect_and_validate(body.encode())


def test_size_cap() -> None:
    cue = "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n"
    body = (cue * (MAX_SUBTITLE_BYTES // len(cue) + 1)).encode()

    with pytest.raises(MediaLimitExceeded):
        detect_and_validate(body)


def test_big_text_that_is_not_subtitles_is_unsupported_not_too_large() -> None:
    with pytest.raises(UnsupportedMedia):
        detect_and_validate(b"concat:/etc/passwd\n" * (MAX_SUBTITLE_BYTES // 10))
