"""Bookkeeping activities against the real database: endings are never overwritten."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import BookkeepingActivities
from core.config import Settings
from core.storage import get_storage
from core.tables import Job
from tests.utils.users import create_user
from workflows.types import StatusUpdate


async def test_a_late_status_write_never_buries_an_ending(
    settings: Settings, db_engine: object
) -> None:
    user, _ = await create_user()
    job = Job(user=user.id, type="join", status="processing", workflow_id="job-x")
    await job.save()
    books = BookkeepingActivities(get_storage(settings))
    env = ActivityEnvironment()

    await env.run(books.update_job_status, StatusUpdate(
        job_id=str(job.id), status="cancelled", error_code="Cancelled", set_completed=True))
    # a "paused" write that was in flight when the cancel landed arrives afterwards
    await env.run(books.update_job_status, StatusUpdate(job_id=str(job.id), status="paused"))

    row = await Job.select(Job.status, Job.error).where(Job.id == job.id).output(
        load_json=True).first()
    assert row["status"] == "cancelled" and row["error"]["code"] == "Cancelled"
