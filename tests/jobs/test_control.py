"""Progress, cancel, pause/resume and idempotency through the API; the operator path
through the real ``temporal`` CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client import REGISTRY

from core.config import Settings
from core.tables import MediaFile
from tests.conftest import temporal_binary
from tests.utils.jobs import keep_history, submit, upload, wait_for

pytestmark = pytest.mark.usefixtures("worker")

SLOW_OUTPUT = {"preset": "veryslow", "crf": 18}


def ffmpeg_of(scratch: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        try:
            if proc.info["name"] == "ffmpeg" and str(proc.info["cwd"]).startswith(str(scratch)):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def slow_job(client: httpx.AsyncClient, headers: dict, media_dir: Path) -> dict:
    video = await upload(client, headers, media_dir / "long.mp4")
    return await submit(client, headers, {
        "type": "text_overlay", "params": {"video": video, "text": "slow"},
        "output": SLOW_OUTPUT})


async def wait_running(client: httpx.AsyncClient, headers: dict, job_id: str,
                       min_percent: float = 1.0) -> dict:
    for _ in range(900):  # 90 s: a busy machine (parallel test processes) is slow to start it
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] == "processing" and job["progress"]["percent"] >= min_percent:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job never made progress: {job}")


async def test_events_stream_increasing_progress_then_terminal(
    client: httpx.AsyncClient, headers: dict, media_dir: Path
) -> None:
    video = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {
        "type": "text_overlay", "params": {"video": video, "text": "progress"},
        "output": {"preset": "slow"}})
    events: list[tuple[str, dict]] = []
    async with client.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=headers,
                             timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event or "", json.loads(line[6:])))
    names = [name for name, _ in events]
    assert names[-1] == "completed" and names.count("completed") == 1
    percents = [data["progress"]["percent"] for name, data in events if name == "progress"]
    running = [p for p in percents if 0 < p < 100]
    assert len(running) >= 2, percents
    assert percents == sorted(percents)
    assert events[-1][1]["progress"]["percent"] == 100.0


async def test_many_watchers_of_a_job_share_one_view(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, app
) -> None:
    """60 event streams and pollers on 2 running jobs: each job's row and workflow are
    read about twice a second in all, not once per watcher per poll."""
    jobs = [await slow_job(client, headers, media_dir) for _ in range(2)]
    try:
        await watched_by_many(client, headers, app, jobs)
    finally:  # a failure must not leave two slow encodes in the module worker's slots
        for job in jobs:
            await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)


async def watched_by_many(client: httpx.AsyncClient, headers: dict, app, jobs: list) -> None:
    for job in jobs:
        await wait_running(client, headers, job["id"], min_percent=0)
    views = app.state.live_views
    before, counted_before = views.fetches, REGISTRY.get_sample_value("mediaflow_job_views_total")
    async def watch(job_id: str) -> None:  # the in-process transport buffers the stream:
        # the server side polls all the same, which is what is counted
        async with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=headers,
                                 timeout=30) as response:
            async for _ in response.aiter_lines():
                pass

    async def poll(job_id: str) -> None:
        for _ in range(10):
            view = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
            assert view["status"] in ("processing", "completed")
            await asyncio.sleep(0.2)

    async def tasks_after(seconds: float) -> int:
        await asyncio.sleep(seconds)
        return len(asyncio.all_tasks())

    started = time.monotonic()
    watchers = [asyncio.create_task(watch(jobs[n % 2]["id"])) for n in range(40)]
    early = asyncio.create_task(tasks_after(0.6))
    await asyncio.gather(*(poll(jobs[n % 2]["id"]) for n in range(20)))
    elapsed, late = time.monotonic() - started, len(asyncio.all_tasks())
    # the streams' waits end with their polls: 40 streams polling twice a second would
    # otherwise leave ~80 more tasks behind every second (a busy machine adds a few)
    assert late - await early <= 30, (await early, late)
    assert views.long_polls == 2  # one per watched job, however many watch it
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    for _ in range(50):  # the streams' generators are closed as their responses end
        if views.long_polls == 0:
            break
        await asyncio.sleep(0.1)
    assert views.long_polls == 0, "the last watcher to leave stops the job's long poll"
    fetches = views.fetches - before
    assert REGISTRY.get_sample_value("mediaflow_job_views_total") - counted_before == fetches
    # the views were kept fresh all along (a fetch for the pair at least every second,
    # though they are due every half second: a busy machine delays some), and at most one
    # per job per half second (plus the start), whatever the audience: 60 watchers
    # polling twice a second would otherwise be 120 fetches a second
    assert elapsed - 1 <= fetches <= 2 * (elapsed / 0.5 + 2), (fetches, elapsed)


async def test_cancel_kills_ffmpeg_and_publishes_nothing(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings, temporal_env
) -> None:
    job = await slow_job(client, headers, media_dir)
    running = await wait_running(client, headers, job["id"])
    for _ in range(100):  # the ETA appears with the first speed reading
        if running["progress"]["speed"]:
            break
        await asyncio.sleep(0.1)
        running = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
    progress = running["progress"]
    assert progress["speed"] > 0 and progress["eta_seconds"] > 0, progress
    # seconds of media still to make (30 s clip) at the current speed
    remaining = 30.0 * (1 - progress["percent"] / 100) / progress["speed"]
    assert progress["eta_seconds"] == pytest.approx(remaining, rel=0.25, abs=1.0)
    scratch = settings.scratch_root / job["id"]
    assert ffmpeg_of(scratch), "ffmpeg should be running"
    started = time.monotonic()
    response = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert response.status_code == 202
    done = await wait_for(client, headers, job["id"], timeout=30)
    assert done["status"] == "cancelled" and done["output_files"] == []
    assert done["error"]["code"] == "Cancelled"
    await keep_history(temporal_env, done["workflow_id"], "cancelled")
    while ffmpeg_of(scratch) and time.monotonic() - started < 5:
        await asyncio.sleep(0.1)
    assert not ffmpeg_of(scratch), "ffmpeg still running 5 s after cancel"
    assert not scratch.exists()
    assert not await MediaFile.exists().where(MediaFile.job == job["id"])
    again = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 409


async def test_cancel_after_a_finished_step_discards_its_output(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings, temporal_env
) -> None:
    """Step one's result is in storage when step two is cancelled: it is removed, and no
    file of the job is published."""
    video = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {
        "type": "combined", "params": {"execution": "stepwise", "steps": [
            {"id": "fast", "type": "join", "params": {"inputs": [video, video]}},
            {"id": "slow", "type": "text_overlay", "params": {"video": "@fast", "text": "x"}},
        ]}, "output": SLOW_OUTPUT})
    for _ in range(900):
        running = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
        if running["progress"]["steps_done"] == 1:
            break
        await asyncio.sleep(0.1)
    assert running["status"] == "processing" and running["progress"]["steps_done"] == 1, running
    first_output = settings.local_storage_root / "jobs" / job["id"] / "steps" / "00-fast"
    assert any(first_output.iterdir())
    response = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert response.status_code == 202
    done = await wait_for(client, headers, job["id"], timeout=30)
    assert done["status"] == "cancelled" and done["output_files"] == []
    assert not first_output.exists() or not any(first_output.iterdir())
    assert not await MediaFile.exists().where(MediaFile.job == job["id"])
    await keep_history(temporal_env, done["workflow_id"], "cancelled_after_step")


async def test_pause_stops_at_step_boundary_and_resume_finishes(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    a = await upload(client, headers, media_dir / "a.mp4")
    job = await submit(client, headers, {
        "type": "combined", "params": {"execution": "stepwise", "steps": [
            {"id": "t1", "type": "text_overlay", "params": {"video": a, "text": "one"}},
            {"id": "t2", "type": "text_overlay", "params": {"video": "@t1", "text": "two"}},
        ]}, "output": {"preset": "ultrafast"}})
    response = await client.post(f"/api/v1/jobs/{job['id']}/pause", headers=headers)
    assert response.status_code == 202
    paused = await wait_for(client, headers, job["id"], {"paused"})
    assert paused["progress"]["steps_done"] < 2
    await asyncio.sleep(1.0)
    still = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
    assert still["status"] == "paused" and still["progress"]["steps_done"] == \
        paused["progress"]["steps_done"]
    assert (await client.post(f"/api/v1/jobs/{job['id']}/resume",
                              headers=headers)).status_code == 202
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed" and done["progress"]["steps_done"] == 2
    await keep_history(temporal_env, done["workflow_id"], "paused")


async def test_idempotency_key_gives_one_job(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    a = await upload(client, headers, media_dir / "a.mp4")
    spec = {"type": "text_overlay", "params": {"video": a, "text": "once"},
            "output": {"preset": "ultrafast"}}
    first = await client.post("/api/v1/jobs", headers={**headers, "Idempotency-Key": "k-1"},
                              json=spec)
    second = await client.post("/api/v1/jobs", headers={**headers, "Idempotency-Key": "k-1"},
                               json=spec)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    jobs = (await client.get("/api/v1/jobs", headers=headers)).json()
    assert jobs["total"] == 1
    wf_id = first.json()["workflow_id"]
    count = await temporal_env.client.count_workflows(f"WorkflowId = '{wf_id}'")
    assert count.count == 1
    await wait_for(client, headers, first.json()["id"])


def temporal_cli(temporal_env, *args: str) -> subprocess.CompletedProcess:
    target = temporal_env.client.service_client.config.target_host
    return subprocess.run([temporal_binary(), *args, "--address", target],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("command", "code"), [
    (["cancel"], "Cancelled"),
    (["terminate", "--reason", "operator test"], "Terminated"),
])
async def test_operator_ends_a_job_with_temporal_cli(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env,
    command: list[str], code: str,
) -> None:
    """What an operator does in the Temporal CLI is what the API shows: a cancel is
    recorded by the workflow itself, a terminate is reconciled when the job is read."""
    job = await slow_job(client, headers, media_dir)
    await wait_running(client, headers, job["id"])
    result = temporal_cli(temporal_env, "workflow", command[0], "--workflow-id",
                          job["workflow_id"], *command[1:])
    assert result.returncode == 0, result.stderr
    done = await wait_for(client, headers, job["id"], timeout=30)
    assert done["status"] == "cancelled" and done["error"]["code"] == code


async def test_operator_pause_signal_and_search_attributes(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, temporal_env
) -> None:
    a = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {  # a pause holds between the two steps
        "type": "combined", "output": {"preset": "veryfast"},  # step one: 30 s of 640x480
        "params": {"execution": "stepwise", "steps": [
            {"id": "one", "type": "text_overlay", "params": {"video": a, "text": "op"}},
            {"id": "two", "type": "trim",
             "params": {"input": "@one", "duration": 2, "accurate": False}},
        ]}})
    result = temporal_cli(temporal_env, "workflow", "signal", "--workflow-id",
                          job["workflow_id"], "--name", "pause")
    assert result.returncode == 0, result.stderr
    paused = await wait_for(client, headers, job["id"], {"paused", "completed"}, timeout=180)
    assert paused["status"] == "paused" and paused["progress"]["steps_done"] < 2
    listed = temporal_cli(temporal_env, "workflow", "list", "--query",
                          f"MediaflowJobType='combined' AND MediaflowJobStatus='paused' "
                          f"AND WorkflowId='{job['workflow_id']}'", "--output", "json")
    assert listed.returncode == 0 and job["workflow_id"] in listed.stdout
    result = temporal_cli(temporal_env, "workflow", "signal", "--workflow-id",
                          job["workflow_id"], "--name", "resume")
    assert result.returncode == 0
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed"
