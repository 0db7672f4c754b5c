"""Fonts and colours a job may name: allowlists, never paths or raw filter values.

Users pick a font by name and a colour by name or ``#RRGGBB[AA]``; the font file's path
and the colour's bytes are ours (docs/SECURITY.md #5). drawtext and libass read these.
"""

from __future__ import annotations

from dataclasses import dataclass

FONT_DIR = "/usr/share/fonts/truetype/dejavu"


@dataclass(frozen=True)
class FontChoice:
    """An allowlisted font: the file drawtext loads, and the family/style libass matches."""

    file: str
    family: str
    bold: bool = False
    italic: bool = False


#: Fonts a user may name. Users pick a name; the path is ours.
FONTS: dict[str, FontChoice] = {
    "DejaVu Sans": FontChoice(f"{FONT_DIR}/DejaVuSans.ttf", "DejaVu Sans"),
    "DejaVu Sans Bold": FontChoice(f"{FONT_DIR}/DejaVuSans-Bold.ttf", "DejaVu Sans", bold=True),
    "DejaVu Sans Oblique": FontChoice(
        f"{FONT_DIR}/DejaVuSans-Oblique.ttf", "DejaVu Sans", italic=True
    ),
    "DejaVu Sans Condensed": FontChoice(
        f"{FONT_DIR}/DejaVuSansCondensed.ttf", "DejaVu Sans Condensed"
    ),
    "DejaVu Sans Mono": FontChoice(f"{FONT_DIR}/DejaVuSansMono.ttf", "DejaVu Sans Mono"),
    "DejaVu Sans Mono Bold": FontChoice(
        f"{FONT_DIR}/DejaVuSansMono-Bold.ttf", "DejaVu Sans Mono", bold=True
    ),
    "DejaVu Serif": FontChoice(f"{FONT_DIR}/DejaVuSerif.ttf", "DejaVu Serif"),
    "DejaVu Serif Bold": FontChoice(
        f"{FONT_DIR}/DejaVuSerif-Bold.ttf", "DejaVu Serif", bold=True
    ),
}

#: Named colours accepted besides ``#RRGGBB[AA]``, as ``#RRGGBB``.
NAMED_COLORS: dict[str, str] = {
    "white": "#FFFFFF", "black": "#000000", "red": "#FF0000", "green": "#008000",
    "lime": "#00FF00", "blue": "#0000FF", "yellow": "#FFFF00", "cyan": "#00FFFF",
    "magenta": "#FF00FF", "gray": "#808080", "grey": "#808080", "silver": "#C0C0C0",
    "orange": "#FFA500", "purple": "#800080", "pink": "#FFC0CB", "brown": "#A52A2A",
    "navy": "#000080", "teal": "#008080", "maroon": "#800000", "olive": "#808000",
}


def color_rgba(value: str) -> tuple[int, int, int, int]:
    """A colour validated by ``core.spec`` as (r, g, b, a) bytes."""
    hex_value = NAMED_COLORS.get(value, value).lstrip("#")
    if len(hex_value) == 6:
        hex_value += "FF"
    return tuple(int(hex_value[i:i + 2], 16) for i in range(0, 8, 2))  # type: ignore[return-value]

