"""Serving stored objects over HTTP: one object with Range (a file, a package member), and a
package as a zip streamed member by member (docs/API.md, "Package files").

The zip is written by :mod:`zipfile` into a sink that cannot seek, so every entry is
stored (no compression: segments and images are compressed already) with a data
descriptor after its bytes, and ZIP64 records where sizes or offsets need them. Each
member is read from storage a chunk at a time and handed on as soon as it is written:
nothing is built on disk and memory holds one chunk.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse

from core.enums import FileKind
from core.filenames import content_disposition
from core.packages import content_type_for, member_key, members_of, valid_member_path
from core.storage import Storage

RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")  # 18 digits: any real offset


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range; None for the whole file.

    Headers this does not understand (other units, several ranges, ``last < first``)
    are ignored, as RFC 9110 §14.2 allows; a well-formed range that misses the
    file is a 416.
    """
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # syntactically invalid: ignore it
        end = min(int(last), size - 1) if last else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        raise HTTPException(status.HTTP_416_RANGE_NOT_SATISFIABLE, detail="range not satisfiable",
                            headers={"Content-Range": f"bytes */{size}"})
    return start, end


def member_response(storage: Storage, row: dict[str, Any], path: str, request: Request, *,
                    headers: dict[str, str] | None = None) -> Response | None:
    """One member of a package File (with Range), by its path in ``metadata.members``;
    None when ``row`` is no package or ``path`` is none of its members."""
    members = members_of(row["metadata"]) if row["kind"] == FileKind.package else {}
    if not valid_member_path(path) or path not in members:
        return None
    return object_response(storage, member_key(row["storage_key"], path), members[path],
                           request, content_type=content_type_for(path), headers=headers)


def object_response(storage: Storage, key: str, size: int, request: Request, *,
                    content_type: str, headers: dict[str, str] | None = None) -> Response:
    """The bytes of one stored object: 200, or 206 for a single ``bytes=`` range (416 for
    one past the end), with ``Accept-Ranges`` and ``Content-Length``."""
    headers = {"Accept-Ranges": "bytes", **(headers or {})}
    byte_range = parse_range(request.headers.get("range"), size)
    if byte_range is None:
        start, end, code = 0, size - 1, status.HTTP_200_OK
    else:
        (start, end), code = byte_range, status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(max(end - start + 1, 0))
    if request.method == "HEAD":
        return Response(status_code=code, media_type=content_type, headers=headers)

    async def body() -> AsyncIterator[bytes]:
        if size == 0:
            return
        async for chunk in storage.open_stream(key, start=start, end=end):
            yield chunk

    return StreamingResponse(body(), status_code=code, media_type=content_type, headers=headers)


class _Sink(io.RawIOBase):
    """Where zipfile writes: collects bytes until drained; tells its position, cannot seek
    (so zipfile writes data descriptors instead of going back to patch headers)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


async def zip_stream(storage: Storage, storage_key: str, members: dict[str, int],
                     modified: dt.datetime) -> AsyncIterator[bytes]:
    """A zip of every member, in member order, produced while it is read."""
    sink = _Sink()
    stamp = modified.timetuple()[:6]
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    for path, size in members.items():
        entry = zipfile.ZipInfo(path, date_time=max(stamp, (1980, 1, 1, 0, 0, 0)))
        entry.compress_type = zipfile.ZIP_STORED
        entry.file_size = size
        entry.external_attr = 0o644 << 16
        with archive.open(entry, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as target:
            async for chunk in storage.open_stream(member_key(storage_key, path)):
                target.write(chunk)
                if data := sink.drain():
                    yield data
        if data := sink.drain():
            yield data
    archive.close()
    yield sink.drain()


def zip_response(storage: Storage, row: dict[str, Any]) -> Response:
    """``GET /files/{id}/download`` of a package: a zip of its members (no Range: the
    archive's size is only known once it is written)."""
    members = members_of(row["metadata"])
    return StreamingResponse(
        zip_stream(storage, row["storage_key"], members, row["created_at"]),
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition(row["filename"]),
                 "ETag": f'"{row["checksum_sha256"]}"'})
