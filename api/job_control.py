"""Job reads and control, shared by the user routes (``/jobs``) and the operator routes
(``/admin/jobs``): the two differ only in whose jobs they may see.

Reads come from the database; while a job runs, its live progress comes from the
workflow's ``progress`` query. Anything an operator did in the Temporal UI or CLI
(cancel, terminate, reset) is reconciled into the row when it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import HTTPException, status
from temporalio.client import Client, WorkflowHandle
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from api.deps import uuid_or_404
from api.metrics import JOB_VIEWS
from core.db import page_where, select_where
from core.enums import TERMINAL_STATUSES, JobStatus
from core.reconcile import reconcile
from core.tables import Job
from core.views import job_public
from workflows.types import RerouteInput

QUERY_TIMEOUT = 3.0
TEMPORAL_AWAY = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                           RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.CANCELLED})
"""Temporal's answers that say it is down, slow or overloaded rather than anything about
the workflow asked for."""
Control = Literal["cancel", "pause", "resume"]


async def load_job(job_id: str, owner: uuid.UUID | None) -> dict[str, Any]:
    """The job row, 404 when missing or (for a user) someone else's."""
    key = uuid_or_404(job_id, "job")
    if owner is None:
        rows = await select_where(Job, '"id" = {}', key)
    else:
        rows = await select_where(Job, '"id" = {} AND "user" = {}', key, owner)
    row = rows[0] if rows else None
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="job not found")
    return row


async def page_of_jobs(limit: int, offset: int, owner: uuid.UUID | None,
                       status_: JobStatus | None, type_: str | None) -> dict:
    """``{items, total}``, newest first; ``owner`` None for an operator's view of all."""
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in (('"user" = {}', owner), ('"status" = {}', status_),
                          ('"type" = {}', type_)):
        if value is not None and value != "":
            clauses.append(clause)
            args.append(value.value if isinstance(value, JobStatus) else value)
    where = " AND ".join(clauses) or "1 = 1"
    rows, total = await page_where(Job, where, '"created_at" DESC', limit, offset, *args)
    return {"items": [job_public(r) for r in rows], "total": total}


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


class LiveViews:
    """Coalesces live views per job in one API process: however many clients watch a job
    (event streams, polling ``GET /jobs/{id}``), its row is read and its workflow queried
    at most once per :data:`LIVE_VIEW_SECONDS`, and concurrent readers share the one
    fetch in flight. Ownership is checked by the caller before it asks."""

    def __init__(self) -> None:
        self._views: dict[str, tuple[float, dict[str, Any]]] = {}
        self._fetching: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._closing: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._watchers: dict[str, int] = {}
        self._swept = 0.0
        self.fetches = 0  # how many row reads + queries were made (tests count them)

    @property
    def long_polls(self) -> int:
        """Workflows this process is waiting on (one per watched open job)."""
        return len(self._closing)

    @contextlib.contextmanager
    def watching(self, temporal: Client | None, job_id: str,
                 workflow_id: str) -> Iterator[asyncio.Event]:
        """For one event stream: an event set when the job's workflow closes (one long
        poll on Temporal per job per process, shared by its watchers), so a stream
        reports the ending at once rather than at its next poll. The row is final by
        then: the workflow records its ending before it closes. The long poll stops
        when its last watcher leaves (a paused job may stay open for days)."""
        known = self._closing.get(job_id)
        if known is None:
            event = asyncio.Event()
            if temporal is None:  # no Temporal: the stream falls back to polling
                yield event
                return
            task = asyncio.ensure_future(self._await_close(temporal, job_id, workflow_id,
                                                           event))
            known = self._closing[job_id] = (event, task)
        self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
        try:
            yield known[0]
        finally:
            left = self._watchers.pop(job_id) - 1
            if left:
                self._watchers[job_id] = left
            elif self._closing.get(job_id) is known:
                del self._closing[job_id]
                known[1].cancel()

    async def _await_close(self, temporal: Client, job_id: str, workflow_id: str,
                           event: asyncio.Event) -> None:
        try:
            # failed, cancelled, terminated: all are endings (and an unreachable Temporal
            # leaves the streams to their polling)
            with contextlib.suppress(Exception):
                await temporal.get_workflow_handle(workflow_id).result(follow_runs=False)
        finally:
            self._views.pop(job_id, None)
            if self._closing.get(job_id, (None,))[0] is event:
                del self._closing[job_id]
            event.set()

    async def close(self) -> None:
        """Stop the long polls (the API is shutting down)."""
        tasks = [task for _, task in self._closing.values()] + list(self._fetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._closing.clear()
        self._views.clear()

    async def view(self, temporal: Client | None, job_id: str) -> dict[str, Any]:
        cached = self._views.get(job_id)
        loop = asyncio.get_running_loop()
        if cached is not None and loop.time() - cached[0] < LIVE_VIEW_SECONDS:
            return cached[1]
        task = self._fetching.get(job_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._fetch(temporal, job_id))
            # read even when every waiter was cancelled (or asyncio logs it as lost);
            # the waiters that remain get the exception from their own await
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._fetching[job_id] = task
        return await asyncio.shield(task)

    async def _fetch(self, temporal: Client | None, job_id: str) -> dict[str, Any]:
        self.fetches += 1
        JOB_VIEWS.inc()
        try:
            view = await live_view(temporal, await load_job(job_id, None))
        finally:
            self._fetching.pop(job_id, None)
        loop = asyncio.get_running_loop()
        if view["status"] in TERMINAL_STATUSES:
            self._views.pop(job_id, None)  # ended: nobody needs it kept
        else:
            self._views[job_id] = (loop.time(), view)
        if loop.time() - self._swept >= SWEEP_SECONDS:
            self._expire(loop.time())
        return view

    def _expire(self, now: float) -> None:
        self._swept = now
        for job_id in [j for j, (at, _) in self._views.items()
                       if now - at >= LIVE_VIEW_SECONDS]:
            self._views.pop(job_id, None)


LIVE_VIEW_SECONDS = 0.5
SWEEP_SECONDS = 10.0
"""How often stale views of jobs nobody asks about any more are dropped."""


def require_active(row: dict[str, Any]) -> None:
    if row["status"] in TERMINAL_STATUSES:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"job is already {row['status']}")


async def control(temporal: Client, job_id: str, owner: uuid.UUID | None,
                  action: Control) -> dict[str, Any]:
    """Cancel, pause or resume a job (409 once it has ended); the Job as it was asked."""
    row = await load_job(job_id, owner)
    if action == "cancel":
        await _reach(temporal, row, lambda handle: handle.cancel())
    else:
        await _reach(temporal, row, lambda handle: handle.signal(action))
    return job_public(row)


async def reroute(temporal: Client, row: dict[str, Any], pool: str) -> dict[str, Any]:
    """Send the job's remaining steps to ``pool`` (operators only)."""
    await _reach(temporal, row, lambda handle: handle.signal("reroute", RerouteInput(pool=pool)))
    return job_public(row)


async def _reach(temporal: Client, row: dict[str, Any], call: Any) -> None:
    """Deliver a cancel or signal to a job's workflow; 409 when the job has ended (by the
    row, or by Temporal: a workflow closed outside mediaflow is reconciled first)."""
    require_active(row)
    try:
        await call(handle_of(temporal, row))
    except RPCError as exc:
        if exc.status in TEMPORAL_AWAY:
            raise  # a 503 (api.errors), not a verdict on the job
        await reconcile(temporal, row)
        raise HTTPException(status.HTTP_409_CONFLICT, detail="job is no longer running") from exc
