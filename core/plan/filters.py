"""Small filter builders shared by operations; every value is ours or validated."""

from __future__ import annotations

from core.plan.escape import filter_spec, format_number
from core.spec import Placement
from core.styles import FONTS, color_rgba

AUDIO_RATE = 48_000

#: position → (horizontal, vertical) anchor
_ANCHORS = {
    "top-left": ("left", "top"), "top": ("center", "top"), "top-right": ("right", "top"),
    "left": ("left", "middle"), "center": ("center", "middle"), "right": ("right", "middle"),
    "bottom-left": ("left", "bottom"), "bottom": ("center", "bottom"),
    "bottom-right": ("right", "bottom"),
}


def even(value: float) -> int:
    """Nearest even integer ≥ 2 (yuv420p needs even frame sizes)."""
    return max(2, int(round(value / 2)) * 2)


def frame_size(width: int | None, height: int | None,
               source_width: int, source_height: int) -> tuple[int, int]:
    """The requested frame size; a missing dimension keeps the source aspect ratio."""
    if width and height:
        return width, height
    if width:
        return width, even(width * source_height / source_width)
    if height:
        return even(height * source_width / source_height), height
    return source_width, source_height


def fit_to_frame(width: int, height: int) -> list[str]:
    """Scale keeping aspect ratio, then pad with black bars to exactly ``width``×``height``."""
    return [
        filter_spec("scale", w=width, h=height, force_original_aspect_ratio="decrease",
                    force_divisible_by=2),
        filter_spec("pad", w=width, h=height, x="(ow-iw)/2", y="(oh-ih)/2", color="black"),
        filter_spec("setsar", sar="1"),
    ]


def set_fps(fps: float) -> str:
    return filter_spec("fps", fps=float(fps))


def audio_normalise() -> str:
    """One sample format, rate and layout, so audio branches can be mixed or concatenated."""
    return filter_spec("aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE,
                       channel_layouts="stereo")


def silence(duration: float) -> list[str]:
    return [filter_spec("anullsrc", r=AUDIO_RATE, cl="stereo"),
            filter_spec("atrim", duration=duration)]


def fit_audio_duration(duration: float) -> list[str]:
    """Pad with silence, then cut, so the audio lasts exactly ``duration`` seconds."""
    return [filter_spec("apad", whole_dur=duration), filter_spec("atrim", duration=duration)]


def position(placement: Placement, item_width: str, item_height: str) -> tuple[str, str]:
    """x/y expressions for a placement; ``W``/``H`` are the frame, the item is e.g. tw/th."""
    if placement.x is not None and placement.y is not None:
        return str(placement.x), str(placement.y)
    margin = placement.margin
    horizontal, vertical = _ANCHORS[placement.position]
    x = {"left": f"{margin}", "center": f"(W-{item_width})/2",
         "right": f"W-{item_width}-{margin}"}[horizontal]
    y = {"top": f"{margin}", "middle": f"(H-{item_height})/2",
         "bottom": f"H-{item_height}-{margin}"}[vertical]
    return x, y


def enable_between(start: float | None, end: float | None) -> dict[str, str]:
    """The timeline ``enable`` option for a time window, or nothing when always on."""
    if start is not None and end is not None:
        return {"enable": f"between(t,{format_number(start)},{format_number(end)})"}
    if start is not None:
        return {"enable": f"gte(t,{format_number(start)})"}
    if end is not None:
        return {"enable": f"lte(t,{format_number(end)})"}
    return {}


def ffmpeg_color(value: str) -> str:
    """A validated colour as ``0xRRGGBB`` or ``0xRRGGBB@alpha``."""
    red, green, blue, alpha = color_rgba(value)
    rgb = f"0x{red:02X}{green:02X}{blue:02X}"
    return rgb if alpha == 255 else f"{rgb}@{format_number(alpha / 255)}"


#: FFmpeg converts srt/vtt to ASS with this script height; ASS sizes are in script units.
LIBASS_DEFAULT_PLAY_RES_Y = 288


def libass_style(font: str | None, font_size: float | None) -> str | None:
    """``force_style`` for the subtitles filter, built only from allowlisted values.

    ``font_size`` is in script units: callers convert pixels with
    :data:`LIBASS_DEFAULT_PLAY_RES_Y` where they know the script height.
    """
    parts = []
    if font is not None:
        choice = FONTS[font]
        parts.append(f"FontName={choice.family}")
        parts.append(f"Bold={-1 if choice.bold else 0}")
        parts.append(f"Italic={-1 if choice.italic else 0}")
    if font_size is not None:
        parts.append(f"FontSize={format_number(font_size)}")
    return ",".join(parts) or None
