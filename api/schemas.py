"""Response bodies of the job, operator and health routes, so the OpenAPI document
describes what they really answer (a client generated from it gets a typed ``Job``).

The shapes are docs/API.md's; the values come from ``core.views`` (shared with the
webhooks), and these models only describe and check them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from core.enums import JobStatus

Timestamp = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


class ErrorBody(BaseModel):
    """Every error answer: ``{"detail": …}`` (a message, or a list of field errors)."""

    detail: str | list[dict[str, Any]] | dict[str, Any]


class JobProgress(BaseModel):
    percent: float = Field(ge=0, le=100)
    step: str | None = None
    steps_done: int = Field(ge=0)
    steps_total: int = Field(ge=0)
    eta_seconds: float | None = None
    speed: float | None = None


class JobError(BaseModel):
    code: str
    message: str


class Job(BaseModel):
    id: uuid.UUID
    type: str
    status: JobStatus
    progress: JobProgress
    spec: dict[str, Any] = Field(description="the JobSpec as submitted (docs/API.md)")
    input_files: list[uuid.UUID]
    output_files: list[uuid.UUID]
    error: JobError | None
    retry_count: int
    workflow_id: str
    template_id: uuid.UUID | None = Field(None, description="the template it was made from")
    priority: int = Field(3, ge=1, le=5, description="1 (first) to 5 (last)")
    created_at: Timestamp
    started_at: Timestamp
    completed_at: Timestamp


class JobList(BaseModel):
    items: list[Job]
    total: int


class PlanRun(BaseModel):
    """One ffmpeg run, argv with placeholders (``{in0}``, ``{out}``), no server paths."""

    step: str
    op: str
    pool: str = Field(description="cpu, or gpu-capable when it decodes video")
    argv: list[str]


class Plan(BaseModel):
    valid: bool
    plan: list[PlanRun]
    warnings: list[str]
    waits_for: list[uuid.UUID] = Field(
        default_factory=list, description="input files still importing: the job waits for "
                                          "them and the plan is compiled then")
    spec: dict[str, Any] | None = Field(
        None, description="the JobSpec that would run, defaults filled in (a template's "
                          "expanded with the given variables)")


class OperationLogEntry(BaseModel):
    operation_type: str
    step: int
    step_id: str
    pool: str
    attempt: int
    started_at: Timestamp
    duration: float | None
    success: bool
    error_details: str | None
    speed: float | None
    decoder: str
    argv: list[str]


class AdminStats(BaseModel):
    jobs_by_status: dict[str, int]
    jobs_by_type: dict[str, int]
    mean_duration_seconds_by_type: dict[str, float]
    storage_bytes: int
    users: int


class Health(BaseModel):
    status: str = Field(description="ok, or error when a check failed (then 503)")
    checks: dict[str, str]


ENDED: dict[int | str, dict[str, Any]] = {409: {"description": "the job has already ended"}}
"""The ``responses=`` of the job control routes (cancel, pause, resume)."""
