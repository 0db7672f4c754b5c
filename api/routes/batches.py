"""``POST /jobs/batch`` (docs/API.md, "Batches"): up to 100 jobs in one request, each a
JobSpec or a template request, each judged alone and answered with its own status.

An item is exactly what ``POST /jobs`` would make of it (the same checks, the same
errors), with its own Idempotency-Key ``<key>:<index>``; the items' workflows start
concurrently. The batch shares the user's active-job limit (``JobSlots``): items past it
are 429 while the others run.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from temporalio.client import Client

from api.deps import CurrentUser, SettingsDep, TemporalDep
from api.errors import safe_errors
from api.job_requests import JobRequest
from api.routes.jobs import JobSlots, at_job_limit, submit
from api.routing import ApiRouter
from api.schemas import Job
from core.config import Settings
from core.enums import ACTIVE_STATUSES
from core.tables import Job as JobRow

router = ApiRouter(prefix="/jobs", tags=["jobs"])

MAX_ITEMS = 100
CONCURRENCY = 8
"""Items in flight at once: enough to overlap the workflow starts, few enough to leave
the database pool to other requests."""
REQUEST = TypeAdapter(JobRequest)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: Annotated[list[dict[str, Any]], Field(
        min_length=1, max_length=MAX_ITEMS,
        description="1-100 items, each a JobSpec or a template request {template, "
                    "variables, webhook?, priority?}; each is judged alone")]


class BatchError(BaseModel):
    detail: str | list[dict[str, Any]] | dict[str, Any]


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="202 created, 200 the job of an Idempotency-Key already "
                                    "used, else the 4xx or 503 POST /jobs would answer")
    job: Job | None = None
    error: BatchError | None = None


class BatchOut(BaseModel):
    items: list[BatchItem]


def _at_item(index: int, detail: Any) -> Any:
    """Field errors located in the batch body: ``["body", "jobs", <index>, …]``."""
    if not isinstance(detail, list):
        return detail
    return [{**item, "loc": ["body", "jobs", index, *list(item.get("loc", []))[1:]]}
            for item in detail]


async def free_slots(user_id: uuid.UUID, settings: Settings, temporal: Client) -> int:
    limit = settings.max_active_jobs_per_user
    active = [JobRow.user == user_id, JobRow.status.is_in(list(ACTIVE_STATUSES))]
    if await JobRow.count().where(*active) >= limit:
        await at_job_limit(user_id, limit, temporal)  # reconciles rows ended outside us
    return max(0, limit - await JobRow.count().where(*active))


@router.post("/batch", name="batch", response_model=BatchOut, responses={200: {
    "description": "one answer per item, in order (the batch itself is accepted even when "
                   "every item is refused)"}})
async def submit_batch(
    body: BatchIn, user: CurrentUser, settings: SettingsDep, temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header(
        max_length=250, description="item i uses '<key>:<i>'")] = None,
) -> dict[str, Any]:
    """Submit up to 100 jobs; each item is answered as ``POST /jobs`` would answer it."""
    gate = asyncio.Semaphore(CONCURRENCY)
    keys = [f"{idempotency_key}:{i}" if idempotency_key else None
            for i in range(len(body.jobs))]
    slots = JobSlots(await free_slots(user.id, settings, temporal))  # replays take none

    async def one(index: int, raw: dict[str, Any]) -> dict[str, Any]:
        try:
            request = REQUEST.validate_python(raw)
        except ValidationError as exc:
            detail = [{**e, "loc": ["body", *e["loc"]]} for e in safe_errors(exc.errors())]
            return {"index": index, "status": 422, "error": {"detail": _at_item(index, detail)}}
        async with gate:
            try:
                code, job = await submit(request, user.id, settings, temporal, keys[index],
                                         slots)
            except HTTPException as exc:
                return {"index": index, "status": exc.status_code,
                        "error": {"detail": _at_item(index, exc.detail)}}
        return {"index": index, "status": code, "job": job}

    items = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(body.jobs)))
    return {"items": list(items)}
