"""The one storage interface that the API and the workers use.

Keys are always server-generated (``users/<user id>/files/<file id>``,
``jobs/<job id>/...``); nothing a user types becomes part of a key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path


class StorageError(Exception):
    """The backend failed (unreachable, permission, ...)."""


class ObjectNotFound(StorageError):
    pass


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


class Storage(ABC):
    name: str

    @abstractmethod
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> PutResult:
        """Store the chunks under ``key`` hashing on the way; raise TooLarge past max_bytes
        (and leave nothing behind)."""

    @abstractmethod
    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> PutResult:
        """Store a local file under ``key`` (overwrites: retries must not duplicate)."""

    @abstractmethod
    def open_stream(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` to ``end`` inclusive."""

    @abstractmethod
    async def download_to(self, key: str, path: Path) -> None:
        """Copy ``key`` to a local file."""

    @abstractmethod
    async def stat(self, key: str) -> ObjectStat | None:
        """Size of ``key``, or None when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

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
