"""Job control shared by the user routes and the operator routes.

Reads come from the database; while a job runs, its live progress comes from the
workflow's ``progress`` query. Anything an operator did in the Temporal UI or CLI
(cancel, terminate, reset) is reconciled into the row when it is read.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import HTTPException, status
from temporalio.client import Client, WorkflowHandle
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError

from core.jobview import TERMINAL_STATUSES, job_public
from core.reconcile import reconcile
from core.tables import Job

QUERY_TIMEOUT = 3.0


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="job not found") from None


async def load_job(job_id: str, owner: uuid.UUID | None) -> dict[str, Any]:
    """The job row, 404 when missing or (for a user) someone else's."""
    query = Job.select().where(Job.id == parse_id(job_id))
    if owner is not None:
        query = query.where(Job.user == owner)
    row = await query.output(load_json=True).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="job not found")
    return row


def handle_of(temporal: Client, row: dict[str, Any]) -> WorkflowHandle:
    return temporal.get_workflow_handle(row["workflow_id"])


async def live_view(temporal: Client | None, row: dict[str, Any]) -> dict[str, Any]:
    """The public Job, with the workflow's live progress while it runs."""
    if row["status"] in TERMINAL_STATUSES or temporal is None:
        return job_public(row)
    handle = handle_of(temporal, row)
    try:
        progress = await asyncio.wait_for(
            handle.query("progress", reject_condition=QueryRejectCondition.NOT_OPEN),
            QUERY_TIMEOUT)
    except Exception:  # noqa: BLE001 - closed (rejected), not yet started, or unreachable
        return job_public(await reconcile(temporal, row))
    if not progress.get("steps_total"):
        # the plan is still being compiled: the row already knows how many runs it has
        progress = {**progress, **{k: v for k, v in (row.get("progress") or {}).items()
                                   if k in ("steps_total", "steps_done", "step")}}
    if progress.get("status") in TERMINAL_STATUSES:
        # the workflow is recording its ending; until the row says so (with the error and
        # outputs), the job is shown as still running
        fresh = await load_job(str(row["id"]), None)
        if fresh["status"] in TERMINAL_STATUSES:
            return job_public(fresh)
        return job_public(fresh, {**progress, "status": fresh["status"]})
    return job_public(row, progress)


def require_active(row: dict[str, Any]) -> None:
    if row["status"] in TERMINAL_STATUSES:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"job is already {row['status']}")


async def cancel(temporal: Client, row: dict[str, Any]) -> None:
    require_active(row)
    try:
        await handle_of(temporal, row).cancel()
    except RPCError as exc:
        await reconcile(temporal, row)
        raise HTTPException(status.HTTP_409_CONFLICT, detail="job is no longer running") from exc


async def signal(temporal: Client, row: dict[str, Any], name: str, arg: Any = None) -> None:
    require_active(row)
    handle = handle_of(temporal, row)
    try:
        if arg is None:
            await handle.signal(name)
        else:
            await handle.signal(name, arg)
    except RPCError as exc:
        await reconcile(temporal, row)
        raise HTTPException(status.HTTP_409_CONFLICT, detail="job is no longer running") from exc
