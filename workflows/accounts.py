"""DeleteUserWorkflow: closing an account without leaving anything behind
(docs/SECURITY.md #24).

``DELETE /users/{id}`` marks the account deleted (it can no longer log in or be read)
and starts this workflow, id ``delete-user-<user id>``. It cancels the user's active
jobs and waits until each has ended (terminating those that outlast the grace period),
then removes every stored object of the user and finally their rows. Each activity is
idempotent, so a retried or resumed deletion simply goes on; a second DELETE finds the
same workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.activities import end_user_jobs, remove_user_data
    from workflows.types import DeleteUserInput, DeleteUserResult

DELETE_USER_WORKFLOW_TYPE = "DeleteUserWorkflow"
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


def delete_user_workflow_id(user_id: str) -> str:
    return f"delete-user-{user_id}"


@workflow.defn(name=DELETE_USER_WORKFLOW_TYPE)
class DeleteUserWorkflow:
    @workflow.run
    async def run(self, request: DeleteUserInput) -> DeleteUserResult:
        ended = await workflow.execute_activity(
            end_user_jobs, request, retry_policy=RETRY, heartbeat_timeout=timedelta(seconds=30),
            start_to_close_timeout=timedelta(seconds=request.grace_seconds + 600),
        )
        removed = await workflow.execute_activity(
            remove_user_data, request, retry_policy=RETRY,
            heartbeat_timeout=timedelta(seconds=60), start_to_close_timeout=timedelta(hours=2),
        )
        return DeleteUserResult(jobs_ended=ended, objects_removed=removed)
