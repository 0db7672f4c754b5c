"""``purge_deleted_files``: the activity of ``PurgeDeletedFilesWorkflow``.

A soft-deleted file (``DELETE /files/{id}``) keeps its bytes for
``MEDIAFLOW_PURGE_RETENTION_SECONDS``; then ``purge_deleted_files`` removes the
object and stamps ``purged_at`` (the row stays, for the job history that
names it). Deleting a missing object is not an error, so a retried batch is
harmless.
"""

from __future__ import annotations

import datetime as dt

from temporalio import activity

from core.storage import Storage
from core.tables import MediaFile
from workflows.types import PurgeInput, PurgeResult


class PurgeActivities:
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
            await self.storage.delete_tree(row["storage_key"])  # a package's members too
            await MediaFile.update({MediaFile.purged_at: dt.datetime.now(dt.UTC)}).where(
                MediaFile.id == row["id"])
            result.files += 1
            result.bytes += row["size"]
            activity.heartbeat(result.files)
        return result
