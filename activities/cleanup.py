"""The purge activity and the schedule that runs it.

A soft-deleted file (``DELETE /files/{id}``) keeps its bytes for
``MEDIAFLOW_PURGE_RETENTION_SECONDS``; then ``purge_deleted_files`` removes the
object and stamps ``purged_at`` (the row stays, for the job history that
names it). Deleting a missing object is not an error, so a retried batch is
harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
from datetime import timedelta

from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)

from core.config import Settings
from core.storage import Storage
from core.tables import MediaFile
from workflows.names import JOBS_QUEUE
from workflows.purge import PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE
from workflows.types import PurgeInput, PurgeResult

log = logging.getLogger("mediaflow.cleanup")


class CleanupActivities:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @activity.defn(name="purge_deleted_files")
    async def purge_deleted_files(self, request: PurgeInput) -> PurgeResult:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=request.retention_seconds)
        rows = await MediaFile.select(MediaFile.id, MediaFile.storage_key, MediaFile.size).where(
            MediaFile.is_deleted.eq(True), MediaFile.purged_at.is_null(),
            MediaFile.deleted_at <= cutoff,
        ).order_by(MediaFile.deleted_at).limit(request.batch_size)
        result = PurgeResult()
        for row in rows:
            await self.storage.delete(row["storage_key"])
            await MediaFile.update({MediaFile.purged_at: dt.datetime.now(dt.UTC)}).where(
                MediaFile.id == row["id"])
            result.files += 1
            result.bytes += row["size"]
            activity.heartbeat(result.files)
        return result


async def ensure_purge_schedule(client: Client, settings: Settings) -> None:
    """Create the purge schedule once; an existing one (maybe edited by an operator) stays."""
    try:
        await client.create_schedule(
            PURGE_SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    PURGE_WORKFLOW_TYPE,
                    PurgeInput(retention_seconds=settings.purge_retention_seconds),
                    id=PURGE_SCHEDULE_ID, task_queue=JOBS_QUEUE,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
                    every=timedelta(seconds=settings.purge_interval_seconds))]),
            ),
        )
        log.info("created schedule %s", PURGE_SCHEDULE_ID)
    except ScheduleAlreadyRunningError:
        pass
