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
from core.reconcile import reconcile_quiet_jobs
from core.storage import Storage
from core.tables import MediaFile
from workflows.names import JOBS_QUEUE
from workflows.purge import PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE
from workflows.reconcile import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE
from workflows.types import PurgeInput, PurgeResult, ReconcileInput

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


async def ensure_schedule(client: Client, schedule_id: str, workflow_type: str,
                          arg: object, every: timedelta) -> None:
    """Create a housekeeping schedule once; an existing one (maybe edited or paused by an
    operator in the Temporal UI) stays as it is."""
    try:
        await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow(workflow_type, arg, id=schedule_id,
                                               task_queue=JOBS_QUEUE),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        ))
        log.info("created schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:
        pass


async def ensure_purge_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(client, PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE,
                          PurgeInput(retention_seconds=settings.purge_retention_seconds),
                          timedelta(seconds=settings.purge_interval_seconds))


async def ensure_reconcile_schedule(client: Client) -> None:
    await ensure_schedule(client, RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE,
                          ReconcileInput(), timedelta(minutes=1))


@activity.defn(name="reconcile_quiet_jobs")
async def reconcile_quiet_jobs_activity(request: ReconcileInput) -> int:
    return await reconcile_quiet_jobs(activity.client(), quiet_seconds=request.quiet_seconds,
                                      limit=request.limit)
