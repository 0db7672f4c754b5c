"""Priorities end to end (docs/API.md, "Priorities"): the steps of a priority-1 job start
before those of priority-5 jobs that were queued earlier, on the real Temporal dev server
(configured as ``mediaflow dev`` configures it) with one worker slot; the priority is on
the Job and in the ``MediaflowPriority`` search attribute."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.worker import build_workers
from core.config import Settings
from core.storage import get_storage
from tests.conftest import temporal_binary
from tests.jobs.test_control import wait_running
from tests.utils.jobs import submit, upload, wait_for

pytestmark = pytest.mark.usefixtures("one_slot_worker")


@pytest.fixture(scope="module")
async def one_slot_worker(app: object, settings: Settings, temporal_env) -> AsyncIterator[None]:
    """The CPU pool with a single slot: one running step, everything else waits."""
    workers = build_workers(temporal_env.client, settings, get_storage(settings), pool="cpu",
                            concurrency=1)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        yield


async def step_queued(temporal: Client, workflow_id: str) -> None:
    """Wait until the job's ffmpeg step is scheduled on its task queue (a few milliseconds
    after, Temporal's matching service holds it)."""
    handle = temporal.get_workflow_handle(workflow_id)
    for _ in range(500):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                await asyncio.sleep(0.05)
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id}: no step scheduled within 10 s")


async def step_times(temporal: Client, workflow_id: str) -> tuple[dt.datetime, dt.datetime]:
    """When the job's (only) ffmpeg step was queued and when it really started on a
    worker, from its history."""
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    scheduled = {e.event_id: e.event_time.ToDatetime(dt.UTC) for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name
                 == "run_ffmpeg_step"}
    started = [(scheduled[e.activity_task_started_event_attributes.scheduled_event_id],
                e.event_time.ToDatetime(dt.UTC)) for e in history.events
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
               and e.activity_task_started_event_attributes.scheduled_event_id in scheduled]
    assert len(started) == 1, history.events
    return started[0]


def cheap(video: str, priority: int) -> dict:
    return {"type": "transcode", "params": {"input": video, "mode": "copy"},
            "output": {"container": "mkv", "video_codec": "copy", "audio_codec": "copy"},
            "priority": priority}


async def test_a_priority_1_job_starts_before_five_queued_priority_5_jobs(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    long_clip = await upload(client, headers, media_dir / "long.mp4")
    short_clip = await upload(client, headers, media_dir / "a.mp4")
    busy = await submit(client, headers, {
        "type": "text_overlay", "params": {"video": long_clip, "text": "busy"},
        "output": {"preset": "medium"}})
    await wait_running(client, headers, busy["id"], min_percent=0.5)  # the one slot is taken

    low = []
    for _ in range(5):  # each step queued before the next job starts: a defined queue order
        low.append(await submit(client, headers, cheap(short_clip, 5)))
        await step_queued(temporal_env.client, low[-1]["workflow_id"])
    await asyncio.sleep(1.0)  # every low step is waiting on mediaflow-cpu
    high = await submit(client, headers, cheap(short_clip, 1))
    assert (await client.get(f"/api/v1/jobs/{busy['id']}", headers=headers)).json()[
        "status"] == "processing", "the busy step ended before the queue was built"

    for job in [busy, *low, high]:
        assert (await wait_for(client, headers, job["id"], timeout=180))["status"] == \
            "completed"
    temporal = temporal_env.client
    high_queued, high_started = await step_times(temporal, high["workflow_id"])
    low_times = [await step_times(temporal, job["workflow_id"]) for job in low]
    assert high_queued > max(queued for queued, _ in low_times), "queued last"
    assert high_started < min(started for _, started in low_times), (high_started, low_times)
    # equal priorities start in the order their steps were queued
    assert sorted(low_times) == sorted(low_times, key=lambda times: times[1]), low_times

    shown = (await client.get(f"/api/v1/jobs/{high['id']}", headers=headers)).json()
    assert shown["priority"] == 1 and shown["spec"]["priority"] == 1
    assert (await client.get(f"/api/v1/jobs/{busy['id']}", headers=headers)).json()[
        "priority"] == 3


async def test_the_priority_is_a_search_attribute(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    """Operators find jobs by priority in the Temporal UI and CLI."""
    video = await upload(client, headers, media_dir / "a.mp4")
    job = await submit(client, headers, cheap(video, 2))
    query = f"MediaflowPriority = 2 AND WorkflowId = '{job['workflow_id']}'"
    for _ in range(100):
        found = [w.id async for w in temporal_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [job["workflow_id"]]
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "list", "--address",
        temporal_env.client.service_client.config.target_host, "--query", query,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert job["workflow_id"] in out.decode()
    await wait_for(client, headers, job["id"])


@pytest.mark.parametrize("priority", [0, 6, "1", 2.5, True])
async def test_priorities_outside_1_to_5_are_422(
    client: httpx.AsyncClient, headers: dict, priority: object
) -> None:
    response = await client.post("/api/v1/jobs/validate", headers=headers, json={
        "type": "transcode", "params": {"input": "0b6c5a5e-1111-4222-8333-944445555661"},
        "priority": priority})
    assert response.status_code == 422
    assert ["body", "priority"] in [e["loc"] for e in response.json()["detail"]]
