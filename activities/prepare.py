"""``prepare_job``: compile a job's stored spec into the runs its workflow carries out.

It compiles with the same function ``POST /jobs/validate`` uses, from the same stored
files, so what the API showed is what runs; and it marks the job ``processing``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.enums import TERMINAL_STATUSES, JobStatus
from core.ffmpeg import encoders
from core.files import load_inputs, media_of
from core.plan import PlanStep, compile_plan
from core.spec import JobSpec, SpecError, referenced_file_ids
from core.tables import Job
from core.temporal import gpu_workers_polling
from workflows.types import JobInput, PreparedJob


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidParams", non_retryable=True)


async def live_inputs(user_id: str, file_ids: list[str]) -> dict[str, dict]:
    """The user's live files among ``file_ids``; a deleted one fails the job for good."""
    inputs = await load_inputs(user_id, file_ids)
    missing = [f for f in file_ids if f not in inputs]
    if missing:
        raise invalid(f"input files are gone: {', '.join(missing)}")
    return inputs


async def compile_steps(job: JobInput) -> list[PlanStep]:
    row = await Job.select(Job.spec).where(Job.id == uuid.UUID(job.job_id)).output(
        load_json=True).first()
    if row is None:
        raise invalid(f"job {job.job_id} does not exist")
    try:
        spec = JobSpec.model_validate(row["spec"])
    except ValidationError as exc:
        raise invalid(f"the stored job spec is invalid: {exc.errors()[0]['msg']}") from exc
    inputs = await live_inputs(job.user_id, referenced_file_ids(spec))
    try:
        return compile_plan(spec, media_of(inputs), encoders=await encoders()).steps
    except SpecError as exc:
        raise invalid(str(exc)) from exc


@activity.defn(name="prepare_job")
async def prepare_job(job: JobInput) -> PreparedJob:
    """Compile the plan, mark the job processing, and say whether a GPU pool polls (asked
    of Temporal while the plan compiles: the two waits overlap)."""
    steps, gpu = await asyncio.gather(compile_steps(job), gpu_pool_polls(job))
    now = dt.datetime.now(dt.UTC)
    await Job.update({
        Job.status: JobStatus.processing, Job.started_at: now, Job.updated_at: now,
        Job.progress: {"percent": 0.0, "steps_done": 0, "steps_total": len(steps),
                       "step": steps[0].step_id if steps else None},
    }).where(Job.id == uuid.UUID(job.job_id), Job.status.not_in(list(TERMINAL_STATUSES)))
    return PreparedJob(steps=steps, gpu_available=gpu)


async def gpu_pool_polls(job: JobInput) -> bool:
    return job.accelerator != "cpu" and await gpu_workers_polling(activity.client())
