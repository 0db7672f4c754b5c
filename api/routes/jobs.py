"""Jobs (docs/API.md, "Jobs"): submit, validate, list, read, follow, control, logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import Header, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from api import job_control
from api.deps import (
    CurrentUser,
    Limit,
    Offset,
    OptionalTemporal,
    SettingsDep,
    TemporalDep,
    get_optional_temporal,
)
from api.job_requests import JobRequest, Resolved, resolve
from api.lean import lean_get
from api.metrics import JOBS_SUBMITTED
from api.routing import ApiRouter
from api.schemas import ENDED, Job, JobList, OperationLogEntry, Plan
from core.config import Settings
from core.db import count_where, placeholders
from core.enums import ACTIVE_STATUSES, TERMINAL_STATUSES, FileStatus, JobStatus
from core.ffmpeg import encoders
from core.files import files_locked, load_inputs, media_of
from core.plan import compile_plan
from core.reconcile import reconcile
from core.spec import (
    JobSpec,
    JobType,
    SpecError,
    check_kinds,
    iter_media_uses,
    referenced_file_ids,
)
from core.tables import Job as JobRow
from core.tables import OperationLog
from core.templates import TemplateRun
from core.temporal import (
    JOBS_QUEUE,
    SA_JOB_STATUS,
    SA_JOB_TYPE,
    SA_PRIORITY,
    SA_USER_ID,
    WORKFLOW_TYPE,
    gpu_workers_polling,
    workflow_id_for,
)
from core.views import job_public
from core.webhooks import WebhookTargetRefused, check_target
from workflows.types import JobInput

router = ApiRouter(prefix="/jobs", tags=["jobs"])

EVENTS_POLL_SECONDS = 0.5
EVENTS_KEEPALIVE_SECONDS = 15.0


def unprocessable(errors: list[SpecError]) -> HTTPException:
    detail = [{**e.as_detail(), "loc": ["body", *e.loc]} for e in errors]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


async def check_spec(spec: JobSpec, user_id: uuid.UUID, settings: Settings,
                     temporal: Client | None) -> dict:
    """Everything short of running: ownership (404), kinds and plan (422), webhook target,
    GPU availability. Returns the compiled plan's public view — empty, with ``waits_for``,
    while inputs are still being imported (their kinds and the plan are checked when the
    job starts, once they are ready)."""
    file_ids = referenced_file_ids(spec)
    inputs = await load_inputs(user_id, file_ids)
    missing = [f for f in file_ids if f not in inputs]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"file {missing[0]} not found")
    failed = [SpecError(use.loc, f"file {use.value} could not be imported", "file_import_failed")
              for use in iter_media_uses(spec)
              if inputs.get(use.value, {}).get("status") == FileStatus.failed]
    if failed:
        raise unprocessable(failed)
    importing = [f for f in file_ids if inputs[f].get("status") == FileStatus.importing]
    errors = check_kinds(spec, {f: row["kind"] for f, row in inputs.items()
                                if f not in importing})
    if errors:
        raise unprocessable(errors)
    if spec.webhook is not None:
        try:
            await asyncio.to_thread(check_target, spec.webhook.url,
                                    allow_private=bool(settings.webhook_allow_private))
        except WebhookTargetRefused as exc:
            raise unprocessable([SpecError(("webhook", "url"), str(exc), "webhook_refused")]) \
                from exc
    gpu_missing = spec.accelerator == "gpu" and temporal is not None and \
        not await gpu_workers_polling(temporal)
    if gpu_missing:
        raise unprocessable([SpecError(("accelerator",),
                                       "no GPU worker is available; use 'auto' or 'cpu'",
                                       "no_gpu_worker")])
    if importing:
        return {"plan": [], "waits_for": importing, "warnings": [
            f"waits for {len(importing)} file(s) still importing; the plan is compiled when "
            "they are ready (a failed import fails the job)"]}
    try:
        plan = compile_plan(spec, media_of(inputs), settings.max_media_seconds,
                            encoders=await encoders())
    except SpecError as exc:
        raise unprocessable([exc]) from exc
    return {"plan": plan.public(), "warnings": list(plan.warnings), "waits_for": []}


async def at_job_limit(user_id: uuid.UUID, limit: int, temporal: Client) -> bool:
    """Whether the user already has ``limit`` pending, processing or paused jobs. At the
    limit, rows whose workflow an operator terminated in the Temporal UI are reconciled
    first, so they stop counting."""
    active = [JobRow.user == user_id, JobRow.status.is_in(list(ACTIVE_STATUSES))]
    statuses = sorted(status_.value for status_ in ACTIVE_STATUSES)
    if await count_where(JobRow, f'"user" = {{}} AND "status" IN ({placeholders(len(statuses))})',
                         user_id, *statuses) < limit:
        return False
    rows = await JobRow.select().where(*active).output(load_json=True)
    await asyncio.gather(*(reconcile(temporal, row) for row in rows))
    return await JobRow.count().where(*active) >= limit


async def existing_for_key(user_id: uuid.UUID, key: str) -> dict | None:
    return await JobRow.select().where(
        JobRow.user == user_id, JobRow.idempotency_key == key).output(load_json=True).first()


def summary_of(spec: JobSpec, plan: dict) -> str:
    if plan["waits_for"]:
        return f"{spec.type} job, waiting for {len(plan['waits_for'])} import(s)"
    runs = len(plan["plan"])
    return f"{spec.type} job, {runs} ffmpeg run{'s' if runs != 1 else ''}"


@router.post("", name="submit", status_code=status.HTTP_202_ACCEPTED, response_model=Job,
             responses={200: {"model": Job, "description": "the job of an Idempotency-Key "
                                                           "already used"},
                        404: {"description": "an input file or the template is missing or "
                                             "not yours"}})
async def submit_job(
    body: JobRequest, user: CurrentUser, settings: SettingsDep, temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """A JobSpec, or a template with its variables (docs/API.md, "Templates")."""
    code, job = await submit(body, user.id, settings, temporal, idempotency_key)
    return JSONResponse(job, status_code=code)


def too_many_jobs(settings: Settings) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"at most {settings.max_active_jobs_per_user} jobs may run at once",
        headers={"Retry-After": "30"},
    )


class JobSlots:
    """Room left under the user's active-job limit, shared by the items of one batch:
    an item takes a slot once it has passed every check, and gives it back if it is not
    created after all."""

    def __init__(self, free: int) -> None:
        self.free = free

    def take(self) -> bool:
        if self.free <= 0:
            return False
        self.free -= 1
        return True

    def give_back(self) -> None:
        self.free += 1


async def submit(request: JobSpec | TemplateRun, user_id: uuid.UUID, settings: Settings,
                 temporal: Client, idempotency_key: str | None,
                 slots: JobSlots | None = None) -> tuple[int, dict]:
    """Check, record and start one job: (202, Job), or (200, the earlier Job) for a known
    Idempotency-Key; HTTPException (404, 422, 429, 503) otherwise. ``slots``: the batch's
    share of the active-job limit (else the limit is checked here)."""
    if idempotency_key:
        existing = await existing_for_key(user_id, idempotency_key)
        if existing is not None:
            return 200, job_public(existing)
    resolved = await resolve(request, user_id)
    spec = resolved.spec
    if slots is None and await at_job_limit(user_id, settings.max_active_jobs_per_user,
                                            temporal):
        raise too_many_jobs(settings)
    try:
        plan = await check_spec(spec, user_id, settings, temporal)
    except HTTPException as exc:
        raise resolved.relocated(exc) from None
    if slots is not None and not slots.take():
        raise too_many_jobs(settings)
    try:
        return await _create(spec, resolved, plan, user_id, temporal, idempotency_key)
    except BaseException:
        if slots is not None:
            slots.give_back()
        raise


async def _create(spec: JobSpec, resolved: Resolved, plan: dict, user_id: uuid.UUID,
                  temporal: Client, idempotency_key: str | None) -> tuple[int, dict]:
    job_id = uuid.uuid4()
    body = spec.model_dump(mode="json")
    input_files = referenced_file_ids(spec)
    row = JobRow(id=job_id, user=user_id, type=spec.type, status=JobStatus.pending, spec=body,
              input_files=input_files, workflow_id=workflow_id_for(str(job_id)),
              idempotency_key=idempotency_key, priority=spec.priority,
              template_id=resolved.template_id,
              progress={"percent": 0.0, "steps_done": 0, "steps_total": len(plan["plan"])})
    try:
        async with files_locked(user_id, input_files) as live:
            missing = [f for f in input_files if f not in live]
            if missing:  # deleted since check_spec read it
                raise HTTPException(status.HTTP_404_NOT_FOUND,
                                    detail=f"file {missing[0]} not found")
            await row.save()
    except (asyncpg.UniqueViolationError, sqlite3.IntegrityError):  # same key raced us
        existing = await existing_for_key(user_id, idempotency_key or "")
        if existing is None:
            raise
        return 200, job_public(existing)
    try:
        await start_workflow(temporal, spec, job_id, user_id, summary_of(spec, plan),
                             importing_files=plan["waits_for"])
    except RPCError as exc:
        await JobRow.delete().where(JobRow.id == job_id)  # nothing half-created is left behind
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="Temporal is unavailable; the job was not created") from exc
    JOBS_SUBMITTED.labels(spec.type).inc()
    saved = await job_control.load_job(str(job_id), user_id)
    return 202, job_public(saved)


async def start_workflow(temporal: Client, spec: JobSpec, job_id: uuid.UUID,
                         user_id: uuid.UUID, summary: str,
                         importing_files: list[str] | None = None) -> None:
    await temporal.start_workflow(
        WORKFLOW_TYPE,
        JobInput(job_id=str(job_id), user_id=str(user_id), job_type=spec.type,
                 accelerator=spec.accelerator, summary=summary,
                 has_webhook=spec.webhook is not None, priority=spec.priority,
                 importing_files=list(importing_files or [])),
        id=workflow_id_for(str(job_id)),
        task_queue=JOBS_QUEUE,
        priority=Priority(priority_key=spec.priority),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(SA_USER_ID, str(user_id)),
            SearchAttributePair(SA_JOB_TYPE, spec.type),
            SearchAttributePair(SA_JOB_STATUS, JobStatus.pending),
            SearchAttributePair(SA_PRIORITY, spec.priority),
        ]),
        memo={"summary": summary, "job_id": str(job_id)},
    )


@router.post("/validate", name="validate", response_model=Plan,
             responses={404: {"description": "an input file or the template is missing or "
                                             "not yours"}})
async def validate_job(body: JobRequest, user: CurrentUser, settings: SettingsDep,
                       temporal: OptionalTemporal) -> dict:
    """Compile the job without running it: the ffmpeg runs it would make, with placeholders,
    and the JobSpec that would run (a template's, expanded)."""
    resolved = await resolve(body, user.id)
    try:
        plan = await check_spec(resolved.spec, user.id, settings, temporal)
    except HTTPException as exc:
        raise resolved.relocated(exc) from None
    return {"valid": True, **plan, "spec": resolved.spec.model_dump(mode="json")}


@lean_get(router, "", name="list", response_model=JobList)
async def list_jobs(
    user: CurrentUser,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    type_: Annotated[JobType | None, Query(alias="type")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    return await job_control.page_of_jobs(limit, offset, user.id, status_, type_)


@lean_get(router, "/{job_id}", name="get", response_model=Job)
async def get_job(job_id: str, user: CurrentUser, request: Request) -> dict:
    row = await job_control.load_job(job_id, user.id)
    if row["status"] in TERMINAL_STATUSES:
        return job_public(row)  # what most polls get: no Temporal client asked for
    views: job_control.LiveViews = request.app.state.live_views
    temporal = await get_optional_temporal(request)
    return await views.view(temporal, str(row["id"]))  # pollers of a running job share it


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get("/{job_id}/events", name="events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(job_id: str, user: CurrentUser, request: Request,
                     temporal: OptionalTemporal) -> StreamingResponse:
    """``progress`` events while the job runs, then one terminal event, then the end."""
    row = await job_control.load_job(job_id, user.id)  # 404 before the stream starts
    views: job_control.LiveViews = request.app.state.live_views
    job_key = str(row["id"])

    async def stream() -> AsyncIterator[bytes]:
        with views.watching(temporal, job_key, row["workflow_id"]) as ended:
            async for chunk in events_until_ended(ended):
                yield chunk

    async def events_until_ended(ended: asyncio.Event) -> AsyncIterator[bytes]:
        last: dict | None = None
        idle = 0.0
        while True:
            view = await views.view(temporal, job_key)  # shared by every watcher of it
            if view["status"] in TERMINAL_STATUSES:
                yield sse(view["status"], view)
                return
            snapshot = {"status": view["status"], **view["progress"]}
            if snapshot != last:
                yield sse("progress", {"id": view["id"], "status": view["status"],
                                       "progress": view["progress"]})
                last, idle = snapshot, 0.0
            elif idle >= EVENTS_KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                idle = 0.0
            if await request.is_disconnected():
                return
            if ended.is_set():  # set, yet the row not final: Temporal was unreachable
                await asyncio.sleep(EVENTS_POLL_SECONDS)
            else:
                with contextlib.suppress(TimeoutError):  # the ending wakes the stream at once
                    await asyncio.wait_for(ended.wait(), EVENTS_POLL_SECONDS)
            idle += EVENTS_POLL_SECONDS

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/{job_id}/cancel", name="cancel", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def cancel_job(job_id: str, user: CurrentUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, user.id, "cancel")


@router.post("/{job_id}/pause", name="pause", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def pause_job(job_id: str, user: CurrentUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, user.id, "pause")


@router.post("/{job_id}/resume", name="resume", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def resume_job(job_id: str, user: CurrentUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, user.id, "resume")


@router.get("/{job_id}/logs", name="logs", response_model=list[OperationLogEntry])
async def job_logs(job_id: str, user: CurrentUser) -> list[dict]:
    row = await job_control.load_job(job_id, user.id)
    logs = await OperationLog.select().where(OperationLog.job == row["id"]).order_by(
        OperationLog.started_at).output(load_json=True)
    return [{
        "operation_type": log["operation_type"], "step": log["step"],
        "step_id": log["step_id"], "pool": log["pool"], "attempt": log["attempt"],
        "started_at": log["started_at"].isoformat() if log["started_at"] else None,
        "duration": log["duration"], "success": log["success"],
        "error_details": log["error_details"], "speed": log["speed"],
        "decoder": log["decoder"], "argv": log["argv"],
    } for log in logs]
