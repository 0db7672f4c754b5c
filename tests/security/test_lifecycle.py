"""Races and lifecycles (docs/SECURITY.md #24) against the real API on PostgreSQL: a file
a job is about to use cannot be deleted under it, however the two requests interleave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from core.tables import Job, MediaFile
from tests.utils.jobs import upload
from tests.utils.users import new_user_headers

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
