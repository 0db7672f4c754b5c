"""Bookkeeping activities against the real database: endings are never overwritten."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.converter import DataConverter
from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import BookkeepingActivities
from api.schemas import Job as JobPublic
from core.config import Settings
from core.storage import get_storage
from core.tables import Job
from core.views import job_public
from tests.utils.users import create_user
from workflows.types import DiscardInput, StatusUpdate


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


async def test_tasks_scheduled_by_the_previous_version_still_do_their_work(
    settings: Settings, db_engine: object, tmp_path: Path
) -> None:
    """Activity inputs as the previous release encoded them (a discard sent a
    ``FinalizeInput`` with ``intermediate_keys``; the start was ``set_started`` on a status
    update) may still be delivered after an upgrade: they decode into today's types and
    do what they asked."""
    storage = get_storage(settings)
    books = BookkeepingActivities(storage)
    env = ActivityEnvironment()
    convert = DataConverter.default.payload_converter
    key = f"jobs/{uuid.uuid4()}/steps/00.mp4"
    source = tmp_path / "out.mp4"
    source.write_bytes(b"\0" * 64)
    await storage.put_file(key, source, content_type="video/mp4")

    [old_discard] = convert.to_payloads([{"job_id": "j", "user_id": "u", "kept": [],
                                          "intermediate_keys": [key], "retry_count": 0,
                                          "progress": {}}])
    [discard] = convert.from_payloads([old_discard], [DiscardInput])
    await env.run(books.discard_outputs, discard)
    assert await storage.stat(key) is None

    user, _ = await create_user()
    job = Job(user=user.id, type="join", status="pending", workflow_id="job-z")
    await job.save()
    [old_update] = convert.to_payloads([{"job_id": str(job.id), "status": "processing",
                                         "progress": {}, "retry_count": 0,
                                         "set_started": True, "set_completed": False}])
    [update] = convert.from_payloads([old_update], [StatusUpdate])
    await env.run(books.update_job_status, update)
    row = await Job.select(Job.status, Job.started_at).where(Job.id == job.id).first()
    assert row["status"] == "processing" and row["started_at"] is not None
