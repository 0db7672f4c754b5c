"""PurgeDeletedFilesWorkflow: removes the bytes of soft-deleted files.

Started every ``MEDIAFLOW_PURGE_INTERVAL_SECONDS`` by the Temporal Schedule
``mediaflow-purge`` (created by the workers, on ``mediaflow-jobs``), so each
purge is visible, durable and retried in the Temporal UI.

The activity runs on the workflow's own task queue: the worker that polls
``mediaflow-jobs`` for this workflow also registers ``purge_deleted_files``,
and a test can run both on a queue of its own.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.activities import purge_deleted_files
    from workflows.types import PurgeInput, PurgeResult

PURGE_WORKFLOW_TYPE = "PurgeDeletedFilesWorkflow"
PURGE_SCHEDULE_ID = "mediaflow-purge"
MAX_BATCHES_PER_RUN = 100
"""Then continue-as-new, so a huge backlog never grows one history past Temporal's limits."""


@workflow.defn(name=PURGE_WORKFLOW_TYPE)
class PurgeDeletedFilesWorkflow:
    @workflow.run
    async def run(self, request: PurgeInput) -> PurgeResult:
        total = PurgeResult()
        for _ in range(MAX_BATCHES_PER_RUN):  # batches: one activity never holds thousands
            batch = await workflow.execute_activity(
                purge_deleted_files, request,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            total.files += batch.files
            total.bytes += batch.bytes
            if batch.files < request.batch_size:
                return total
        workflow.logger.info("purged %d files so far; continuing as new", total.files)
        workflow.continue_as_new(request)
