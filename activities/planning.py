"""Compile a job's stored spec into the steps its workflow runs."""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from core.jobplan import PlanError, compile_for, load_inputs, step_spec
from core.jobspec import JobSpec, referenced_file_ids
from core.tables import Job
from workflows.types import JobInput, StepSpec


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidParams", non_retryable=True)


async def live_inputs(user_id: str, file_ids: list[str]) -> dict[str, dict]:
    """The user's live files among ``file_ids``; a deleted one fails the job for good."""
    inputs = await load_inputs(user_id, file_ids)
    missing = [f for f in file_ids if f not in inputs]
    if missing:
        raise invalid(f"input files are gone: {', '.join(missing)}")
    return inputs


async def compile_steps(job: JobInput) -> list[StepSpec]:
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
        plan = compile_for(spec, inputs)
    except PlanError as exc:
        raise invalid(str(exc)) from exc
    return [step_spec(step) for step in plan.steps]
