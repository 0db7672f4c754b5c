"""Both storage backends behind one fixture, S3 served by moto over real HTTP.

``backend`` is parametrized, so every contract test runs against LocalStorage in
a temporary directory and against S3Storage talking to a ThreadedMotoServer.
Each S3 test gets its own bucket, so tests cannot see each other's objects or
multipart uploads.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from core.storage.local import LocalStorage

from .backends import CREDENTIALS, Backend, make_s3_storage


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
async def s3_client(moto_endpoint: str) -> AsyncIterator[Any]:
    """A plain aiobotocore client to inspect the bucket independently of S3Storage."""
    async with get_session().create_client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=CREDENTIALS["region"],
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
    ) as client:
        yield client


@pytest.fixture
async def s3_backend(moto_endpoint: str, s3_client: Any) -> AsyncIterator[Backend]:
    storage = make_s3_storage(moto_endpoint, f"test-{uuid.uuid4().hex[:12]}", presign=True)
    await storage.ensure_bucket()

    async def pending_uploads() -> list[str]:
        response = await s3_client.list_multipart_uploads(Bucket=storage.bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]

    yield Backend(storage, pending_uploads)
    await storage.close()


@pytest.fixture
def local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "storage"
    storage = LocalStorage(root)

    async def temp_files() -> list[str]:
        return [str(path.relative_to(root)) for path in root.rglob(".*")]

    return Backend(storage, temp_files)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")
