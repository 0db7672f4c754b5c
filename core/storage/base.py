"""The one storage interface that the API and the workers use.

Keys are always server-generated (``users/<user id>/files/<file id>``,
``jobs/<job id>/...``); nothing a user types becomes part of a key. Every
backend still validates keys (``validate_key``) so that a bug upstream cannot
turn into a path traversal or an object outside the service's namespace.

Uploads are streamed: ``put_stream`` consumes an async iterator of chunks,
hashes and counts them on the way (``ByteMeter``) and never holds more than one
buffer (``rechunk``) in memory. Going past ``max_bytes`` raises ``TooLarge``
and leaves nothing behind, so a 413 never leaves a partial object.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024  # S3's limit; local keys obey it too so both backends accept the same keys
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class StorageError(Exception):
    """The backend failed (unreachable, permission, ...) or was asked something invalid."""


class ObjectNotFound(StorageError):
    """The key does not exist (HTTP 404 for the API)."""


class TooLarge(StorageError):
    """A streamed upload went past its byte limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class PutResult:
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectStat:
    size: int


def validate_key(key: str) -> str:
    """Return ``key`` when it is a safe relative object key, else raise StorageError.

    Refused: empty or over 1024 bytes, absolute, backslashes, control characters
    (NUL included), and any segment that is empty or starts with ``.`` — which
    covers ``.``/``..`` traversal and keeps keys apart from the backends' own
    dot-files (temporary uploads, health probes).
    """
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise StorageError("invalid storage key: empty or too long")
    if key.startswith("/") or "\\" in key or _CONTROL_CHARS.search(key):
        raise StorageError("invalid storage key: absolute or contains forbidden characters")
    if any(not part or part.startswith(".") for part in key.split("/")):
        raise StorageError("invalid storage key: empty or dot segment")
    return key


def validate_prefix(prefix: str) -> str:
    """A key prefix: a valid key followed by ``/`` (so ``users/1/`` never matches
    ``users/12/…``)."""
    if not prefix.endswith("/"):
        raise StorageError("invalid storage prefix: must end with '/'")
    validate_key(prefix[:-1])
    return prefix


def check_range(start: int, end: int | None) -> None:
    """Refuse byte ranges that no backend could serve (``end`` is inclusive)."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range {start}-{end}")


class ByteMeter:
    """Counts and hashes a stream as it passes, raising TooLarge past ``max_bytes``.

    The check happens on each incoming chunk, before it is buffered or written,
    so an oversized upload is stopped as early as the transport allows.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()

    async def watch(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise TooLarge(self.max_bytes)
            self._digest.update(chunk)
            yield chunk

    def result(self) -> PutResult:
        return PutResult(size=self.size, sha256=self._digest.hexdigest())


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncGenerator[bytes, None]:
    """Regroup arbitrary chunks into blocks of exactly ``size`` bytes (the last may be shorter).

    HTTP bodies arrive in small pieces; disks want large writes and S3 wants
    fixed-size parts, so one buffer of ``size`` bytes is the only memory held.
    """
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


async def iter_file(
    path: Path, *, start: int = 0, end: int | None = None, chunk_size: int = CHUNK
) -> AsyncIterator[bytes]:
    """Yield the bytes of a local file from ``start`` to ``end`` inclusive, a chunk at a time."""
    check_range(start, end)
    remaining = None if end is None else end - start + 1
    async with await anyio.open_file(path, "rb") as src:
        await src.seek(start)
        while remaining is None or remaining > 0:
            data = await src.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


class Storage(ABC):
    name: str

    @abstractmethod
    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         content_type: str = "application/octet-stream",
                         max_bytes: int | None = None) -> PutResult:
        """Store the chunks under ``key`` hashing on the way; raise TooLarge past max_bytes
        (and leave nothing behind). Overwrites an existing object atomically."""

    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> PutResult:
        """Store a local file under ``key`` (overwrites: retries must not duplicate).

        Goes through ``put_stream`` so the checksum and the backend's atomicity
        rules are the same for files as for uploads.
        """
        return await self.put_stream(key, iter_file(path), content_type=content_type)

    async def adopt_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream",
        sha256: str | None = None,
    ) -> PutResult:
        """Take a local scratch file into storage under ``key``; ``path`` is gone afterwards.

        Backends on the same disk move it instead of copying (an upload or a job output is
        then stored in no time); ``sha256``, when the caller already hashed the bytes,
        saves reading them again.
        """
        try:
            return await self.put_file(key, path, content_type=content_type)
        finally:
            path.unlink(missing_ok=True)  # noqa: ASYNC240

    @abstractmethod
    def open_stream(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` to ``end`` inclusive.

        ``end=None`` means to the last byte; a ``start`` at or past the end
        yields nothing (callers answer 416 from ``stat`` first). A missing key
        raises ObjectNotFound when iteration starts; an inverted range raises
        ValueError.
        """

    async def download_to(self, key: str, path: Path) -> None:
        """Copy ``key`` to a local file; a partial file is removed on failure."""
        try:
            async with await anyio.open_file(path, "wb") as out:
                async for chunk in self.open_stream(key):
                    await out.write(chunk)
        except BaseException:
            # no await here: under cancellation it would be cancelled in turn
            path.unlink(missing_ok=True)  # noqa: ASYNC240
            raise

    @abstractmethod
    async def stat(self, key: str) -> ObjectStat | None:
        """Size of ``key``, or None when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (a folder-like prefix
        ending in ``/``: ``users/<id>/``); returns how many. Nothing there is not an error."""

    async def delete_tree(self, key: str) -> None:
        """Remove ``key`` and every object under ``key/`` (the members of a package File
        live there); nothing there is not an error."""
        await self.delete(key)
        await self.delete_prefix(f"{key}/")

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires: int = 3600
    ) -> str | None:
        """A time-limited URL for a direct download, or None when unsupported."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when the backend is a local disk, else None."""
        return None

    @abstractmethod
    async def check(self) -> None:
        """Raise StorageError when the backend is not usable (health check)."""

    async def close(self) -> None:
        return None
