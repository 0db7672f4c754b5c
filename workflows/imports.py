"""ImportFileWorkflow: one URL import (docs/API.md, "Import from a URL"), id
``import-<file id>`` on ``mediaflow-jobs``.

The download, the probe and storing are one activity (``import_file``): it streams to the
worker's scratch space with a heartbeat, so a cancel (the file deleted, or an operator in
the Temporal UI) reaches it within seconds. Network trouble is retried; a refused
address, a size or time limit, or media the probe refuses is not. However it ends
without a file, ``fail_import`` records why on the file (``status: failed``, ``error``)
and removes whatever was stored.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from core.temporal import IMPORT_WORKFLOW_TYPE, JOBS_QUEUE
    from workflows.activities import fail_import, import_file
    from workflows.media_job import failure_of
    from workflows.types import ImportFailure, ImportInput, ImportResult

#: Failures no retry can mend (activities/imports.py raises them non-retryable too).
IMPORT_NON_RETRYABLE = ["ImportRefused", "TooLarge", "TimedOut", "HttpError",
                        "UnsupportedMedia", "MediaLimitExceeded", "QuotaExceeded", "Gone"]
IMPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=30), maximum_attempts=3,
                           non_retryable_error_types=IMPORT_NON_RETRYABLE)
#: Room beyond the download's own time limit for the probe (a bounded measuring scan)
#: and storing the bytes.
PROBE_AND_STORE = timedelta(minutes=5)


@workflow.defn(name=IMPORT_WORKFLOW_TYPE)
class ImportFileWorkflow:
    @workflow.run
    async def run(self, request: ImportInput) -> ImportResult:
        try:
            return await workflow.execute_activity(
                import_file, request, task_queue=JOBS_QUEUE,
                start_to_close_timeout=timedelta(seconds=request.timeout_seconds)
                + PROBE_AND_STORE,
                heartbeat_timeout=timedelta(seconds=30), retry_policy=IMPORT_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, asyncio.CancelledError) as exc:
            cancelled = is_cancelled_exception(exc)
            code, message = ("Cancelled", "the import was cancelled") if cancelled \
                else failure_of(exc)
            await workflow.execute_activity(
                fail_import, ImportFailure(request.file_id, code, message),
                task_queue=JOBS_QUEUE, start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=15)))
            if cancelled:
                raise
            raise ApplicationError(message, type=code, non_retryable=True) from None
