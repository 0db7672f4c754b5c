"""S3-compatible storage (MinIO in docker-compose, AWS S3, moto in tests).

One aiobotocore client per ``S3Storage``, created on first use and kept open
(its connection pool is the point) until ``close()``. Uploads stream in fixed
8 MiB parts through a multipart upload, so memory stays at one part whatever
the object size; an object smaller than one part is a single PUT. Any failure
during a multipart upload — ``TooLarge`` included — aborts it, so no object and
no billable orphan parts are left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from functools import cache
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from core.config import Settings
from core.filenames import content_disposition
from core.storage.base import (
    CHUNK,
    ByteMeter,
    ObjectNotFound,
    ObjectStat,
    PutResult,
    Storage,
    StorageError,
    check_range,
    rechunk,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # 10,000 parts max -> objects up to ~78 GiB
_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404"}


@cache
def _session() -> AioSession:
    """One botocore session per process: it caches the S3 service model, which
    makes every client after the first ~20x cheaper to create."""
    return get_session()


class S3Error(StorageError):
    """A StorageError that keeps S3's error code for the few callers that branch on it."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def _s3_errors(action: str, key: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into the storage interface's.

    A missing object becomes ObjectNotFound (only when ``key`` names one: a
    missing bucket is a configuration problem, not a 404); everything else,
    unreachable endpoint included, becomes StorageError.
    """
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if key is not None and code in _NOT_FOUND_CODES:
            raise ObjectNotFound(key) from exc
        raise S3Error(f"s3 {action} failed: {code or exc}", code) from exc
    except BotoCoreError as exc:
        raise S3Error(f"s3 {action} failed: {exc}") from exc


class S3Storage(Storage):
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        presign: bool = False,
        part_size: int = PART_SIZE,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.presign = presign
        self.part_size = part_size
        self.max_attempts = max_attempts
        self._credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key,
            secret_key=secret,
            region=settings.s3_region,
            presign=settings.s3_presign,
        )

    def _config(self) -> AioConfig:
        """Client settings that work on AWS and on MinIO-like endpoints alike.

        Path-style addressing for custom endpoints (MinIO has no per-bucket DNS);
        checksums only where S3 requires them, because botocore's newer default
        (CRC on every request) is refused by several S3-compatible servers.
        """
        return AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    async def _get_client(self) -> Any:
        """The shared client, created once even when the first requests race.

        Like any aiohttp-based client it belongs to the event loop that made it:
        one S3Storage per loop (the API's lifespan, a worker process).
        """
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._open_client()
        return self._client

    async def _open_client(self) -> Any:
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            _session().create_client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=self._config(),
                **self._credentials,
            )
        )
        self._stack = stack
        return client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         content_type: str = "application/octet-stream",
                         max_bytes: int | None = None) -> PutResult:
        validate_key(key)
        client = await self._get_client()
        meter = ByteMeter(max_bytes)
        parts = rechunk(meter.watch(chunks), self.part_size)
        try:
            first = await anext(parts, b"")
            if len(first) < self.part_size:  # rechunk only yields a short block last
                with _s3_errors("put", key):
                    await client.put_object(
                        Bucket=self.bucket, Key=key, Body=first, ContentType=content_type
                    )
            else:
                await self._put_multipart(client, key, first, parts, content_type)
        finally:
            await parts.aclose()
        return meter.result()

    async def _put_multipart(
        self, client: Any, key: str, first: bytes, rest: AsyncIterator[bytes], content_type: str
    ) -> None:
        with _s3_errors("create multipart upload", key):
            upload = await client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )
        upload_id = upload["UploadId"]
        try:
            parts = [await self._upload_part(client, key, upload_id, 1, first)]
            async for block in rest:
                parts.append(await self._upload_part(client, key, upload_id, len(parts) + 1, block))
            with _s3_errors("complete multipart upload", key):
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            await self._abort_multipart(client, key, upload_id)
            raise

    async def _upload_part(
        self, client: Any, key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        with _s3_errors("upload part", key):
            response = await client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    async def _abort_multipart(self, client: Any, key: str, upload_id: str) -> None:
        """Drop the uploaded parts; shielded so a cancelled request still cleans up.

        A failure here is logged, not raised, so the original error reaches the
        caller; a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the
        backstop for that rare case.
        """
        with anyio.CancelScope(shield=True):
            try:
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                log.warning("could not abort multipart upload %s of %s", upload_id, key)

    async def open_stream(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        check_range(start, end)
        client = await self._get_client()
        params = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with _s3_errors("get", key):
                response = await client.get_object(**params)
        except S3Error as exc:
            if exc.code == "InvalidRange":
                return  # start at or past the end: nothing to send
            raise
        async with response["Body"] as body:
            with _s3_errors("read", key):
                async for chunk in body.iter_chunks(CHUNK):
                    yield chunk

    async def stat(self, key: str) -> ObjectStat | None:
        client = await self._get_client()
        try:
            with _s3_errors("head", validate_key(key)):
                response = await client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return None
        return ObjectStat(size=int(response["ContentLength"]))

    async def delete(self, key: str) -> None:
        client = await self._get_client()
        with _s3_errors("delete", validate_key(key)):
            await client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        client = await self._get_client()
        deleted = 0
        with _s3_errors("delete", validate_prefix(prefix)):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:  # at most 1000 per page, the most one DeleteObjects takes
                    answer = await client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    if failed := answer.get("Errors"):  # quiet: only failures are listed
                        first = failed[0]
                        raise StorageError(
                            f"could not delete {len(failed)} of {len(keys)} objects under "
                            f"{prefix!r} ({first.get('Code')}: {first.get('Key')})")
                    deleted += len(keys)
        return deleted

    async def presign_get(
        self, key: str, *, filename: str, content_type: str, expires: int = 3600
    ) -> str | None:
        """A GET URL that makes S3 answer with our Content-Disposition and Content-Type.

        None unless presigning is configured: the API then streams the bytes itself.
        """
        if not self.presign:
            return None
        client = await self._get_client()
        params = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type,
        }
        with _s3_errors("presign", key):
            url: str = await client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires
            )
        return url

    async def check(self) -> None:
        """Health check: the bucket exists and the credentials reach it. Creates nothing."""
        client = await self._get_client()
        with _s3_errors(f"head bucket {self.bucket!r}"):
            await client.head_bucket(Bucket=self.bucket)

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (``mediaflow dev``/compose start-up, tests)."""
        client = await self._get_client()
        try:
            with _s3_errors("head bucket"):
                await client.head_bucket(Bucket=self.bucket)
            return
        except S3Error as exc:
            if exc.code not in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                raise
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            with _s3_errors("create bucket"):
                await client.create_bucket(**params)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # lost a race with another process
                raise
