"""Operator routes (superuser only): every job, statistics, control and rerouting."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from api import job_control
from api.deps import Limit, Offset, SuperUser, TemporalDep
from api.routing import ApiRouter
from api.schemas import ENDED, AdminStats, Job, JobList
from core.enums import JobStatus, Pool
from core.spec import JobType
from core.tables import Job as JobRow
from core.tables import MediaFile, User
from core.temporal import gpu_workers_polling

router = ApiRouter(prefix="/admin", tags=["admin"])


class RerouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pool: Pool


@router.get("/jobs", name="list_jobs", response_model=JobList)
async def all_jobs(
    _: SuperUser,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    type_: Annotated[JobType | None, Query(alias="type")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    return await job_control.page_of_jobs(limit, offset, user_id, status_, type_)


_MEAN = ("SELECT type, AVG({}) AS mean FROM mf_job WHERE status = {{}} AND started_at IS NOT "
         "NULL AND completed_at IS NOT NULL GROUP BY type")
MEAN_DURATION_PG = _MEAN.format("EXTRACT(EPOCH FROM completed_at - started_at)")
MEAN_DURATION = _MEAN.format("(julianday(completed_at) - julianday(started_at)) * 86400")


@router.get("/stats", name="stats", response_model=AdminStats)
async def stats(_: SuperUser) -> dict:
    by_status = await JobRow.raw("SELECT status, COUNT(*) AS n FROM mf_job GROUP BY status")
    by_type = await JobRow.raw("SELECT type, COUNT(*) AS n FROM mf_job GROUP BY type")
    # averaged in the database: a scan of every finished job must not cross into Python
    # (on SQLite plain reads run on the event loop's thread)
    mean = MEAN_DURATION_PG if JobRow._meta.db.engine_type == "postgres" else MEAN_DURATION
    durations = await JobRow.raw(mean, JobStatus.completed.value)
    storage = (await MediaFile.raw(
        "SELECT COALESCE(SUM(size), 0) AS used FROM mf_media_file WHERE purged_at IS NULL"
    ))[0]
    return {
        "jobs_by_status": {r["status"]: r["n"] for r in by_status},
        "jobs_by_type": {r["type"]: r["n"] for r in by_type},
        "mean_duration_seconds_by_type": {r["type"]: round(float(r["mean"]), 3)
                                          for r in durations},
        "storage_bytes": int(storage["used"]),
        "users": await User.count(),
    }


@router.post("/jobs/{job_id}/cancel", name="cancel", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def admin_cancel(job_id: str, _: SuperUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, None, "cancel")


@router.post("/jobs/{job_id}/pause", name="pause", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def admin_pause(job_id: str, _: SuperUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, None, "pause")


@router.post("/jobs/{job_id}/resume", name="resume", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job, responses=ENDED)
async def admin_resume(job_id: str, _: SuperUser, temporal: TemporalDep) -> dict:
    return await job_control.control(temporal, job_id, None, "resume")


@router.post("/jobs/{job_id}/reroute", name="reroute", status_code=status.HTTP_202_ACCEPTED,
             response_model=Job,
             responses={409: {"description": "the job has ended, or no GPU worker polls"}})
async def admin_reroute(job_id: str, body: RerouteRequest, _: SuperUser,
                        temporal: TemporalDep) -> dict:
    """Send the job's remaining steps to another pool."""
    row = await job_control.load_job(job_id, None)
    job_control.require_active(row)  # an ended job is a 409 whatever the pool
    if body.pool == Pool.gpu and not await gpu_workers_polling(temporal):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="no GPU worker is polling")
    return await job_control.reroute(temporal, row, body.pool)
