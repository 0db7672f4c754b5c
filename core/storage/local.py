"""Local-disk storage (the embedded default).

Objects are plain files under ``root``. A write goes to a dot-prefixed
temporary file in the destination directory, is fsynced and then renamed over
the key, so readers see either the old object or the complete new one, and a
crash or a TooLarge never leaves a half-written object under a real key.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from core.storage.base import (
    CHUNK,
    ByteMeter,
    ObjectNotFound,
    ObjectStat,
    PutResult,
    Storage,
    StorageError,
    iter_file,
    rechunk,
    validate_key,
    validate_prefix,
)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """The file for ``key``; resolving catches symlinks that would lead outside ``root``."""
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError("invalid storage key")
        return path

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         content_type: str = "application/octet-stream",
                         max_bytes: int | None = None) -> PutResult:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        meter = ByteMeter(max_bytes)
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for block in rechunk(meter.watch(chunks), CHUNK):
                    await out.write(block)
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return meter.result()

    async def adopt_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream",
        sha256: str | None = None,
    ) -> PutResult:
        target = self._path(key)
        size = path.stat().st_size
        if sha256 is None:
            sha256 = await anyio.to_thread.run_sync(_sha256_of, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)  # same filesystem: a rename, atomic
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return await super().adopt_file(key, path, content_type=content_type)
        return PutResult(size=size, sha256=sha256)

    async def open_stream(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            async for chunk in iter_file(path, start=start, end=end):
                yield chunk
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    async def download_to(self, key: str, path: Path) -> None:
        """A plain file copy: the kernel moves the bytes, no Python loop needed."""
        src = self._path(key)
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, src, path)
        except (FileNotFoundError, IsADirectoryError) as exc:
            if not src.is_file():
                raise ObjectNotFound(key) from exc
            raise

    async def stat(self, key: str) -> ObjectStat | None:
        path = self._path(key)
        return ObjectStat(size=path.stat().st_size) if path.is_file() else None

    async def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.is_dir():  # a package's directory is delete_tree's
            path.unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self._path(validate_prefix(prefix)[:-1])
        if not folder.is_dir():
            return 0
        count = sum(1 for path in folder.rglob("*") if path.is_file())
        await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def check(self) -> None:
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"local storage not writable: {exc.strerror}") from exc
