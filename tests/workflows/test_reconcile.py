"""Jobs terminated in Temporal are ended in the database by the reconcile sweep, even
when nobody reads them."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from temporalio.service import RPCError

from activities.schedules import ensure_reconcile_schedule
from core.temporal import JOBS_QUEUE
from tests.utils.jobs import keep_history, submit, upload
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ReconcileJobsWorkflow
from workflows.types import ReconcileInput

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_terminated_job_is_ended_without_being_read(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    video = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {"type": "text_overlay",
                                         "params": {"video": video, "text": "x"},
                                         "output": {"preset": "veryslow"}})
    await temporal_env.client.get_workflow_handle(job["workflow_id"]).terminate("operator")
    await asyncio.sleep(0.5)
    listed = (await client.get("/api/v1/jobs", headers=headers)).json()
    assert listed["items"][0]["status"] in ("pending", "processing")  # lists don't reconcile

    sweep_id = f"reconcile-test-{uuid.uuid4().hex[:8]}"
    ended = await temporal_env.client.execute_workflow(
        ReconcileJobsWorkflow.run, ReconcileInput(quiet_seconds=0),
        id=sweep_id, task_queue=JOBS_QUEUE)
    assert ended >= 1
    await keep_history(temporal_env, sweep_id, "reconcile")
    listed = (await client.get("/api/v1/jobs", headers=headers,
                               params={"status": "cancelled"})).json()
    [row] = [item for item in listed["items"] if item["id"] == job["id"]]
    assert row["error"]["code"] == "Terminated" and row["completed_at"]


async def test_the_reconcile_schedule_is_created_once(temporal_env) -> None:
    """Two workers starting (or one restarting) leave exactly one sweep schedule, and an
    operator's edits to it survive."""
    client = temporal_env.client
    handle = client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    with suppress(RPCError):
        await handle.delete()  # left by another test or run on this server
    try:
        await ensure_reconcile_schedule(client)
        first = await handle.describe()
        await handle.pause(note="an operator paused it")
        await ensure_reconcile_schedule(client)
        second = await handle.describe()

        for _ in range(50):  # schedule listing is eventually consistent
            sweeps = [entry.id async for entry in await client.list_schedules()
                      if getattr(entry.schedule.action, "workflow", None)
                      == "ReconcileJobsWorkflow"]
            if sweeps:
                break
            await asyncio.sleep(0.1)
        assert sweeps == [RECONCILE_SCHEDULE_ID]
        assert first.schedule.spec.intervals[0].every.total_seconds() == 60
        assert second.info.created_at == first.info.created_at
        assert second.schedule.state.paused and second.schedule.state.note == \
            "an operator paused it"
    finally:
        await handle.delete()
