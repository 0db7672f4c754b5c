"""Client file names are data: shown back, never used as paths (SECURITY.md item 10)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_DISPLAY = 255
MAX_ORIGINAL = 1024
# bidi overrides/isolates and other format characters that disguise a name
_FORMAT_CHARS = {"Cf", "Cc", "Cs", "Co", "Cn"}
_UNSAFE = re.compile(r'[\\/:*?"<>|]')


def storable_original(name: str) -> str:
    """The name as sent, minus NUL (PostgreSQL text cannot hold it), capped in length."""
    return name.replace("\x00", "\ufffd")[:MAX_ORIGINAL]


def display_name(original: str, extension: str, fallback: str = "upload") -> str:
    """A harmless display name: last path component, no control/format characters,
    no leading dots or dashes, at most 255 characters, ending in the probed extension."""
    name = unicodedata.normalize("NFC", original.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c) not in _FORMAT_CHARS)
    name = _UNSAFE.sub("_", name).strip().lstrip(".-").strip()
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem.strip() or fallback
    suffix = f".{extension}" if extension else ""
    return stem[: MAX_DISPLAY - len(suffix)].rstrip() + suffix


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name."""
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = re.sub(r'["\\\r\n;]', "_", ascii_name) or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
