"""Bookkeeping against the real database: endings are never overwritten, and a step's
operation-log row is written once, by the step or else by its workflow."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.converter import DataConverter
from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import BookkeepingActivities, publish_outputs
from activities.ffmpeg import FFmpegActivities
from api.schemas import Job as JobPublic
from core.config import Settings
from core.plan.model import PlanStep
from core.storage import Storage, get_storage
from core.tables import Job, MediaFile, OperationLog
from core.views import job_public
from tests.utils.users import create_user
from workflows.types import (
    DiscardInput,
    FinalizeInput,
    OperationRecord,
    StatusUpdate,
    StepInput,
    StepResult,
)


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


async def job_with_two_outputs(storage: Storage, tmp_path: Path) -> tuple[Any, Job, str, str]:
    """(user, a processing combined job, the stored keys of its last and first steps'
    outputs)."""
    user, _ = await create_user()
    job = Job(user=user.id, type="combined", status="processing", workflow_id="job-two")
    await job.save()
    source = tmp_path / "out.mp4"
    source.write_bytes(b"\0" * 64)
    last, first = f"jobs/{job.id}/steps/01.mp4", f"jobs/{job.id}/steps/00.mp4"
    for key in (last, first):
        await storage.put_file(key, source, content_type="video/mp4")
    return user, job, last, first


async def test_a_cancel_that_reaches_finalize_loses(
    settings: Settings, db_engine: object, tmp_path: Path
) -> None:
    """A job's cancel that reaches publishing (the worker cancels the activity's task, as
    ``ActivityEnvironment.cancel`` does): it still runs to the end, the outputs are the
    user's files, the intermediates are gone and the job is completed, never half of
    that."""
    storage = get_storage(settings)
    user, job, kept, intermediate = await job_with_two_outputs(storage, tmp_path)
    books = BookkeepingActivities(storage)
    reached, release = asyncio.Event(), asyncio.Event()
    delete_tree = storage.delete_tree

    async def held_delete(key: str) -> None:  # the cancel lands half-way through publishing
        reached.set()
        await release.wait()
        await delete_tree(key)

    storage.delete_tree = held_delete  # type: ignore[method-assign]
    env = ActivityEnvironment()
    result = StepResult(index=1, step_id="final", storage_key=kept, size=64, sha256="0",
                        metadata={}, content_type="video/mp4")
    running = asyncio.create_task(env.run(books.finalize_job, FinalizeInput(
        job_id=str(job.id), user_id=str(user.id), kept=[result],
        intermediate_keys=[intermediate])))
    await asyncio.wait_for(reached.wait(), 10)
    env.cancel()
    await asyncio.sleep(0.05)
    release.set()

    [file_id] = await asyncio.wait_for(running, 10)
    row = await Job.select(Job.status, Job.output_files).where(Job.id == job.id).output(
        load_json=True).first()
    assert row["status"] == "completed" and row["output_files"] == [file_id]
    assert await MediaFile.exists().where(MediaFile.id == uuid.UUID(file_id))
    assert await storage.stat(intermediate) is None and await storage.stat(kept) is not None


async def test_the_last_step_publishes_and_falls_back_when_it_cannot(
    settings: Settings, db_engine: object, tmp_path: Path
) -> None:
    """Given ``StepInput.finalize``, the last step publishes the job's outputs and completes
    it; where it cannot (here for real: the job's row does not exist), it returns its
    result unpublished and the workflow's ``finalize_job`` does it."""
    storage = get_storage(settings)
    user, _ = await create_user()
    job = Job(user=user.id, type="combined", status="processing", workflow_id="job-p")
    await job.save()
    source = tmp_path / "out.mp4"
    source.write_bytes(b"\0" * 64)
    earlier = f"jobs/{job.id}/steps/00-cut/output.mp4"
    await storage.put_file(earlier, source, content_type="video/mp4")
    step = PlanStep(index=1, step_id="final", op="text_overlay", argv=["ffmpeg", "{out}"],
                    sources=[], output_name="out.mp4", keep_output=True)
    steps = FFmpegActivities(settings, storage, "cpu")
    final = FinalizeInput(job_id=str(job.id), user_id=str(user.id), kept=[],
                          intermediate_keys=[earlier], retry_count=1,
                          progress={"status": "completed", "percent": 100.0})
    request = StepInput(job_id=str(job.id), user_id=str(user.id), step=step, pool="cpu",
                        finalize=final)
    result = replace(step_result(step), storage_key=f"jobs/{job.id}/steps/01-final/out.mp4")

    published = await ActivityEnvironment().run(steps._published, request, result)
    [file_id] = published.published or []
    row = await Job.select(Job.status, Job.output_files, Job.retry_count, Job.progress).where(
        Job.id == job.id).output(load_json=True).first()
    assert row["status"] == "completed" and row["output_files"] == [file_id]
    assert row["retry_count"] == 2  # one before this step, one in it (its attempt 2)
    assert row["progress"]["speed"] == 3.0  # the step's own
    stored = await MediaFile.select(MediaFile.storage_key).where(
        MediaFile.id == uuid.UUID(file_id)).first()
    assert stored["storage_key"] == result.storage_key
    assert await storage.stat(earlier) is None  # the intermediate is gone

    orphan = replace(request, job_id=str(uuid.uuid4()),
                     finalize=replace(final, job_id=str(uuid.uuid4())))
    unpublished = await ActivityEnvironment().run(steps._published, orphan, result)
    assert unpublished.published is None and unpublished.storage_key == result.storage_key


async def test_a_retried_last_step_that_had_published_does_not_run_again(
    settings: Settings, db_engine: object
) -> None:
    """An attempt that published the outputs but whose completion Temporal never heard of
    is retried: the retry finds the job completed and answers with its files instead of
    running ffmpeg over bytes that are already the user's."""
    user, _ = await create_user()
    published = [str(uuid.uuid4())]
    job = Job(user=user.id, type="text_overlay", status="completed", workflow_id="job-r",
              output_files=published)
    await job.save()
    step = PlanStep(index=0, step_id="final", op="text_overlay",
                    argv=["ffmpeg", "-i", "{in0}", "{out}"], sources=[],
                    output_name="out.mp4", keep_output=True)
    final = FinalizeInput(job_id=str(job.id), user_id=str(user.id), kept=[])
    request = StepInput(job_id=str(job.id), user_id=str(user.id), step=step, pool="cpu",
                        finalize=final)
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=2)
    steps = FFmpegActivities(settings, get_storage(settings), "cpu")
    result = await env.run(steps.run_ffmpeg_step, request)
    assert result.published == published and result.logged and result.attempt == 2
    assert not (settings.scratch_root / str(job.id)).exists()  # nothing ran


