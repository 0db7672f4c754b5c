"""MediaJobWorkflow: one durable workflow per job (docs/ARCHITECTURE.md, "Job lifecycle").

Deterministic orchestration only. It calls activities through their typed stubs
(``workflows.activities``), so a renamed or retyped activity fails type checking and
tests rather than a running job. It keeps the progress that the
``progress`` query answers, stops at step boundaries while paused, and records every
status change in the database and in the ``MediaflowJobStatus`` search attribute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutType,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as TimeoutError_

with workflow.unsafe.imports_passed_through():
    from core.enums import JobStatus, Pool
    from core.plan.model import PlanStep
    from core.temporal import JOBS_QUEUE, POOL_QUEUES, SA_JOB_STATUS, WORKFLOW_TYPE
    from workflows.activities import (
        await_imports,
        deliver_webhook,
        discard_outputs,
        finalize_job,
        prepare_job,
        record_operation,
        run_ffmpeg_step,
        update_job_status,
    )
    from workflows.types import (
        DiscardInput,
        FinalizeInput,
        ImportWait,
        JobInput,
        OperationRecord,
        RerouteInput,
        StatusUpdate,
        StepInput,
        StepProgress,
        StepResult,
        WebhookInput,
    )

R = TypeVar("R")
NON_RETRYABLE = ["InvalidMedia", "InvalidParams", "NoGpuWorker", "BookkeepingError"]
BOOKKEEPING_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=15),
                                non_retryable_error_types=NON_RETRYABLE)


LOCAL_BOOKKEEPING = "bookkeeping-as-local-activities"
"""Patch id: database bookkeeping (prepare, status, operation log, discard) runs as local
activities — in the workflow's own task, with no task-queue round trip: a one-step job's
history shrinks from 35 events to about 22. ``finalize_job`` stays an ordinary activity
(see ``_finalize``). Histories recorded before the patch scheduled them all as ordinary
activities, and replay so."""


async def bookkeep(activity: Callable[[Any], Awaitable[R]], arg: Any, *, local: bool,
                   finish_before_cancel: bool = False) -> R:
    """Run a database activity: retried while the database is away (up to 30 minutes),
    never for data it refuses; ``local`` in the workflow's own task (``LOCAL_BOOKKEEPING``).
    With ``finish_before_cancel`` a cancel that arrives
    meanwhile waits for it (and then loses: publishing outputs is the point of no
    return)."""
    cancellation = (workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                    if finish_before_cancel else workflow.ActivityCancellationType.TRY_CANCEL)
    attempt, overall = timedelta(seconds=60), timedelta(minutes=30)
    if local:
        return await workflow.execute_local_activity(
            activity, arg, retry_policy=BOOKKEEPING_RETRY, cancellation_type=cancellation,
            start_to_close_timeout=attempt, schedule_to_close_timeout=overall)
    return await workflow.execute_activity(
        activity, arg, task_queue=JOBS_QUEUE, retry_policy=BOOKKEEPING_RETRY,
        cancellation_type=cancellation, start_to_close_timeout=attempt,
        schedule_to_close_timeout=overall)


STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60), maximum_attempts=4,
    non_retryable_error_types=NON_RETRYABLE,
)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
FINISH_WHEN_LAST_STEP_DONE = "finish-when-last-step-done"
"""Patch id: a pause stops at the boundary *between* steps; once the last step is done
the job completes (histories recorded before it paused there as well)."""
STEP_LOGS_ITS_SUCCESS = "step-logs-its-own-success"
"""Patch id: a step that wrote its own success row in the operation log
(``StepResult.logged``) is not logged again here: one local activity less per step.
Histories recorded before, and steps that could not write the row, log it from here."""
LAST_STEP_PUBLISHES = "last-step-publishes"
"""Patch id: a job's last step is given what ``finalize_job`` would be (``StepInput.finalize``)
and publishes the outputs itself (``StepResult.published``); the workflow then completes
at once: one activity task and one workflow task less per job, about a quarter of the
Temporal server's CPU for a small job. A step that could not publish leaves it to
``finalize_job``, as do histories recorded before."""
EVERY_PATCH_ABOVE = "media-job-v4"
"""Patch id, asked once as the workflow starts: a workflow started with it takes the new
path of every patch above without asking for each. Each first ask records a marker and
upserts the ``TemporalChangeVersion`` search attribute, a write to Temporal's visibility
store: four of each per job before. Histories recorded before ask for each where the code
meets it, and replay so. A later patch is asked for on its own."""
GPU_PICKUP_TIMEOUT = timedelta(seconds=60)
WAIT_FOR_IMPORTS = "wait-for-imports"
"""Patch id: a job whose inputs were still being imported when it was submitted
(``JobInput.importing_files``) waits for them, pending, before anything else, and fails
with ``ImportFailed`` if one of them does. Only such jobs ask for the patch; histories
recorded before it never had such inputs."""
IMPORT_WAIT_LIMIT = timedelta(hours=25)
"""Longer than any import can take (its own time limit and retries): an import always
ends, and the wait learns how."""


def _not_picked_up(exc: ActivityError) -> bool:
    cause = exc.cause
    return isinstance(cause, TimeoutError_) and cause.type == TimeoutType.SCHEDULE_TO_START


def step_timeout(step: PlanStep) -> timedelta:
    """Start-to-close scaled from the media duration: generous, but finite."""
    return timedelta(seconds=min(24 * 3600, 300 + 20 * step.expected_seconds))


def failure_of(exc: BaseException) -> tuple[str, str]:
    """(code, message) of the innermost ApplicationError, else a generic one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.type or "JobFailed", cause.message
        cause = cause.__cause__
    return "JobFailed", str(exc) or type(exc).__name__


