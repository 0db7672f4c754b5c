"""Small subtitle documents shared by the probe and subtitle tests."""

ASS_EVENTS_FORMAT = (
    "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"
)

SRT = "1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 --> 00:00:04,250\nWorld\n"

VTT = (
    "WEBVTT - a title\n\n"
    "NOTE written by hand\n\n"
    "STYLE\n::cue { color: yellow }\n\n"
    "intro\n00:01.000 --> 00:02.500 align:start\nHello\n\n"
    "01:00:03.000 --> 01:00:04.250\nWorld\n"
)

ASS = (
    "[Script Info]\nTitle: test\nScriptType: v4.00+\n\n"
    "[V4+ Styles]\nFormat: Name, Fontname, Fontsize\nStyle: Default,DejaVu Sans,48\n\n"
    '[Fonts]\nfontname: evil.ttf\nM9"!A"0``\n\n'
    '[Graphics]\nfilename: logo.png\nM9"!A"0``\n\n'
    f"[Events]\n{ASS_EVENTS_FORMAT}\n"
    "Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,Hello, world\n"
    "Dialogue: 0,0:00:03.00,0:00:04.25,Default,,0,0,0,,{\\i1}Again{\\i0}\n"
)
