"""Bring job rows in line with workflows that closed without telling us.

An operator may terminate or reset a workflow in the Temporal UI or CLI; the
workflow then records nothing. The API reconciles a job when it reads it, and the
``mediaflow-reconcile`` schedule sweeps every job that has been quiet a while, so
lists and counts agree with Temporal too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from core.enums import ACTIVE_STATUSES, TERMINAL_STATUSES, JobStatus
from core.tables import Job

DESCRIBE_TIMEOUT = 3.0
CLOSED_AS = {
    WorkflowExecutionStatus.COMPLETED: JobStatus.completed,
    WorkflowExecutionStatus.CANCELED: JobStatus.cancelled,
    WorkflowExecutionStatus.TERMINATED: JobStatus.cancelled,
    WorkflowExecutionStatus.FAILED: JobStatus.failed,
    WorkflowExecutionStatus.TIMED_OUT: JobStatus.failed,
}


async def _load(job_id: Any) -> dict[str, Any]:
    row = await Job.select().where(Job.id == job_id).output(load_json=True).first()
    assert row is not None
    return row


async def reconcile(client: Client, row: dict[str, Any]) -> dict[str, Any]:
    """The row, ended as its workflow ended when that workflow is closed; else unchanged."""
    handle = client.get_workflow_handle(row["workflow_id"])
    try:
        description = await asyncio.wait_for(handle.describe(), DESCRIBE_TIMEOUT)
    except (RPCError, TimeoutError):
        return row
    status = description.status
    closed_as = CLOSED_AS.get(status) if status else None
    if status is None or closed_as is None:
        return row
    error = None if closed_as == JobStatus.completed else {
        "code": "Terminated" if status == WorkflowExecutionStatus.TERMINATED
        else "WorkflowClosed",
        "message": f"the workflow was {status.name.lower()} outside mediaflow",
    }
    now = dt.datetime.now(dt.UTC)
    await Job.update({Job.status: closed_as, Job.error: error, Job.completed_at: now,
                      Job.updated_at: now}).where(
        Job.id == row["id"], Job.status.not_in(list(TERMINAL_STATUSES)))
    return await _load(row["id"])


async def reconcile_quiet_jobs(client: Client, *, quiet_seconds: float, limit: int) -> int:
    """Reconcile up to ``limit`` active jobs not updated for ``quiet_seconds``; returns how
    many were ended."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=quiet_seconds)
    rows = await Job.select().where(
        Job.status.is_in(list(ACTIVE_STATUSES)), Job.updated_at <= cutoff,
    ).order_by(Job.updated_at).limit(limit).output(load_json=True)
    ended = 0
    for row in rows:
        if (await reconcile(client, row))["status"] in TERMINAL_STATUSES:
            ended += 1
    return ended
