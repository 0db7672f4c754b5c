"""``local`` storage must be one directory for every process: others refuse to start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.config import Settings
from core.volume import MARKER, StorageNotShared, check_local_volume
from tests.conftest import run_cli
from tests.utils.apps import fresh_sqlite


async def test_the_api_records_its_volume_and_a_process_elsewhere_is_refused(
    app: object, settings: Settings, tmp_path: Path
) -> None:
    marker = settings.local_storage_root / MARKER
    assert marker.exists(), "the API's start records the volume"
    await check_local_volume(settings)  # the same data dir: fine

    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "other-host"})
    with pytest.raises(StorageNotShared) as refused:
        await check_local_volume(elsewhere)
    message = str(refused.value)
    assert "has no volume marker" in message and "MEDIAFLOW_STORAGE=s3" in message
    assert str(elsewhere.local_storage_root) in message
    assert not (elsewhere.local_storage_root / MARKER).exists(), "a refusal writes nothing"

    elsewhere.local_storage_root.mkdir(parents=True)
    (elsewhere.local_storage_root / MARKER).write_text("0123456789abcdef\n")
    with pytest.raises(StorageNotShared, match="holds volume 0123456789abcdef"):
        await check_local_volume(elsewhere)

    # the documented repair: a restored copy of the storage gets the marker back
    (elsewhere.local_storage_root / MARKER).write_text(marker.read_text())
    await check_local_volume(elsewhere)
    # S3 is shared by construction: nothing to check
    await check_local_volume(settings.model_copy(
        update={"data_dir": tmp_path / "third", "storage": "s3"}))


def test_a_worker_on_another_data_dir_refuses_to_start(
    app: object, settings: Settings, tmp_path: Path
) -> None:
    result = run_cli("worker", "--pool", "cpu", "--concurrency", "1", env={
        "MEDIAFLOW_ENV": "test", "MEDIAFLOW_DATABASE_URL": settings.resolved_database_url,
        "MEDIAFLOW_JWT_SECRET": settings.jwt_secret_value(),
        "MEDIAFLOW_DATA_DIR": str(tmp_path / "worker-host"),
        # it refuses before it would reach Temporal: nothing listens here
        "MEDIAFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refusing to start" in result.stderr
    assert "MEDIAFLOW_STORAGE=s3" in result.stderr
    assert not (tmp_path / "worker-host" / "scratch").exists(), "it claimed nothing"


async def test_two_first_starts_at_once_agree_on_one_volume(tmp_path: Path) -> None:
    async with fresh_sqlite(tmp_path) as url:
        hosts = [Settings(env="test", data_dir=tmp_path / name, database_url=url)
                 for name in ("a", "b")]
        results = await asyncio.gather(*(check_local_volume(s) for s in hosts),
                                       return_exceptions=True)
        refused = [r for r in results if isinstance(r, StorageNotShared)]
        assert len(refused) == 1 and results.count(None) == 1, results
        for host in hosts:  # and from now on the winner passes, the other never does
            if (host.local_storage_root / MARKER).read_text() == (
                    hosts[results.index(None)].local_storage_root / MARKER).read_text():
                await check_local_volume(host)
            else:
                with pytest.raises(StorageNotShared):
                    await check_local_volume(host)
