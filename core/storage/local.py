"""Local-disk storage (the embedded default)."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from core.storage.base import ObjectNotFound, ObjectStat, PutResult, Storage, StorageError, TooLarge

CHUNK = 1024 * 1024


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError("invalid storage key")
        return path

    async def put_stream(self, key, chunks, *, content_type="application/octet-stream",
                         max_bytes=None) -> PutResult:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        digest, size = hashlib.sha256(), 0
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(max_bytes)
                    digest.update(chunk)
                    await out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return PutResult(size=size, sha256=digest.hexdigest())

    async def put_file(self, key, path, *, content_type="application/octet-stream") -> PutResult:
        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as src:
                while data := await src.read(CHUNK):
                    yield data

        return await self.put_stream(key, chunks(), content_type=content_type)

    async def open_stream(self, key, *, start=0, end=None) -> AsyncIterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        remaining = None if end is None else end - start + 1
        async with await anyio.open_file(path, "rb") as src:
            await src.seek(start)
            while remaining is None or remaining > 0:
                size = CHUNK if remaining is None else min(CHUNK, remaining)
                data = await src.read(size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    async def download_to(self, key, path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        await anyio.to_thread.run_sync(shutil.copyfile, src, path)

    async def stat(self, key) -> ObjectStat | None:
        path = self._path(key)
        return ObjectStat(size=path.stat().st_size) if path.is_file() else None

    async def delete(self, key) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key) -> Path | None:
        return self._path(key)

    async def check(self) -> None:
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"local storage not writable: {exc.strerror}") from exc
