"""The purge of soft-deleted files: PurgeDeletedFilesWorkflow and its activity on the real
Temporal dev server, with files uploaded and deleted through HTTP; and its Schedule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.purge import PurgeActivities
from activities.schedules import ensure_purge_schedule
from core.config import Settings
from core.tables import MediaFile
from core.temporal import JOBS_QUEUE
from tests.utils.jobs import keep_history
from tests.utils.media import make_png
from tests.utils.users import new_user_headers
from workflows.purge import PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE, PurgeDeletedFilesWorkflow
from workflows.types import PurgeInput, PurgeResult

API = "/api/v1"


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_png(tmp_path_factory.mktemp("purge") / "a.png").read_bytes()


@pytest.fixture
async def purge_queue(app: FastAPI, temporal_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A worker for the purge on a task queue of its own, with the app's storage."""
    queue = f"purge-{uuid.uuid4()}"
    async with Worker(temporal_env.client, task_queue=queue,
                      workflows=[PurgeDeletedFilesWorkflow],
                      activities=[PurgeActivities(app.state.storage).purge_deleted_files]):
        yield queue


async def purge(client: Client, queue: str, **request: float) -> PurgeResult:
    return await client.execute_workflow(
        PurgeDeletedFilesWorkflow.run, PurgeInput(**request), id=f"purge-test-{uuid.uuid4()}",
        task_queue=queue, execution_timeout=timedelta(seconds=30))


async def purge_recorded(env: WorkflowEnvironment, queue: str, **request: float) -> PurgeResult:
    """``purge``, keeping the history for the replay tests when asked to."""
    workflow_id = f"purge-test-{uuid.uuid4()}"
    result = await env.client.execute_workflow(
        PurgeDeletedFilesWorkflow.run, PurgeInput(**request), id=workflow_id,
        task_queue=queue, execution_timeout=timedelta(seconds=30))
    await keep_history(env, workflow_id, "purge")
    return result


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> str:
    response = await client.post(f"{API}/files", headers=headers,
                                 files={"file": ("a.png", data, "image/png")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def state_of(settings: Settings, file_id: str) -> tuple[bool, bool]:
    """(bytes still in storage, purged_at set)."""
    row = await MediaFile.select(MediaFile.storage_key, MediaFile.purged_at).where(
        MediaFile.id == uuid.UUID(file_id)).first()
    assert row is not None
    return (settings.local_storage_root / row["storage_key"]).exists(), row["purged_at"] is not None


async def test_purge_removes_the_bytes_of_deleted_files_after_retention(
    client: httpx.AsyncClient, settings: Settings, temporal_env: WorkflowEnvironment,
    purge_queue: str, png: bytes,
) -> None:
    headers = await new_user_headers(client)
    kept = await upload(client, headers, png)
    deleted = [await upload(client, headers, png) for _ in range(3)]
    for file_id in deleted:
        assert (await client.delete(f"{API}/files/{file_id}", headers=headers)).status_code == 204

    early = await purge(temporal_env.client, purge_queue, retention_seconds=3600)

    for file_id in deleted:  # still within the retention window
        assert await state_of(settings, file_id) == (True, False)

    result = await purge_recorded(temporal_env, purge_queue, retention_seconds=0, batch_size=2)

    assert result.files >= early.files + 3 and result.bytes >= 3 * len(png)
    for file_id in deleted:
        assert await state_of(settings, file_id) == (False, True)
    assert await state_of(settings, kept) == (True, False)
    download = await client.get(f"{API}/files/{kept}/download", headers=headers)
    assert download.status_code == 200 and download.content == png
    again = await purge(temporal_env.client, purge_queue, retention_seconds=0)
    assert again == PurgeResult()  # nothing left to do: purged rows are not picked twice


async def test_ensure_purge_schedule_creates_it_once(
    temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    client = temporal_env.client
    handle = client.get_schedule_handle(PURGE_SCHEDULE_ID)
    with suppress(RPCError):
        await handle.delete()  # left by another test or run on this server
    try:
        await ensure_purge_schedule(client, settings)
        first = await handle.describe()
        edited = settings.model_copy(update={"purge_interval_seconds": 60.0,
                                             "purge_retention_seconds": 5.0})
        await ensure_purge_schedule(client, edited)  # a no-op: the schedule exists
        second = await handle.describe()

        action = first.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == PURGE_WORKFLOW_TYPE and action.task_queue == JOBS_QUEUE
        (request,) = await client.data_converter.decode(action.args, [PurgeInput])
        assert request == PurgeInput(retention_seconds=settings.purge_retention_seconds)
        intervals = first.schedule.spec.intervals
        assert [i.every for i in intervals] == [timedelta(seconds=settings.purge_interval_seconds)]
        assert second.schedule.spec.intervals == intervals
        assert second.info.created_at == first.info.created_at
    finally:
        await handle.delete()
