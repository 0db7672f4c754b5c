"""The activities of ``DeleteUserWorkflow`` (workflows/accounts.py). Both are idempotent:
run again, they find less to do and do it."""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from core.enums import ACTIVE_STATUSES
from core.reconcile import reconcile
from core.storage import Storage
from core.tables import Job, MediaFile, User
from workflows.types import DeleteUserInput

POLL_SECONDS = 1.0


async def _active_jobs(user_id: uuid.UUID) -> list[dict]:
    return await Job.select().where(
        Job.user == user_id, Job.status.is_in(list(ACTIVE_STATUSES))).output(load_json=True)


async def _ask(client: Client, row: dict, *, terminate: bool) -> None:
    handle = client.get_workflow_handle(row["workflow_id"])
    try:
        if terminate:
            await handle.terminate("the account was deleted")
        else:
            await handle.cancel()
    except RPCError:  # already closed (or never started): reconciling ends the row
        await reconcile(client, row)


@activity.defn(name="end_user_jobs")
async def end_user_jobs(request: DeleteUserInput) -> int:
    """Cancel every active job of the user and wait until each has ended; past the grace
    period, terminate what is left. Jobs that appear meanwhile are cancelled too."""
    client = activity.client()
    user_id = uuid.UUID(request.user_id)
    deadline = time.monotonic() + request.grace_seconds
    asked: set[str] = set()
    ended = 0
    while rows := await _active_jobs(user_id):
        overdue = time.monotonic() > deadline
        for row in rows:
            if overdue or row["workflow_id"] not in asked:
                await _ask(client, row, terminate=overdue)
                asked.add(row["workflow_id"])
            else:
                await reconcile(client, row)  # a workflow that closed without recording
        activity.heartbeat(len(rows))
        await asyncio.sleep(POLL_SECONDS)
        ended = len(asked)
    return ended


class AccountActivities:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @activity.defn(name="remove_user_data")
    async def remove_user_data(self, request: DeleteUserInput) -> int:
        """Every object of the user (uploads, job outputs, intermediates), then the rows:
        the user's row goes last and takes keys, tokens, files, jobs and logs with it."""
        user_id = uuid.UUID(request.user_id)
        removed = await self.storage.delete_prefix(f"users/{user_id}/")
        jobs = await Job.select(Job.id).where(Job.user == user_id)
        for job in jobs:
            removed += await self.storage.delete_prefix(f"jobs/{job['id']}/")
            activity.heartbeat(removed)
        files = await MediaFile.select(MediaFile.storage_key).where(MediaFile.user == user_id)
        for row in files:  # keys outside those folders, if any; a missing one is no error
            await self.storage.delete(row["storage_key"])
        activity.heartbeat(removed)
        await User.delete().where(User.id == user_id)
        return removed
