"""The housekeeping schedules every worker makes sure exist.

``mediaflow-purge`` runs ``PurgeDeletedFilesWorkflow`` and ``mediaflow-reconcile`` runs
``ReconcileJobsWorkflow`` on ``mediaflow-jobs``. Both are Temporal Schedules, so an operator
sees, pauses and edits them in the Temporal UI; a schedule that exists is left as it is.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)

from core.config import Settings
from core.temporal import JOBS_QUEUE
from workflows.purge import PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE
from workflows.reconcile import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE
from workflows.types import PurgeInput, ReconcileInput

log = logging.getLogger("mediaflow.schedules")


async def ensure_schedule(client: Client, schedule_id: str, workflow_type: str,
                          arg: object, every: timedelta) -> None:
    """Create a housekeeping schedule once; an existing one (maybe edited or paused by an
    operator in the Temporal UI) stays as it is."""
    try:
        await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow(workflow_type, arg, id=schedule_id,
                                               task_queue=JOBS_QUEUE),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        ))
        log.info("created schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:
        pass


async def ensure_purge_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(client, PURGE_SCHEDULE_ID, PURGE_WORKFLOW_TYPE,
                          PurgeInput(retention_seconds=settings.purge_retention_seconds),
                          timedelta(seconds=settings.purge_interval_seconds))


async def ensure_reconcile_schedule(client: Client) -> None:
    await ensure_schedule(client, RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE,
                          ReconcileInput(), timedelta(minutes=1))
