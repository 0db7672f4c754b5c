"""Races and lifecycles (docs/SECURITY.md #24) against the real API, worker and ffmpeg on
PostgreSQL: a file a job is about to use cannot be deleted under it, however the two
requests interleave; a deleted user's jobs end and nothing of theirs is left."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from core.config import Settings
from core.tables import Job, MediaFile, User
from tests.jobs.test_control import ffmpeg_of
from tests.utils.jobs import keep_history, submit, upload, wait_for
from tests.utils.users import create_user, login_headers, new_user_headers
from workflows.types import DeleteUserResult

pytestmark = pytest.mark.usefixtures("worker")

ROUNDS = 25


async def test_submit_and_delete_of_one_input_never_both_succeed(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    for _ in range(ROUNDS):
        headers = await new_user_headers(client)  # a fresh user: no job limit in the way
        video = await upload(client, headers, media_dir / "b.mp4")
        submit, delete = await asyncio.gather(
            client.post("/api/v1/jobs", headers=headers, json={
                "type": "text_overlay", "params": {"video": video, "text": "race"}}),
            client.delete(f"/api/v1/files/{video}", headers=headers),
        )
        assert (submit.status_code, delete.status_code) in ((202, 409), (404, 204)), (
            submit.text, delete.text)
        deleted = (await MediaFile.select(MediaFile.is_deleted).where(
            MediaFile.id == video).first())["is_deleted"]
        owner = (await MediaFile.select(MediaFile.user).where(MediaFile.id == video).first())
        jobs = await Job.count().where(Job.user == owner["user"])
        # the database agrees with the answers: a job and a live file, or neither
        assert (jobs, deleted) == ((1, False) if submit.status_code == 202 else (0, True))
        if submit.status_code == 202:
            await client.post(f"/api/v1/jobs/{submit.json()['id']}/cancel", headers=headers)


async def test_deleting_a_user_cancels_their_jobs_and_removes_everything(
    client: httpx.AsyncClient, media_dir: Path, settings: Settings, temporal_env
) -> None:
    admin = await new_user_headers(client, superuser=True)
    user, password = await create_user()
    headers = await login_headers(client, user.email, password)
    video = await upload(client, headers, media_dir / "long.mp4")
    kept = await upload(client, headers, media_dir / "tone.wav")
    job = await submit(client, headers, {"type": "text_overlay",
                                         "params": {"video": video, "text": "bye"},
                                         "output": {"preset": "veryslow", "crf": 18}})
    await wait_for(client, headers, job["id"], {"processing"}, timeout=30)
    scratch = settings.scratch_root / job["id"]
    for _ in range(100):  # ffmpeg is really running before the account goes
        if ffmpeg_of(scratch):
            break
        await asyncio.sleep(0.1)
    assert ffmpeg_of(scratch)

    response = await client.delete(f"/api/v1/users/{user.id}", headers=admin)
    assert response.status_code == 202, response.text
    # closed at once: no login, no reads, no second account with the credentials' token
    assert (await client.get("/api/v1/files", headers=headers)).status_code == 401
    assert (await client.get(f"/api/v1/users/{user.id}", headers=admin)).status_code == 404
    again = await client.delete(f"/api/v1/users/{user.id}", headers=admin)
    assert again.status_code == 202 and again.json()["workflow_id"] == \
        response.json()["workflow_id"]

    deletion = temporal_env.client.get_workflow_handle(response.json()["workflow_id"],
                                                       result_type=DeleteUserResult)
    result = await asyncio.wait_for(deletion.result(), 60)
    await keep_history(temporal_env, deletion.id, "delete_user")
    assert result.jobs_ended == 1 and result.objects_removed >= 2
    job_run = await temporal_env.client.get_workflow_handle(job["workflow_id"]).describe()
    assert job_run.status == WorkflowExecutionStatus.CANCELED
    assert not ffmpeg_of(scratch) and not scratch.exists()
    root = settings.local_storage_root
    leftovers = [p for folder in (root / "users" / str(user.id), root / "jobs" / job["id"])
                 if folder.exists() for p in folder.rglob("*") if p.is_file()]
    assert leftovers == []
    assert not await User.exists().where(User.id == user.id)
    assert not await Job.exists().where(Job.id == job["id"])
    assert not await MediaFile.exists().where(MediaFile.id.is_in([video, kept]))


async def test_deleting_an_unknown_user_or_oneself_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    admin = await new_user_headers(client, superuser=True)
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()
    for target in (uuid.uuid4(), "not-a-uuid"):
        assert (await client.delete(f"/api/v1/users/{target}",
                                    headers=admin)).status_code == 404
    assert (await client.delete(f"/api/v1/users/{me['id']}", headers=admin)).status_code == 409
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200
    user_headers = await new_user_headers(client)
    me_user = (await client.get("/api/v1/auth/me", headers=user_headers)).json()
    assert (await client.delete(f"/api/v1/users/{me_user['id']}",
                                headers=user_headers)).status_code == 403
