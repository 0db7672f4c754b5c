"""``reconcile_quiet_jobs``: the activity of the ``mediaflow-reconcile`` sweep (the logic,
shared with the API's reads, is :mod:`core.reconcile`)."""

from __future__ import annotations

from temporalio import activity

from core.reconcile import reconcile_quiet_jobs
from workflows.types import ReconcileInput


@activity.defn(name="reconcile_quiet_jobs")
async def reconcile_quiet_jobs_activity(request: ReconcileInput) -> int:
    return await reconcile_quiet_jobs(activity.client(), quiet_seconds=request.quiet_seconds,
                                      limit=request.limit)
