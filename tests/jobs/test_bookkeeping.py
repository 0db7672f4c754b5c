"""Bookkeeping against the real database: endings are never overwritten, and a step's
operation-log row is written once, by the step or else by its workflow."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from temporalio.converter import DataConverter
from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import BookkeepingActivities
from activities.ffmpeg import FFmpegActivities
from api.schemas import Job as JobPublic
from core.config import Settings
from core.plan.model import PlanStep
from core.storage import get_storage
from core.tables import Job, OperationLog
from core.views import job_public
from tests.utils.users import create_user
from workflows.types import DiscardInput, OperationRecord, StatusUpdate, StepInput, StepResult


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


def step_result(step: PlanStep) -> StepResult:
    return StepResult(index=step.index, step_id=step.step_id, storage_key="jobs/x/out.mp4",
                      size=1, sha256="0", metadata={}, attempt=2, wall_seconds=1.5,
                      speed=3.0, pool="cpu", argv=["ffmpeg", "{out}"])


async def test_a_step_logs_its_own_success_once(settings: Settings, db_engine: object) -> None:
    """The step writes its success row itself (and says so); the workflow's write of the
    same attempt, from a worker or a history of before, adds no second row."""
    user, _ = await create_user()
    job = Job(user=user.id, type="text_overlay", status="processing", workflow_id="job-z")
    await job.save()
    step = PlanStep(index=0, step_id="final", op="text_overlay", argv=["ffmpeg", "{out}"],
                    sources=[], output_name="out.mp4")
    request = StepInput(job_id=str(job.id), user_id=str(user.id), step=step, pool="cpu")
    steps = FFmpegActivities(settings, get_storage(settings), "cpu")
    began = dt.datetime.now(dt.UTC)
    logged = await ActivityEnvironment().run(steps._logged, request, step_result(step), began)
    assert logged.logged
    books = BookkeepingActivities(get_storage(settings))
    await ActivityEnvironment().run(books.record_operation, OperationRecord(
        job_id=str(job.id), step=0, step_id="final", operation_type="text_overlay",
        pool="cpu", success=True, attempt=2))
    rows = await OperationLog.select().where(OperationLog.job == job.id)
    assert [(r["step_id"], r["attempt"], r["success"], r["duration"], r["speed"])
            for r in rows] == [("final", 2, True, 1.5, 3.0)]


async def test_a_step_that_cannot_log_leaves_it_to_the_workflow(
    settings: Settings, db_engine: object
) -> None:
    """A row the database refuses (here for real: the job it names does not exist) is no
    reason to run ffmpeg again: the step returns its result unlogged."""
    step = PlanStep(index=0, step_id="final", op="text_overlay", argv=["ffmpeg", "{out}"],
                    sources=[], output_name="out.mp4")
    request = StepInput(job_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), step=step,
                        pool="cpu")
    steps = FFmpegActivities(settings, get_storage(settings), "cpu")
    result = await ActivityEnvironment().run(steps._logged, request, step_result(step),
                                             dt.datetime.now(dt.UTC))
    assert not result.logged and result.storage_key == "jobs/x/out.mp4"