async def test_an_ending_that_raced_the_publishing_unpublishes_nothing(
    settings: Settings, db_engine: object, tmp_path: Path
) -> None:
    """A cancel that reaches the workflow together with the step that published (one
    workflow task) records an ending: it neither buries the completion nor removes the
    bytes of a published file; an unpublished output is still removed."""
    storage = get_storage(settings)
    books = BookkeepingActivities(storage)
    user, job, kept, other = await job_with_two_outputs(storage, tmp_path)
    await publish_outputs(storage, FinalizeInput(
        job_id=str(job.id), user_id=str(user.id),
        kept=[StepResult(index=1, step_id="final", storage_key=kept, size=64, sha256="0",
                         metadata={})]))
    env = ActivityEnvironment()
    await env.run(books.discard_outputs, DiscardInput(str(job.id), [other, kept]))
    published = await env.run(books.update_job_status, StatusUpdate(
        job_id=str(job.id), status="cancelled", error_code="Cancelled", set_completed=True))
    row = await Job.select(Job.status, Job.error, Job.output_files).where(
        Job.id == job.id).output(load_json=True).first()
    assert row["status"] == "completed" and not row["error"]
    assert published == row["output_files"] != []  # the workflow completes with them
    assert await storage.stat(kept) is not None and await storage.stat(other) is None
