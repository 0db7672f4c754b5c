"""Shared by the storage fixtures and tests: the backend handle and S3 settings for moto."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.storage.base import Storage
from core.storage.s3 import S3Storage

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}


@dataclass
class Backend:
    storage: Storage
    leftovers: Callable[[], Awaitable[list[str]]]
    """Anything a failed upload could leave behind: temp files, pending multipart uploads."""


def make_s3_storage(endpoint: str, bucket: str, **kwargs: Any) -> S3Storage:
    return S3Storage(bucket=bucket, endpoint_url=endpoint, **CREDENTIALS, **kwargs)
