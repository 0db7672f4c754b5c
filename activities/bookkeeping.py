"""Bookkeeping activities: database rows of jobs, outputs and operation logs, and the
removal of step outputs nobody keeps.

They run on ``mediaflow-jobs`` (every worker polls it) and are idempotent, since
Temporal may run any of them more than once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from core.enums import TERMINAL_STATUSES, FileSource, JobStatus
from core.packages import PACKAGE_KIND, index_key, load_index
from core.storage import Storage
from core.tables import Job, MediaFile, OperationLog
from workflows.types import (
    DiscardInput,
    FinalizeInput,
    OperationRecord,
    StatusUpdate,
    StepResult,
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
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @activity.defn(name="update_job_status")
    @data_errors_are_final
    async def update_job_status(self, update: StatusUpdate) -> list[str] | None:
        """Record a status. None once it is recorded; for an ending of a job that has
        already completed (its outputs published: a cancel that raced the publishing),
        nothing changes and the answer is the job's output File ids."""
        values: dict = {
            Job.status: update.status,
            Job.progress: update.progress,
            Job.retry_count: update.retry_count,
            Job.updated_at: now(),
        }
        if update.error_code:
            values[Job.error] = {"code": update.error_code, "message": update.error_message}
        if update.set_completed:
            values[Job.completed_at] = now()
        if update.set_started:
            values[Job.started_at] = now()
        query = Job.update(values).where(Job.id == uuid.UUID(update.job_id))
        ending = None
        if update.status not in TERMINAL_STATUSES:
            # a late "processing"/"paused" write never buries an ending already recorded
            query = query.where(Job.status.not_in(list(TERMINAL_STATUSES)))
        else:  # counted once: a retried activity finds the ending already recorded
            ending = await Job.select(Job.type, Job.status, Job.created_at,
                                      Job.output_files).where(
                Job.id == uuid.UUID(update.job_id)).output(load_json=True).first()
            if ending is not None and ending["status"] == JobStatus.completed:
                # published outputs are the point of no return: a cancel that raced the
                # publishing (and reached the workflow with its result) loses
                return list(ending["output_files"] or [])
        await query
        if ending is not None and ending["status"] not in TERMINAL_STATUSES:
            metrics.job_finished(ending["type"], update.status, ending["created_at"])
        return None

    @activity.defn(name="record_operation")
    @data_errors_are_final
    async def record_operation(self, record: OperationRecord) -> None:
        await save_operation(record)

    @activity.defn(name="finalize_job")
    @data_errors_are_final
    async def finalize_job(self, request: FinalizeInput) -> list[str]:
        return await finish_despite_cancel(publish_outputs(self.storage, request))

    @activity.defn(name="discard_outputs")
    async def discard_outputs(self, request: DiscardInput) -> None:
        keys = [*request.keys, *request.intermediate_keys]
        # never the bytes of a published file (an ending that raced the publishing)
        published = {row["storage_key"] for row in await MediaFile.select(
            MediaFile.storage_key).where(MediaFile.storage_key.is_in(keys))} if keys else set()
        for key in keys:
            if key not in published:
                await self.storage.delete_tree(key)  # a package's members with it


async def publish_outputs(storage: Storage, request: FinalizeInput) -> list[str]:
    """Publish kept outputs as the user's files, drop intermediates, complete the job: the
    point of no return, so callers run it to its end even when a cancel of the job reaches
    them (``finish_despite_cancel``), and the cancel then loses. Idempotent: a second run
    finds the files and adds none. Run by ``finalize_job``, or by a job's last step
    (``StepInput.finalize``)."""
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
        name = _output_name(spec, result.step_id, result.storage_key, len(request.kept),
                            package=result.kind == PACKAGE_KIND)
        metadata = await _package_metadata(storage, result) \
            if result.kind == PACKAGE_KIND else result.metadata
        await MediaFile(
            id=file_id, user=uuid.UUID(request.user_id), filename=name,
            original_filename=name, size=result.size, content_type=result.content_type,
            kind=result.kind, storage_key=result.storage_key, probe=result.probe,
            checksum_sha256=result.sha256, metadata=metadata,
            source=FileSource.job_output,
            job=job.id,
        ).save()
    for key in request.intermediate_keys:
        await storage.delete_tree(key)
    first_time = job.status not in TERMINAL_STATUSES
    await Job.update({
        Job.status: JobStatus.completed, Job.output_files: output_ids,
        Job.progress: request.progress, Job.retry_count: request.retry_count,
        Job.completed_at: now(), Job.updated_at: now(),
        Job.result: {"output_files": output_ids},
    }).where(Job.id == job.id)
    if first_time:
        metrics.job_finished(job.type, JobStatus.completed, job.created_at)
    return output_ids


async def _package_metadata(storage: Storage, result: StepResult) -> dict:
    """The File metadata of a package: the step's facts and the member list, which the step
    stored beside the members (so that it never passes through the history)."""
    data = b"".join([chunk async for chunk in storage.open_stream(index_key(result.storage_key))])
    metadata = {key: value for key, value in result.metadata.items() if key != "member_count"}
    return {**metadata, "members": load_index(data)}


async def already_published(job_id: str) -> list[str] | None:
    """The job's output File ids if its outputs are published (the job is completed)."""
    row = await Job.select(Job.status, Job.output_files).where(
        Job.id == uuid.UUID(job_id)).output(load_json=True).first()
    if row is None or row["status"] != JobStatus.completed:
        return None
    return list(row["output_files"] or [])


async def finish_despite_cancel(work: Awaitable[R]) -> R:
    """Await ``work`` to its end even if the awaiting task is cancelled meanwhile (the
    cancel is absorbed); its own failure still propagates."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # the work goes on, and so does the wait for it


async def save_operation(record: OperationRecord) -> None:
    """One row of a job's operation log. Its id is derived from the job, step, attempt and
    outcome, so whoever writes it twice — a retried activity, or a step that logged its own
    success and a workflow that logs it as well — writes it once."""
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


def _output_name(spec: dict, step_id: str, key: str, count: int, *,
                 package: bool = False) -> str:
    """A package downloads as a zip of its members, so its name ends in ``.zip``."""
    ext = "zip" if package else key.rsplit(".", 1)[-1]
    wanted = (spec.get("output") or {}).get("filename")
    if wanted and count == 1 and not package:
        return wanted
    base = (wanted.rsplit(".", 1)[0] if wanted else spec.get("type", "output"))
    return f"{base}-{step_id}.{ext}" if count > 1 else f"{base}.{ext}"
