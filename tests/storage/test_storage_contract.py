"""The storage contract, run against LocalStorage and S3Storage (moto over HTTP).

What the API and the workers rely on: streamed puts with size and sha256, full
and ranged reads, overwrite, stat/delete, file transfer both ways, TooLarge that
leaves nothing behind, multipart for big S3 objects, presigned downloads and
keys that cannot escape their namespace.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Settings
from core.filenames import content_disposition
from core.storage import get_storage
from core.storage.base import ObjectNotFound, StorageError, TooLarge
from core.storage.s3 import PART_SIZE, S3Storage

from .backends import CREDENTIALS, Backend, make_s3_storage

MIB = 1024 * 1024
DATA = os.urandom(300_000)


async def chunked(
    data: bytes, sizes: tuple[int, ...] = (1, 7, 65_536, 100_003)
) -> AsyncIterator[bytes]:
    """Yield ``data`` in irregular pieces, as an HTTP body arrives."""
    offset, i = 0, 0
    while offset < len(data):
        size = sizes[i % len(sizes)]
        yield data[offset : offset + size]
        offset, i = offset + size, i + 1


async def read_all(backend: Backend, key: str, **range_: Any) -> bytes:
    return b"".join([chunk async for chunk in backend.storage.open_stream(key, **range_)])


async def test_put_stream_roundtrip(backend: Backend) -> None:
    result = await backend.storage.put_stream(
        "users/1/files/a", chunked(DATA), content_type="video/mp4"
    )

    assert result.size == len(DATA)
    assert result.sha256 == hashlib.sha256(DATA).hexdigest()
    assert await read_all(backend, "users/1/files/a") == DATA
    assert (await backend.storage.stat("users/1/files/a")).size == len(DATA)
    assert await backend.leftovers() == []


async def test_empty_object(backend: Backend) -> None:
    result = await backend.storage.put_stream("empty", chunked(b""))

    assert result.size == 0 and result.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_all(backend, "empty") == b""
    assert (await backend.storage.stat("empty")).size == 0


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DATA[:1]),
        (5, 9, DATA[5:10]),
        (1000, None, DATA[1000:]),
        (len(DATA) - 1, None, DATA[-1:]),
        (10, len(DATA) + 500, DATA[10:]),
        (len(DATA), None, b""),
    ],
    ids=["first-byte", "middle", "open-ended", "last-byte", "end-past-size", "start-at-size"],
)
async def test_ranged_read(backend: Backend, start: int, end: int | None, expected: bytes) -> None:
    await backend.storage.put_stream("ranged", chunked(DATA))

    assert await read_all(backend, "ranged", start=start, end=end) == expected


async def test_inverted_range_is_refused(backend: Backend) -> None:
    await backend.storage.put_stream("ranged", chunked(DATA))

    with pytest.raises(ValueError):
        await read_all(backend, "ranged", start=10, end=5)


async def test_put_overwrites(backend: Backend) -> None:
    await backend.storage.put_stream("k", chunked(b"first version"))
    await backend.storage.put_stream("k", chunked(b"second"))

    assert await read_all(backend, "k") == b"second"


async def test_missing_key(backend: Backend, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"

    assert await backend.storage.stat("nope") is None
    with pytest.raises(ObjectNotFound):
        await read_all(backend, "nope")
    with pytest.raises(ObjectNotFound):
        await backend.storage.download_to("nope", target)
    assert not target.exists()
    await backend.storage.delete("nope")  # not an error


async def test_delete(backend: Backend) -> None:
    await backend.storage.put_stream("gone", chunked(DATA))
    await backend.storage.delete("gone")

    assert await backend.storage.stat("gone") is None


async def test_delete_prefix_removes_that_folder_only(backend: Backend) -> None:
    for key in ("users/1/files/a", "users/1/files/b", "users/1/x", "users/12/files/c"):
        await backend.storage.put_stream(key, chunked(DATA))

    assert await backend.storage.delete_prefix("users/1/") == 3
    assert await backend.storage.delete_prefix("users/1/") == 0  # nothing left: no error

    assert [await backend.storage.stat(k) for k in ("users/1/files/a", "users/1/x")] == [None] * 2
    assert await backend.storage.stat("users/12/files/c") is not None
    for bad in ("users/1", "../users/", "/users/", ""):
        with pytest.raises(StorageError):
            await backend.storage.delete_prefix(bad)


async def test_delete_tree(backend: Backend) -> None:
    """A package File's members live under its key; delete_tree removes them all and
    nothing beside them (a sibling whose name shares the prefix survives)."""
    members = ["jobs/1/pkg/master.m3u8", "jobs/1/pkg/v0.m3u8", "jobs/1/pkg/sub/seg-1.m4s"]
    for key in [*members, "jobs/1/pkg-other", "jobs/1/pkgx/keep"]:
        await backend.storage.put_stream(key, chunked(b"x"))
    await backend.storage.delete("jobs/1/pkg")  # not an object: harmless, removes nothing
    assert await backend.storage.stat(members[0]) is not None

    await backend.storage.delete_tree("jobs/1/pkg")

    assert [await backend.storage.stat(key) for key in members] == [None] * 3
    assert await backend.storage.stat("jobs/1/pkg-other") is not None
    assert await backend.storage.stat("jobs/1/pkgx/keep") is not None
    await backend.storage.delete_tree("jobs/1/pkg")  # again: not an error
    await backend.storage.put_stream("single", chunked(b"x"))
    await backend.storage.delete_tree("single")  # a plain object is removed too
    assert await backend.storage.stat("single") is None


async def test_put_file_and_download_to(backend: Backend, tmp_path: Path) -> None:
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(DATA)

    result = await backend.storage.put_file("jobs/1/out.mp4", source)
    await backend.storage.download_to("jobs/1/out.mp4", target)

    assert result.sha256 == hashlib.sha256(DATA).hexdigest()
    assert target.read_bytes() == DATA


async def test_adopt_file_takes_the_file(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "scratch.bin"
    source.write_bytes(DATA)

    result = await backend.storage.adopt_file("jobs/2/out.mp4", source)

    assert not source.exists()
    assert result.sha256 == hashlib.sha256(DATA).hexdigest() and result.size == len(DATA)
    assert await read_all(backend, "jobs/2/out.mp4") == DATA


async def test_adopt_file_trusts_a_given_checksum(local_backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "scratch.bin"
    source.write_bytes(DATA)
    result = await local_backend.storage.adopt_file("jobs/3/out.mp4", source, sha256="f" * 64)
    assert result.sha256 == "f" * 64  # the upload path hashed while streaming


@pytest.mark.parametrize(
    ("size", "limit"),
    [(1000, 999), (PART_SIZE * 2 + 5, PART_SIZE + MIB)],
    ids=["single-put", "multipart"],
)
async def test_too_large_leaves_nothing(backend: Backend, size: int, limit: int) -> None:
    """Past the limit: TooLarge, no object, no temp file, no pending multipart upload."""
    data = b"x" * size

    with pytest.raises(TooLarge):
        await backend.storage.put_stream("big", chunked(data, (MIB,)), max_bytes=limit)

    assert await backend.storage.stat("big") is None
    assert await backend.leftovers() == []


async def test_failed_producer_leaves_nothing(backend: Backend) -> None:
    """A client that disconnects mid-upload must not leave a partial object."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"y" * (PART_SIZE + 1)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await backend.storage.put_stream("broken", broken())

    assert await backend.storage.stat("broken") is None
    assert await backend.leftovers() == []


