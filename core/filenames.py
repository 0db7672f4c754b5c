"""Client file names are data: shown back, never used as paths (docs/SECURITY.md #10).

Storage keys are server-generated (``users/<user id>/files/<file id>``); the
name a client sent is kept twice, as data:

* ``original_filename``: as sent, minus NUL (PostgreSQL text cannot hold it);
* ``filename``: a display name safe to hand to a browser or ``curl -OJ``: the
  last path component, no control, format or bidi characters, no line or
  paragraph separators, nothing that is special on common file systems, no
  leading dot, dash or blank, at most 255 UTF-8 bytes, and the extension the
  probe found (``clip.mp4`` that is really a PNG becomes ``clip.png``).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

MAX_DISPLAY_BYTES = 255  # what most file systems allow for one name
MAX_ORIGINAL = 1024
# Control, format (bidi overrides and isolates, zero-width), surrogate, private-use and
# unassigned characters, and line/paragraph separators: none belongs in a display name.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_UNSAFE = re.compile(r'[\\/:*?"<>|]')
_LEADING = re.compile(r"^[\s.\-]+")
_FALLBACK_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\;%]')


def storable_original(name: str) -> str:
    """The name as sent, minus NUL (PostgreSQL text cannot hold it), capped in length."""
    return name.replace("\x00", "\ufffd")[:MAX_ORIGINAL]


def display_name(original: str, extension: str, fallback: str = "upload") -> str:
    """A harmless display name ending in the probed ``extension`` (see the module doc)."""
    name = unicodedata.normalize("NFC", original.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = _LEADING.sub("", _UNSAFE.sub("_", name)).rstrip()
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem.rstrip() or fallback
    suffix = f".{extension}" if extension else ""
    budget = MAX_DISPLAY_BYTES - len(suffix.encode())
    stem = stem.encode()[:budget].decode("utf-8", "ignore").rstrip() or fallback
    return stem + suffix


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name.

    The fallback has no quote, backslash, semicolon, percent sign or control
    character, so it cannot end the header parameter early, split the header
    or be percent-decoded by a browser into something else; clients that read
    ``filename*`` (all current browsers, ``curl -OJ``) get the exact name.
    """
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = _FALLBACK_UNSAFE.sub("_", ascii_name) or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def url_name(url: str) -> str:
    """The last path segment of ``url``, decoded: a hint for a display name (data only,
    made safe by :func:`display_name`)."""
    return unquote(PurePosixPath(urlsplit(url).path).name)
