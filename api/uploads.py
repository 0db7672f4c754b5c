"""Streaming multipart upload: the ``file`` part goes to disk as it arrives.

FastAPI's ``UploadFile`` would spool the whole body before our code runs (so no
limit could stop a huge upload early). Here the request stream feeds
python-multipart's push parser; the file part's bytes are counted against the
byte limit as they arrive, and about every 1 MiB the pieces received so far are
hashed and written to a scratch file with one ``writev`` in a worker thread
(hashlib and writev release the GIL, so the event loop keeps serving, and the
pieces are never copied into a bigger buffer). Memory stays at about 1 MiB per
upload whatever the size, and an oversize upload is cut off at the limit,
Content-Length or not.

A body that is not multipart, lacks the ``file`` field, is malformed, or ends
before its closing boundary is a 422: a truncated body must not become a
truncated file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import HTTPException, Request, status
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = b"file"
WRITE_BLOCK = 1024 * 1024
MAX_PIECES = 256
"""Pieces per write, well under the kernel's IOV_MAX (1024) however small the chunks."""


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytes = b""
    header_value: bytes = b""
    is_file: bool = False
    filename: str | None = None
    seen_file: bool = False
    finished: bool = False
    """The closing boundary arrived: the body is complete."""
    pending: list[bytes] = field(default_factory=list)


@dataclass
class ReceivedUpload:
    path: Path
    size: int
    sha256: str
    filename: str


def _unprocessable(kind: str, msg: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         detail=[{"type": kind, "loc": ["body", "file"], "msg": msg}])


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise _unprocessable("multipart",
                             "send the file as multipart/form-data in a field named 'file'")
    return options[b"boundary"]


def _callbacks(state: _PartState) -> dict[str, Any]:
    def on_part_begin() -> None:
        state.headers, state.is_file = {}, False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_field.lower()] = state.header_value
        state.header_field, state.header_value = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(state.headers.get(b"content-disposition", b""))
        state.is_file = options.get(b"name") == FILE_FIELD and not state.seen_file
        if state.is_file:
            state.seen_file = True
            state.filename = options.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.is_file:
            state.pending.append(bytes(data[start:end]))

    def on_end() -> None:
        state.finished = True

    return {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_end": on_end,
    }


def _hash_and_write(digest: Any, fd: int, pieces: list[bytes]) -> None:
    """Runs in a worker thread: hashlib and writev release the GIL, and writev takes the
    pieces as they came from the parser, so no byte is copied to gather them."""
    for piece in pieces:
        digest.update(piece)
    while pieces:
        written = os.writev(fd, pieces)
        while pieces and written >= len(pieces[0]):
            written -= len(pieces.pop(0))
        if written:
            pieces[0] = pieces[0][written:]


async def receive_file(request: Request, scratch_dir: Path, max_bytes: int) -> ReceivedUpload:
    """Write the ``file`` part to a new scratch file; UploadTooLarge past ``max_bytes``.

    The scratch file is removed on any failure; on success the caller owns it.
    """
    state = _PartState()
    parser = MultipartParser(_boundary(request), _callbacks(state))  # type: ignore[arg-type]
    await anyio.Path(scratch_dir).mkdir(parents=True, exist_ok=True)
    path = scratch_dir / f"upload-{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    pieces: list[bytes] = []  # the file's bytes since the last write
    buffered = 0
    try:
        async with await anyio.open_file(path, "wb", buffering=0) as out:
            fd = out.wrapped.fileno()
            async for chunk in request.stream():
                try:
                    parser.write(chunk)
                except FormParserError:
                    raise _unprocessable("multipart", "malformed multipart body") from None
                for piece in state.pending:
                    size += len(piece)
                    if size > max_bytes:
                        raise UploadTooLarge(max_bytes)
                    buffered += len(piece)
                pieces += state.pending
                state.pending.clear()
                if buffered >= WRITE_BLOCK or len(pieces) >= MAX_PIECES:
                    await anyio.to_thread.run_sync(_hash_and_write, digest, fd, pieces)
                    pieces, buffered = [], 0
            if pieces:
                await anyio.to_thread.run_sync(_hash_and_write, digest, fd, pieces)
        if not state.finished:
            raise _unprocessable("multipart", "the body ended before its closing boundary")
        if not state.seen_file:
            raise _unprocessable("missing", "field 'file' is required")
    except BaseException:
        # no await here: under cancellation it would be cancelled in turn
        path.unlink(missing_ok=True)  # noqa: ASYNC240
        raise
    return ReceivedUpload(path=path, size=size, sha256=digest.hexdigest(),
                          filename=state.filename or "")


def move_into(path: Path, target: Path) -> None:
    """Rename when on the same filesystem (the embedded default), copy otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, target)
    except OSError:
        shutil.move(str(path), str(target))