@workflow.defn(name=WORKFLOW_TYPE)
class MediaJobWorkflow:
    def __init__(self) -> None:
        self._status = JobStatus.pending
        self._paused = False
        self._pool_override: Pool | None = None
        self._steps: list[PlanStep] = []
        self._done = 0
        self._done_weight = 0.0
        self._step_percent = 0.0
        self._speed: float | None = None
        self._step_started: float | None = None
        self._retries = 0
        self._every_patch_above = False

    # -- queries and signals ---------------------------------------------------------------
    @workflow.query(name="progress")
    def progress(self) -> dict:
        total = sum(s.weight for s in self._steps) or 1.0
        current = self._steps[self._done] if self._done < len(self._steps) else None
        done = self._done_weight + (current.weight * self._step_percent / 100 if current else 0)
        percent = 100.0 if self._status == JobStatus.completed \
            else round(min(99.9, 100 * done / total), 1)
        return {
            "status": self._status,
            "percent": percent,
            "step": current.step_id if current else None,
            "steps_done": self._done,
            "steps_total": len(self._steps),
            "eta_seconds": self._eta(),
            "speed": self._speed,
        }

    def _eta(self) -> float | None:
        """Seconds of media still to produce, at the current step's speed."""
        if self._status != JobStatus.processing or not self._speed or self._speed <= 0:
            return None
        seconds_of_media = sum(s.expected_seconds for s in self._steps[self._done:])
        current = self._steps[self._done] if self._done < len(self._steps) else None
        if current:
            seconds_of_media -= current.expected_seconds * self._step_percent / 100
        return round(max(0.0, seconds_of_media) / self._speed, 1)

    @workflow.signal(name="pause")
    def pause(self) -> None:
        self._paused = True

    @workflow.signal(name="resume")
    def resume(self) -> None:
        self._paused = False

    @workflow.signal(name="reroute")
    def reroute(self, request: RerouteInput) -> None:
        if request.pool in POOL_QUEUES:
            self._pool_override = Pool(request.pool)

    @workflow.signal(name="step_progress")
    def step_progress(self, update: StepProgress) -> None:
        if update.index == self._done:
            self._step_percent = max(0.0, min(100.0, update.percent))
            self._speed = update.speed

    # -- the run ---------------------------------------------------------------------------
    @workflow.run
    async def run(self, job: JobInput) -> dict:
        results: list[StepResult] = []
        self._every_patch_above = workflow.patched(EVERY_PATCH_ABOVE)
        try:
            if job.importing_files and self._patched(WAIT_FOR_IMPORTS):
                await self._await_imports(job)
            self._status = JobStatus.processing
            prepared = await bookkeep(prepare_job, job, local=self._local_bookkeeping())
            await self._upsert_status(JobStatus.processing)
            self._steps = prepared.steps
            gpu_ready = self._gpu_ready(job, prepared.gpu_available)
            for step in self._steps:
                await self._step_boundary(job)
                results.append(await self._run_step(job, step, results, gpu_ready))
            if not self._patched(FINISH_WHEN_LAST_STEP_DONE):
                await self._step_boundary(job)  # before the patch: a pause withheld the result
            published = results[-1].published if results else None
            if published is not None:  # the last step published the outputs
                self._status = JobStatus.completed
                await self._upsert_status(JobStatus.completed)
                output_ids = published
            else:
                output_ids = await self._finalize(job, results)
        except (Exception, asyncio.CancelledError) as exc:  # every ending is recorded
            published = await self._record_ending(job, exc, results)
            if published is not None:  # the outputs were out before the ending: it lost
                return {"status": JobStatus.completed, "output_files": published}
            if is_cancelled_exception(exc):
                raise
            code, message = failure_of(exc)
            raise ApplicationError(message, type=code, non_retryable=True) from None
        await self._notify(job, "job.completed")
        return {"status": JobStatus.completed, "output_files": output_ids}

    async def _await_imports(self, job: JobInput) -> None:
        """Wait while the job's inputs download (docs/API.md, "Import from a URL")."""
        await workflow.execute_activity(
            await_imports, ImportWait(job.job_id, job.user_id, list(job.importing_files)),
            task_queue=JOBS_QUEUE, start_to_close_timeout=IMPORT_WAIT_LIMIT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=15),
                                     non_retryable_error_types=["ImportFailed"]))

    def _gpu_ready(self, job: JobInput, ready: bool) -> bool:
        if job.accelerator == "gpu" and not ready and not self._pool_override:
            raise ApplicationError(
                "accelerator 'gpu' was requested but no GPU worker is polling mediaflow-gpu",
                type="NoGpuWorker", non_retryable=True,
            )
        return ready

    def _pool_for(self, job: JobInput, step: PlanStep, gpu_ready: bool) -> Pool:
        if self._pool_override:
            return self._pool_override
        if job.accelerator == "gpu":
            return Pool.gpu
        if job.accelerator == "auto" and gpu_ready and step.gpu_capable:
            return Pool.gpu
        return Pool.cpu

    def _patched(self, patch: str) -> bool:
        """``workflow.patched``, answered at once for a workflow started with
        ``EVERY_PATCH_ABOVE``."""
        return self._every_patch_above or workflow.patched(patch)

    def _local_bookkeeping(self) -> bool:
        return self._patched(LOCAL_BOOKKEEPING)

    async def _step_boundary(self, job: JobInput) -> None:
        if not self._paused:
            return
        await self._set_status(job, JobStatus.paused)
        await workflow.wait_condition(lambda: not self._paused)
        await self._set_status(job, JobStatus.processing)

    async def _run_step(
        self, job: JobInput, step: PlanStep, done: list[StepResult], gpu_ready: bool
    ) -> StepResult:
        pool = self._pool_for(job, step, gpu_ready)
        self._step_percent, self._speed = 0.0, None
        started = workflow.now()
        request = StepInput(
            job_id=job.job_id, user_id=job.user_id, step=step, pool=pool,
            earlier_outputs={r.step_id: r.storage_key for r in done}, priority=job.priority,
        )
        if step is self._steps[-1] and self._patched(LAST_STEP_PUBLISHES):
            request.finalize = self._finalize_input(job, done)
        record = OperationRecord(
            job_id=job.job_id, step=step.index, step_id=step.step_id, operation_type=step.op,
            pool=request.pool, success=False, argv=list(step.argv),
            started_at=started.isoformat(),
        )
        try:
            result = await self._execute_on_a_polled_pool(job, request)
        except ActivityError as exc:
            if not is_cancelled_exception(exc):
                code, message = failure_of(exc)
                exhausted = exc.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
                record.attempt = STEP_RETRY.maximum_attempts if exhausted else 1
                record.duration = (workflow.now() - started).total_seconds()
                record.error_details = f"{code}: {message}"[:4000]
                record.pool = request.pool  # the CPU pool after a GPU fallback
                await self._log(record)
            raise
        self._retries += result.attempt - 1
        record.success, record.pool, record.attempt = True, result.pool, result.attempt
        record.duration, record.speed = result.wall_seconds, result.speed
        record.argv, record.decoder = result.argv or record.argv, result.decoder
        if not (result.logged and self._patched(STEP_LOGS_ITS_SUCCESS)):
            await self._log(record)
        self._done += 1
        self._done_weight += step.weight
        self._step_percent = 0.0
        return result

    async def _execute_on_a_polled_pool(self, job: JobInput, request: StepInput) -> StepResult:
        """Run the step on its pool; a GPU step that no GPU worker picks up in time moves to
        the CPU pool (``auto``), or fails the job (``gpu``, unless rerouted to the CPU)."""
        try:
            return await self._execute_step(request)
        except ActivityError as exc:
            if not (request.pool == Pool.gpu and _not_picked_up(exc)):
                raise
            if job.accelerator == "gpu" and self._pool_override != Pool.cpu:
                raise ApplicationError(
                    "no GPU worker picked up the step within "
                    f"{GPU_PICKUP_TIMEOUT.total_seconds():.0f} s",
                    type="NoGpuWorker", non_retryable=True) from exc
            workflow.logger.warning("GPU pool idle; step %s goes to the CPU pool",
                                    request.step.index)
            request.pool = Pool.cpu
            return await self._execute_step(request)

    async def _execute_step(self, request: StepInput) -> StepResult:
        on_gpu = request.pool == Pool.gpu
        return await workflow.execute_activity(
            run_ffmpeg_step, request,
            task_queue=POOL_QUEUES[request.pool],
            start_to_close_timeout=step_timeout(request.step),
            # a GPU worker that vanished must not strand the job on its queue
            schedule_to_start_timeout=GPU_PICKUP_TIMEOUT if on_gpu else None,
            heartbeat_timeout=HEARTBEAT_TIMEOUT, retry_policy=STEP_RETRY,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            # among the steps waiting on the pool's queue, a lower key starts first
            priority=Priority(priority_key=request.priority),
        )

    def _finalize_input(self, job: JobInput, results: list[StepResult]) -> FinalizeInput:
        """What publishing the outputs of ``results`` takes, with the progress the job will
        show once completed."""
        kept_ids = {s.step_id for s in self._steps if s.keep_output}
        total = len(self._steps)
        return FinalizeInput(
            job_id=job.job_id, user_id=job.user_id,
            kept=[r for r in results if r.step_id in kept_ids],
            intermediate_keys=[r.storage_key for r in results if r.step_id not in kept_ids],
            retry_count=self._retries,
            progress={"status": JobStatus.completed, "percent": 100.0, "step": None,
                      "steps_done": total, "steps_total": total, "eta_seconds": None,
                      "speed": self._speed},
        )

    async def _finalize(self, job: JobInput, results: list[StepResult]) -> list[str]:
        request = self._finalize_input(job, results)  # with what progress() answers next
        self._status = JobStatus.completed
        # an ordinary activity even with local bookkeeping: a cancel that lands while it
        # runs must wait for it and then lose, which only the server's cancellation
        # bookkeeping guarantees
        output_ids = await bookkeep(finalize_job, request, finish_before_cancel=True,
                                    local=False)
        await self._upsert_status(JobStatus.completed)
        return output_ids

    async def _record_ending(self, job: JobInput, exc: BaseException,
                             results: list[StepResult]) -> list[str] | None:
        """Record a failure or cancel: None, or the job's output File ids when the job
        had completed before (a cancel that reached the workflow together with the result
        of the step that published: the row stays completed, and so does the workflow)."""
        cancelled = is_cancelled_exception(exc)
        status = JobStatus.cancelled if cancelled else JobStatus.failed
        code, message = ("Cancelled", "the job was cancelled") if cancelled else failure_of(exc)
        self._status = status
        # nothing partial is published: outputs of finished steps are removed
        keys = [r.storage_key for r in results]
        if keys:
            await bookkeep(discard_outputs, DiscardInput(job.job_id, keys),
                           local=self._local_bookkeeping())
        published = await self._set_status(job, status, error=(code, message),
                                           set_completed=True)
        await self._notify(job, f"job.{self._status}")
        return published

    async def _notify(self, job: JobInput, event: str) -> None:
        """Deliver the webhook; its failure is logged by the activity, never fails the job."""
        if not job.has_webhook:
            return
        try:
            await workflow.execute_activity(
                deliver_webhook, WebhookInput(job.job_id, event),
                task_queue=JOBS_QUEUE, start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5),
                    maximum_attempts=8, non_retryable_error_types=["WebhookRefused"],
                ),
            )
        except ActivityError as exc:
            workflow.logger.warning("webhook for job %s not delivered: %s", job.job_id, exc)

    async def _log(self, record: OperationRecord) -> None:
        await bookkeep(record_operation, record, local=self._local_bookkeeping())

    async def _set_status(
        self, job: JobInput, status: JobStatus, *, error: tuple[str, str] | None = None,
        set_completed: bool = False,
    ) -> list[str] | None:
        self._status = status
        update = StatusUpdate(
            job_id=job.job_id, status=status, progress=self.progress(),
            error_code=error[0] if error else None, error_message=error[1] if error else None,
            retry_count=self._retries, set_completed=set_completed,
        )
        published = await bookkeep(update_job_status, update, local=self._local_bookkeeping())
        if published is not None:  # an ending of a job that had completed: it stays so
            self._status = JobStatus.completed
        await self._upsert_status(self._status)
        return published

    async def _upsert_status(self, status: JobStatus) -> None:
        workflow.upsert_search_attributes([SA_JOB_STATUS.value_set(status)])

