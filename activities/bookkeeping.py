"""Bookkeeping activities: database rows of jobs, outputs and operation logs.

They run on ``mediaflow-jobs`` (every worker polls it) and are idempotent, since
Temporal may run any of them more than once.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.jobview import TERMINAL_STATUSES
from core.storage import Storage
from core.tables import Job, MediaFile, OperationLog
from core.temporal import gpu_workers_polling
from workflows.types import (
    FinalizeInput,
    JobInput,
    OperationRecord,
    PreparedJob,
    StatusUpdate,
    WebhookInput,
)

P = ParamSpec("P")
R = TypeVar("R")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def data_errors_are_final(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A row the database refuses (too long, a constraint) is refused on every retry: fail
    the activity for good instead of retrying for half an hour. Connection errors stay
    retryable."""
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                sqlite3.IntegrityError, sqlite3.DataError) as exc:
            raise ApplicationError(f"the database refused a row: {exc}",
                                   type="BookkeepingError", non_retryable=True) from exc

    return wrapper


class BookkeepingActivities:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    @activity.defn(name="update_job_status")
    @data_errors_are_final
    async def update_job_status(self, update: StatusUpdate) -> None:
        values: dict = {
            Job.status: update.status,
            Job.progress: update.progress,
            Job.retry_count: update.retry_count,
            Job.updated_at: now(),
        }
        if update.error_code:
            values[Job.error] = {"code": update.error_code, "message": update.error_message}
        if update.set_started:
            values[Job.started_at] = now()
        if update.set_completed:
            values[Job.completed_at] = now()
        query = Job.update(values).where(Job.id == uuid.UUID(update.job_id))
        if update.status not in TERMINAL_STATUSES:
            # a late "processing"/"paused" write never buries an ending already recorded
            query = query.where(Job.status.not_in(list(TERMINAL_STATUSES)))
        await query

    @activity.defn(name="prepare_job")
    async def prepare_job(self, job: JobInput) -> PreparedJob:
        """Compile the plan, mark the job processing, and say whether a GPU pool polls."""
        from activities.planning import compile_steps

        steps = await compile_steps(job)
        await Job.update({
            Job.status: "processing", Job.started_at: now(), Job.updated_at: now(),
            Job.progress: {"percent": 0.0, "steps_done": 0, "steps_total": len(steps),
                           "step": steps[0].step_id if steps else None},
        }).where(Job.id == uuid.UUID(job.job_id), Job.status.not_in(list(TERMINAL_STATUSES)))
        gpu = job.accelerator != "cpu" and await gpu_workers_polling(activity.client())
        return PreparedJob(steps=steps, gpu_available=gpu)

    @activity.defn(name="record_operation")
    @data_errors_are_final
    async def record_operation(self, record: OperationRecord) -> None:
        # deterministic id: a retried activity writes the same row once
        row_id = uuid.uuid5(uuid.NAMESPACE_URL,
                            f"{record.job_id}/{record.step}/{record.attempt}/{record.success}")
        if await OperationLog.exists().where(OperationLog.id == row_id):
            return
        started = dt.datetime.fromisoformat(record.started_at) if record.started_at else now()
        await OperationLog(
            id=row_id, job=uuid.UUID(record.job_id), step=record.step, step_id=record.step_id,
            operation_type=record.operation_type[:32], pool=record.pool, attempt=record.attempt,
            started_at=started, duration=record.duration, success=record.success,
            error_details=record.error_details, speed=record.speed, argv=record.argv,
            decoder=record.decoder,
        ).save()

    @activity.defn(name="finalize_job")
    @data_errors_are_final
    async def finalize_job(self, request: FinalizeInput) -> list[str]:
        """Publish kept outputs as the user's files, drop intermediates, complete the job."""
        job = await Job.objects().output(load_json=True).get(Job.id == uuid.UUID(request.job_id))
        if job is None:
            raise ApplicationError("job row is missing", type="InvalidParams", non_retryable=True)
        spec: dict = job.spec  # type: ignore[assignment]  # decoded by load_json
        output_ids = []
        for result in request.kept:
            file_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{request.job_id}/{result.storage_key}")
            output_ids.append(str(file_id))
            if await MediaFile.exists().where(MediaFile.id == file_id):
                continue
            name = _output_name(spec, result.step_id, result.storage_key, len(request.kept))
            await MediaFile(
                id=file_id, user=uuid.UUID(request.user_id), filename=name,
                original_filename=name, size=result.size, content_type=result.content_type,
                kind=result.kind, storage_key=result.storage_key, probe=result.probe,
                checksum_sha256=result.sha256, metadata=result.metadata, source="job_output",
                job=job.id,
            ).save()
        for key in request.intermediate_keys:
            await self.storage.delete(key)
        await Job.update({
            Job.status: "completed", Job.output_files: output_ids,
            Job.progress: request.progress, Job.retry_count: request.retry_count,
            Job.completed_at: now(), Job.updated_at: now(),
            Job.result: {"output_files": output_ids},
        }).where(Job.id == job.id)
        return output_ids

    @activity.defn(name="discard_outputs")
    async def discard_outputs(self, request: FinalizeInput) -> None:
        for key in request.intermediate_keys:
            await self.storage.delete(key)

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, request: WebhookInput) -> None:
        from activities.webhooks import deliver

        await deliver(self.settings, request)


def _output_name(spec: dict, step_id: str, key: str, count: int) -> str:
    ext = key.rsplit(".", 1)[-1]
    wanted = (spec.get("output") or {}).get("filename")
    if wanted and count == 1:
        return wanted
    base = (wanted.rsplit(".", 1)[0] if wanted else spec.get("type", "output"))
    return f"{base}-{step_id}.{ext}" if count > 1 else f"{base}.{ext}"
