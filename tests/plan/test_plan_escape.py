"""Filtergraph escaping: unit cases, and a round trip through FFmpeg's own parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.plan.escape import (
    PathPlaceholder,
    concat_list,
    escape_filter_value,
    escape_graph,
    escape_option_value,
    filter_spec,
    format_number,
)
from core.styles import FONTS

HOSTILE = "a:b'c\\d[e]f,g;h i=j%{pts}"


def test_option_level_escapes_separator_quote_backslash_and_spaces() -> None:
    assert escape_option_value("a:b'c\\d e") == "a\\:b\\'c\\\\d\\ e"
    assert escape_option_value("[x],y;z") == "[x],y;z"  # not special at this level


def test_graph_level_escapes_graph_punctuation() -> None:
    assert escape_graph("[0:v],x;y'\\") == "\\[0:v\\]\\,x\\;y\\'\\\\"


def test_filter_value_is_both_levels() -> None:
    assert escape_filter_value("a:b") == "a\\\\:b"
    assert escape_filter_value("it's") == "it\\\\\\'s"


def test_filter_spec_escapes_every_value_and_keeps_order() -> None:
    assert filter_spec("scale", w=320, h=-2) == "scale=w=320:h=-2"
    assert filter_spec("fps", fps=29.97) == "fps=fps=29.97"
    assert filter_spec("anullsink") == "anullsink"
    assert filter_spec("drawtext", enable="between(t,1,2)") == (
        "drawtext=enable=between(t\\,1\\,2)")
    spec = filter_spec("x", a=HOSTILE)
    assert spec.count("=") == 3  # name=, a=, and the escaped "=" inside the value
    assert ":" not in spec.replace("\\\\:", "")  # the only colon is escaped


def test_filter_spec_keeps_placeholders_for_render() -> None:
    assert filter_spec("subtitles", filename=PathPlaceholder("{scratch:in1.srt}")) == (
        "subtitles=filename={scratch:in1.srt}")


@pytest.mark.parametrize(("name", "options"), [
    ("scale,x", {}), ("scale", {"w;h": "1"}), ("", {}), ("a=b", {}),
])
def test_filter_spec_rejects_bad_names(name: str, options: dict) -> None:
    with pytest.raises(ValueError):
        filter_spec(name, **options)


@pytest.mark.parametrize(("value", "text"), [
    (2.0, "2"), (0.25, "0.25"), (1 / 3, "0.333333"), (1e-9, "0"), (-0.0, "0"),
    (86400.0, "86400"), (-1.5, "-1.5"),
])
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_format_number_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        format_number(value)


def test_concat_list_only_plain_relative_names() -> None:
    assert concat_list(["in0.mp4", "in1.mkv"]) == (
        "ffconcat version 1.0\nfile 'in0.mp4'\nfile 'in1.mkv'\n")
    for bad in ("../x.mp4", "/etc/passwd", "a b.mp4", "x'.mp4", "-x.mp4", "http://x",
                "a\nfile '/etc/passwd'", ""):
        with pytest.raises(ValueError):
            concat_list([bad])


def test_ffmpeg_parses_escaped_path_back(tmp_path: Path) -> None:
    """A path full of filtergraph metacharacters reaches drawtext intact."""
    directory = tmp_path / " lead:ing'[dir],;\\ x"
    directory.mkdir()
    text_file = directory / "t.txt"
    text_file.write_text("ok", encoding="utf-8")
    drawtext = filter_spec("drawtext", fontfile=FONTS["DejaVu Sans"].file,
                           textfile=PathPlaceholder("{p}"), expansion="none")
    graph = "color=black:size=64x32:duration=0.1," + drawtext.replace(
        "{p}", escape_filter_value(str(text_file)))
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-filter_complex", graph, "-f", "null", "-"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    text_file.unlink()  # the same graph must now fail: proof the file was really opened
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-filter_complex", graph, "-f", "null", "-"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0 and "t.txt" in result.stderr
