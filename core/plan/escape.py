"""Building filtergraph text safely.

A filter in ``-filter_complex`` is parsed twice by FFmpeg (see "Notes on filtergraph
escaping" in ffmpeg-filters(1)): the graph parser splits on ``[ ] , ;`` and un-escapes once,
then the filter splits its ``key=value`` list on ``:`` and un-escapes again. Both levels
honour ``\\`` and ``'``, and both trim unescaped leading/trailing whitespace.

Every filter option therefore goes through :func:`filter_spec`, which escapes each value for
level 1 and the whole argument list for level 2. Escaping is per character (whitespace
included), so escaping a concatenation equals concatenating escapes: that is what lets
:meth:`core.plan.model.PlanStep.render` splice an escaped server path into an already built
graph in place of a placeholder.

User strings never pass through here: text goes to a scratch file (``textfile=`` with
``expansion=none``), colours, fonts and positions are validated and rebuilt by us. This
module is the belt to those braces.
"""

from __future__ import annotations

import math
import re

#: Characters special to the filter option parser (level 1).
OPTION_SPECIALS = frozenset("\\':")
#: Characters special to the filtergraph parser (level 2).
GRAPH_SPECIALS = frozenset("\\'[],;")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONCAT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _backslash(text: str, specials: frozenset[str]) -> str:
    return "".join(f"\\{ch}" if ch in specials or ch.isspace() else ch for ch in text)


def escape_option_value(value: str) -> str:
    """Escape a value for a filter's ``key=value:...`` list (level 1)."""
    return _backslash(value, OPTION_SPECIALS)


def escape_graph(text: str) -> str:
    """Escape a filter's argument string for the filtergraph description (level 2)."""
    return _backslash(text, GRAPH_SPECIALS)


def escape_filter_value(value: str) -> str:
    """Both levels: what a literal value (e.g. a path) must become inside a filtergraph."""
    return escape_graph(escape_option_value(value))


class PathPlaceholder(str):
    """A ``{inN}``/``{scratch:NAME}`` placeholder used as a filter option value.

    :func:`filter_spec` inserts it verbatim; ``PlanStep.render`` later replaces it with the
    server path escaped by :func:`escape_filter_value`.
    """


def filter_spec(name: str, **options: str | int | float) -> str:
    """``name=key=value:key=value`` with every value escaped; options keep their order.

    Always named options, never positional ones: a positional value containing ``=`` would
    be read as a key.
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a filter name: {name!r}")
    parts = []
    for key, value in options.items():
        if not _IDENTIFIER.match(key):
            raise ValueError(f"not an option name: {key!r}")
        if isinstance(value, PathPlaceholder):
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={escape_graph(escape_option_value(format_value(value)))}")
    return f"{name}={':'.join(parts)}" if parts else name


def format_value(value: str | int | float) -> str:
    """Numbers rendered by us (finite, plain decimal); strings unchanged."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    return value


def format_number(value: float) -> str:
    """A finite float as plain decimal with at most 6 decimals: ``2``, ``0.25``, ``1.5``."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def concat_list(names: list[str],
                points: list[tuple[float | None, float | None]] | None = None) -> str:
    """An ffconcat list of plain relative names (concat demuxer ``safe=1`` accepts these),
    each optionally with an ``inpoint``/``outpoint`` in seconds (None: the file's own)."""
    lines = ["ffconcat version 1.0\n"]
    for position, name in enumerate(names):
        if not _CONCAT_NAME.match(name) or ".." in name:
            raise ValueError(f"not a safe concat entry: {name!r}")
        lines.append(f"file '{name}'\n")
        inpoint, outpoint = points[position] if points else (None, None)
        if inpoint:
            lines.append(f"inpoint {format_number(inpoint)}\n")
        if outpoint is not None:
            lines.append(f"outpoint {format_number(outpoint)}\n")
    return "".join(lines)
