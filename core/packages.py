"""Package files (docs/API.md, "Package files"): one File made of several stored members.

A ``package`` File (the output of ``package`` and ``thumbnails`` steps) has
``storage_key`` ``jobs/<job>/steps/<n>-<step>/package``; each member is the object
``<storage_key>/<member path>``, and ``metadata.members`` lists them as ``{path, size}``
with ``metadata.entry`` naming the one to open first (``master.m3u8``, ``manifest.mpd``,
``sprite.vtt`` or the first image). The worker also stores the member list as
``<storage_key>/_index.json`` so that the list — thousands of segments for a long video —
travels to the database through storage rather than through the workflow's history.

Member paths are names the plan chose, checked again here before they become keys or are
served: relative, ``/``-separated, each part of letters, digits, ``_ . -`` not starting with
a dot, so no path (``..``, ``%2e%2e`` once decoded, absolute, backslashes) can leave the
package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.enums import FileKind

PACKAGE_KIND = FileKind.package
PACKAGE_CONTENT_TYPE = "application/zip"  # what GET /files/{id}/download returns for one
INDEX_NAME = "_index.json"
HLS_ENTRY = "master.m3u8"
MAX_MEMBER_PATH = 255
MAX_MEMBER_DEPTH = 4
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mpd": "application/dash+xml",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "ts": "video/mp2t",
    "vtt": "text/vtt; charset=utf-8",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


def valid_member_path(path: str) -> bool:
    """Whether ``path`` is a member path we could have written (see the module docstring)."""
    if not path or len(path) > MAX_MEMBER_PATH or path == INDEX_NAME:
        return False
    parts = path.split("/")
    return len(parts) <= MAX_MEMBER_DEPTH and all(
        _PART.match(part) and part not in (".", "..") for part in parts)


def member_key(storage_key: str, path: str) -> str:
    if not valid_member_path(path):
        raise ValueError(f"not a member path: {path!r}")
    return f"{storage_key}/{path}"


def index_key(storage_key: str) -> str:
    return f"{storage_key}/{INDEX_NAME}"


def content_type_for(path: str) -> str:
    return CONTENT_TYPES.get(path.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def members_of(metadata: dict[str, Any] | None) -> dict[str, int]:
    """``{path: size}`` of a package File's members, from its metadata."""
    return {str(item["path"]): int(item["size"])
            for item in (metadata or {}).get("members") or []}


def dump_index(members: list[dict[str, Any]]) -> bytes:
    return json.dumps({"members": members}, separators=(",", ":")).encode()


def load_index(data: bytes) -> list[dict[str, Any]]:
    members = json.loads(data)["members"]
    if not all(valid_member_path(item["path"]) for item in members):
        raise ValueError("the package index names a path outside the package")
    return [{"path": str(item["path"]), "size": int(item["size"])} for item in members]


def drop_audio_only_variants(master: str) -> str:
    """An HLS master playlist without the audio-only variants ffmpeg's muxer lists beside
    the audio renditions (``#EXT-X-MEDIA``) it writes for an audio group: the master names
    only the video renditions, each with its audio group, so no player switches to a
    variant without a picture. A master with no video variant is returned as it is."""
    lines = master.splitlines()
    variants = [n for n, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    audio_only = {n for n in variants if "RESOLUTION=" not in lines[n]}
    if len(audio_only) == len(variants):
        return master
    drop = audio_only | {n + 1 for n in audio_only}  # the tag and the URI line after it
    kept = [line for n, line in enumerate(lines) if n not in drop]
    tidy = "\n".join(kept).rstrip("\n") + "\n"
    return re.sub(r"\n{3,}", "\n\n", tidy)


def finish_package(directory: Path, entry: str) -> None:
    """What a package step's runner does once ffmpeg succeeded, before storing members:
    an HLS master loses its audio-only variants (``drop_audio_only_variants``)."""
    if entry == HLS_ENTRY and (master := directory / entry).is_file():
        master.write_text(drop_audio_only_variants(master.read_text(encoding="utf-8")),
                          encoding="utf-8")
