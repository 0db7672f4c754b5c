"""``POST /jobs/batch`` end to end (docs/API.md, "Batches"): 100 items with a few bad ones
answer one status each, the good ones run on real workers; the Idempotency-Key holds per
item; the active-job limit is shared by the batch."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from tests.utils.apps import other_app
from tests.utils.jobs import upload
from tests.utils.users import new_user_headers

pytestmark = pytest.mark.usefixtures("worker")


def cheap(video: str) -> dict:
    """A stream copy into another container: ffmpeg's cheapest real work."""
    return {"type": "transcode", "params": {"input": video, "mode": "copy"},
            "output": {"container": "mkv", "video_codec": "copy", "audio_codec": "copy"}}


async def wait_all(client: httpx.AsyncClient, headers: dict, ids: set[str],
                   timeout: float = 240) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        listed = (await client.get("/api/v1/jobs?limit=200", headers=headers)).json()
        jobs = {j["id"]: j for j in listed["items"] if j["id"] in ids}
        if all(j["status"] in ("completed", "failed", "cancelled") for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, {j["status"] for j in jobs.values()}
        await asyncio.sleep(0.5)


async def test_a_hundred_items_with_a_few_bad_ones(
    settings: Settings, media_dir: Path
) -> None:
    async with other_app(settings, max_active_jobs_per_user=200) as (client, _):
        headers = await new_user_headers(client)
        video = await upload(client, headers, media_dir / "b.mp4")
        template = await client.post("/api/v1/templates", headers=headers, json={
            "name": f"copy-{uuid.uuid4().hex[:8]}",
            "spec": {**cheap("{{video}}"), "priority": 4},
            "variables": {"video": {"type": "file"}}})
        assert template.status_code == 201, template.text

        items: list[dict] = [cheap(video) for _ in range(100)]
        for index in range(0, 100, 10):  # every tenth from the template
            items[index] = {"template": template.json()["name"], "variables": {"video": video}}
        bad = {
            7: ({"type": "text_overlay", "params": {"video": video}},
                422, ["body", "jobs", 7, "params", "text"]),
            23: (cheap(str(uuid.uuid4())), 404, None),
            40: ({"template": template.json()["name"], "variables": {}},
                 422, ["body", "jobs", 40, "variables", "video"]),
            64: ({"what": "ever"}, 422, ["body", "jobs", 64, "type"]),
            99: ({**cheap(video), "priority": 0}, 422, ["body", "jobs", 99, "priority"]),
        }
        for index, (item, _, _) in bad.items():
            items[index] = item
        started = time.monotonic()
        response = await client.post("/api/v1/jobs/batch", headers={
            **headers, "Idempotency-Key": "nightly"}, json={"jobs": items})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        answers = response.json()["items"]
        assert [a["index"] for a in answers] == list(range(100))
        for index, (_, code, loc) in bad.items():
            assert answers[index]["status"] == code, answers[index]
            assert answers[index]["job"] is None
            if loc is not None:
                assert loc in [e["loc"] for e in answers[index]["error"]["detail"]]
        good = {a["job"]["id"]: a for a in answers if a["status"] == 202}
        assert len(good) == 95 and all(a["error"] is None for a in good.values())
        assert {a["job"]["priority"] for a in good.values()} == {3, 4}
        print(f"100-item batch answered in {elapsed:.2f} s")

        done = await wait_all(client, headers, set(good))
        assert {j["status"] for j in done.values()} == {"completed"}
        assert len(done) == 95

        # the same batch with the same key: the same jobs, nothing new
        again = (await client.post("/api/v1/jobs/batch", headers={
            **headers, "Idempotency-Key": "nightly"}, json={"jobs": items})).json()["items"]
        assert [a["status"] for a in again] == [
            200 if a["status"] == 202 else a["status"] for a in answers]
        assert [a["job"]["id"] for a in again if a["job"]] == list(good)
        single = await client.post("/api/v1/jobs", headers={
            **headers, "Idempotency-Key": "nightly:1"}, json=cheap(video))
        assert single.status_code == 200 and single.json()["id"] == answers[1]["job"]["id"]
        total = (await client.get("/api/v1/jobs?limit=1", headers=headers)).json()["total"]
        assert total == 95


async def test_the_batch_shares_the_active_job_limit(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, settings: Settings
) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    limit = settings.max_active_jobs_per_user
    response = await client.post("/api/v1/jobs/batch", headers=headers,
                                 json={"jobs": [cheap(video)] * (limit + 2)})
    assert response.status_code == 200, response.text
    codes = [a["status"] for a in response.json()["items"]]
    assert codes.count(202) == limit and codes.count(429) == 2
    ids = {a["job"]["id"] for a in response.json()["items"] if a["job"]}
    await wait_all(client, headers, ids)


@pytest.mark.parametrize(("body", "status"), [
    ({"jobs": []}, 422),
    ({"jobs": [{"type": "transcode"}] * 101}, 422),
    ({"jobs": [1, 2]}, 422),
    ({"jobs": [{}], "extra": True}, 422),
    ({}, 422),
])
async def test_malformed_batches_are_refused_whole(
    client: httpx.AsyncClient, body: dict, status: int
) -> None:
    headers = await new_user_headers(client)
    response = await client.post("/api/v1/jobs/batch", headers=headers, json=body)
    assert response.status_code == status, response.text


async def test_batch_bodies_have_their_own_cap(client: httpx.AsyncClient) -> None:
    headers = await new_user_headers(client)
    text = "x" * 900
    item = {"type": "text_overlay", "params": {"video": str(uuid.uuid4()), "text": text}}
    body = {"jobs": [item] * 100}  # ~100 KiB: over nothing
    response = await client.post("/api/v1/jobs/batch", headers=headers, json=body)
    assert response.status_code == 200
    assert {a["status"] for a in response.json()["items"]} == {404}
    huge = {"jobs": [{"type": "x", "pad": "y" * 100_000}] * 100}  # ~10 MB
    assert (await client.post("/api/v1/jobs/batch", headers=headers,
                              json=huge)).status_code == 413
