"""Bookkeeping activities against the real database: endings are never overwritten."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import BookkeepingActivities
from api.schemas import Job as JobPublic
from core.config import Settings
from core.storage import get_storage
from core.tables import Job
from core.views import job_public
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


async def test_every_stored_ending_renders_as_a_public_job(
    settings: Settings, db_engine: object
) -> None:
    """An error recorded without a message (or by an older version) still renders as the
    documented ``Job``: the API and webhooks never fail on a stored row."""
    user, _ = await create_user()
    job = Job(user=user.id, type="join", status="failed", workflow_id="job-y",
              error={"code": "Terminated", "message": None}, progress={"percent": None})
    await job.save()
    row = await Job.select().where(Job.id == job.id).output(load_json=True).first()
    public = JobPublic.model_validate(job_public(row))
    assert public.error is not None and (public.error.code, public.error.message) == (
        "Terminated", "")
    assert public.progress.percent == 0.0