async def test_large_object_roundtrip(backend: Backend) -> None:
    data = os.urandom(PART_SIZE + 3 * MIB)

    result = await backend.storage.put_stream("large", chunked(data, (MIB - 1,)))

    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (
        await read_all(backend, "large", start=PART_SIZE - 2, end=PART_SIZE + 1)
        == (data[PART_SIZE - 2 : PART_SIZE + 2])
    )


async def test_s3_large_object_uses_multipart(s3_backend: Backend, s3_client: Any) -> None:
    """S3's ETag of a multipart object ends in -<part count>; 8 MiB + 1 byte is two parts."""
    storage = s3_backend.storage
    await storage.put_stream("mp", chunked(b"z" * (PART_SIZE + 1), (MIB,)))

    head = await s3_client.head_object(Bucket=storage.bucket, Key="mp")

    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == PART_SIZE + 1


async def test_s3_small_object_is_single_put(s3_backend: Backend, s3_client: Any) -> None:
    storage = s3_backend.storage
    await storage.put_stream("small", chunked(DATA), content_type="audio/mpeg")

    head = await s3_client.head_object(Bucket=storage.bucket, Key="small")

    assert "-" not in head["ETag"]
    assert head["ContentType"] == "audio/mpeg"


async def test_s3_presigned_get_downloads_with_disposition(s3_backend: Backend) -> None:
    await s3_backend.storage.put_stream("users/1/files/p", chunked(DATA))

    filename = 'my "clip"\n.mp4'
    url = await s3_backend.storage.presign_get(
        "users/1/files/p", filename=filename, content_type="video/mp4"
    )
    async with httpx.AsyncClient() as http:
        response = await http.get(url)

    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"] == content_disposition(filename)
    assert "\n" not in response.headers["content-disposition"]


