"""Hostile media built byte by byte: headers that declare absurd sizes, animation bombs,
and the headers of MPEG-PS and ASF in front of a playlist (docs/SECURITY.md #1, #2, #7)."""

from __future__ import annotations

import struct
from pathlib import Path


def gif_bytes(frames: int, width: int = 1, height: int = 1, delay: int = 2) -> bytes:
    """A valid GIF of ``frames`` 1x1 frames on a ``width`` x ``height`` canvas: a few bytes
    per frame, so 100000 frames fit in 2 MB."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = (b"\x21\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00"
             + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00")
    return screen + frame * frames + b"\x3b"


def bmp_header(width: int, height: int) -> bytes:
    """A BITMAPINFOHEADER declaring ``width`` x ``height`` (top-down), and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def tiff_bytes(pages: list[tuple[int, int]], *, at_end: bool = False,
               loop: bool = False) -> bytes:
    """A little-endian TIFF whose directories (one per page) declare the given sizes; with
    ``at_end`` they follow 300 KB of pixel data, beyond the bytes the gate sniffs."""
    body = b"\0" * (300_000 if at_end else 0)
    first = 8 + len(body)
    directories = b""
    for n, (width, height) in enumerate(pages):
        offset = first + len(directories)
        following = offset + 2 + 3 * 12 + 4
        last = n == len(pages) - 1
        entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8)]
        directories += struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHII", *entry) for entry in entries)
        directories += struct.pack("<I", first if (last and loop) else 0 if last else following)
    return b"II*\x00" + struct.pack("<I", first) + body + directories


def playlist(target: Path) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\n{target}\n#EXT-X-ENDLIST\n".encode()


PACK_HEADER = b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8"
ASF_HEADER_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
