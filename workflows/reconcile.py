"""ReconcileJobsWorkflow: ends the rows of jobs whose workflow an operator terminated.

Started every minute by the Temporal Schedule ``mediaflow-reconcile`` (created by the
workers), so job lists and per-user limits agree with what Temporal says even for jobs
nobody reads.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.activities import reconcile_quiet_jobs
    from workflows.types import ReconcileInput

RECONCILE_WORKFLOW_TYPE = "ReconcileJobsWorkflow"
RECONCILE_SCHEDULE_ID = "mediaflow-reconcile"


@workflow.defn(name=RECONCILE_WORKFLOW_TYPE)
class ReconcileJobsWorkflow:
    @workflow.run
    async def run(self, request: ReconcileInput) -> int:
        return await workflow.execute_activity(
            reconcile_quiet_jobs, request,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