async def test_presign_off_returns_none(local_backend: Backend, moto_endpoint: str) -> None:
    s3_without_presign = make_s3_storage(moto_endpoint, "unused-bucket")
    for storage in (local_backend.storage, s3_without_presign):
        assert await storage.presign_get("k", filename="a.mp4", content_type="video/mp4") is None


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "a//b", "", "a\x00b", ".hidden", "a\\b", "a/"]
)
async def test_bad_keys_are_refused(backend: Backend, key: str) -> None:
    with pytest.raises(StorageError):
        await backend.storage.put_stream(key, chunked(b"evil"))
    with pytest.raises(StorageError):
        await backend.storage.stat(key)
    with pytest.raises(StorageError):
        await read_all(backend, key)
    assert await backend.leftovers() == []


async def test_local_symlink_out_of_root_is_refused(local_backend: Backend, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (local_backend.storage.root / "link").symlink_to(outside)

    with pytest.raises(StorageError):
        await local_backend.storage.put_stream("link/x", chunked(b"evil"))
    assert list(outside.iterdir()) == []


async def test_check(backend: Backend) -> None:
    await backend.storage.check()  # raises when unusable


async def test_s3_check_reports_missing_bucket_and_ensure_bucket_creates_it(
    moto_endpoint: str,
) -> None:
    storage = make_s3_storage(moto_endpoint, "created-on-demand")
    try:
        with pytest.raises(StorageError):
            await storage.check()
        await storage.ensure_bucket()
        await storage.ensure_bucket()  # idempotent
        await storage.check()
    finally:
        await storage.close()


async def test_s3_unreachable_endpoint_is_a_storage_error() -> None:
    storage = make_s3_storage("http://127.0.0.1:9", "any-bucket", max_attempts=1)
    try:
        with pytest.raises(StorageError):
            await storage.check()
        with pytest.raises(StorageError):
            await storage.stat("k")
    finally:
        await storage.close()


async def test_get_storage_builds_s3_from_settings(moto_endpoint: str) -> None:
    settings = Settings(
        _env_file=None,
        storage="s3",
        s3_endpoint_url=moto_endpoint,
        s3_bucket="from-settings",
        s3_access_key=CREDENTIALS["access_key"],
        s3_secret_key=CREDENTIALS["secret_key"],
        s3_presign=True,
    )
    storage = get_storage(settings)
    try:
        assert isinstance(storage, S3Storage) and storage.presign
        await storage.ensure_bucket()
        await storage.put_stream("k", chunked(b"configured"))
        assert (await storage.stat("k")).size == len(b"configured")
    finally:
        await storage.close()


async def test_s3_delete_prefix_reports_objects_s3_would_not_delete(
    s3_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DeleteObjects answers 200 and lists per-key failures (AccessDenied, a legal hold)
    in ``Errors``; moto never refuses a delete, so that answer is made here, on top of
    moto's real one for the other keys: the caller must hear of it, not count it done."""
    storage = s3_backend.storage
    for key in ("users/7/files/a", "users/7/files/b"):
        await storage.put_stream(key, chunked(DATA))
    client = await storage._get_client()
    real = client.delete_objects

    async def refusing_one(**kwargs: object) -> dict:
        objects = kwargs["Delete"]["Objects"]  # type: ignore[index]
        kept, rest = objects[0], objects[1:]
        answer = await real(**{**kwargs, "Delete": {**kwargs["Delete"], "Objects": rest}})
        return {**answer, "Errors": [{"Key": kept["Key"], "Code": "AccessDenied",
                                      "Message": "Access Denied"}]}

    monkeypatch.setattr(client, "delete_objects", refusing_one)
    with pytest.raises(StorageError, match="could not delete 1 of 2 objects.*AccessDenied"):
        await storage.delete_prefix("users/7/")
    assert await storage.stat("users/7/files/a") is not None
    assert await storage.stat("users/7/files/b") is None
