"""Import from a URL end to end (docs/API.md, "Import from a URL"): a real HTTP server on
loopback, the import workflow on the in-process worker, the upload gate's probe. Private
targets are allowed for these tests (the server is loopback) except where refusal is the
subject; nothing here contacts any address but 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

import core.webhooks
from core.config import Settings
from core.temporal import import_workflow_id_for
from tests.utils.apps import other_app
from tests.utils.jobs import keep_history, submit, upload, wait_for
from tests.utils.origin import Exchange, Origin, origin
from tests.utils.users import new_user_headers

pytestmark = pytest.mark.usefixtures("worker")

GIB = 1024**3


@pytest.fixture
async def server(media_dir: Path) -> AsyncIterator[Origin]:
    clip = (media_dir / "a.mp4").read_bytes()
    async with origin() as served:
        served.notes["clip"] = clip

        @served.route("/media/clip.mp4")
        async def _clip(exchange: Exchange) -> None:
            await exchange.send(200, clip)

        for hop in range(1, 4):  # /r/3 -> /r/2 -> /r/1 -> /media/clip.mp4
            @served.route(f"/r/{hop}")
            async def _hop(exchange: Exchange, hop: int = hop) -> None:
                target = "/media/clip.mp4" if hop == 1 else f"/r/{hop - 1}"
                await exchange.redirect(target if hop % 2 else served.url(target))

        @served.route("/to-metadata")
        async def _metadata(exchange: Exchange) -> None:
            await exchange.redirect("http://169.254.169.254/latest/meta-data/")

        @served.route("/huge.mp4")
        async def _huge(exchange: Exchange) -> None:
            await exchange.head(200, {"Content-Type": "video/mp4",
                                      "Content-Length": str(2 * GIB + 1)})
            served.notes["huge_closed"] = await exchange.client_went_away(within=20)

        @served.route("/slow.mp4")
        async def _slow(exchange: Exchange) -> None:
            await exchange.head(200, {"Content-Type": "video/mp4",
                                      "Content-Length": str(len(clip))})
            for start in range(0, len(clip), 512):
                exchange.writer.write(clip[start:start + 512])
                await exchange.writer.drain()
                await asyncio.sleep(0.5)

        @served.route("/notes.mp4")
        async def _text(exchange: Exchange) -> None:
            await exchange.send(200, b"these are meeting notes, not a video\n" * 20)

        @served.route("/flaky.mp4")
        async def _flaky(exchange: Exchange) -> None:
            if served.hits["/flaky.mp4"] == 1:
                await exchange.send(503, b"busy", content_type="text/plain")
            else:
                await exchange.send(200, clip)

        gate = asyncio.Event()
        served.notes["gate"] = gate

        @served.route("/gated/clip.mp4")
        async def _gated(exchange: Exchange) -> None:
            await gate.wait()
            await exchange.send(200, clip)

        @served.route("/gated/missing.mp4")
        async def _gated_missing(exchange: Exchange) -> None:
            await gate.wait()
            await exchange.send(404, b"gone", content_type="text/plain")

        yield served
        gate.set()


async def start_import(client: httpx.AsyncClient, headers: dict, url: str,
                       **extra: object) -> dict:
    response = await client.post("/api/v1/files/import", headers=headers,
                                 json={"url": url, **extra})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "importing" and created["kind"] is None
    assert created["source"] == "import" and created["source_url"] == url
    return created


async def settled(client: httpx.AsyncClient, headers: dict, file_id: str,
                  timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = (await client.get(f"/api/v1/files/{file_id}", headers=headers)).json()
        if row["status"] != "importing":
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.2)


async def test_a_real_mp4_is_imported_probed_and_usable(
    client: httpx.AsyncClient, headers: dict, server: Origin, temporal_env
) -> None:
    created = await start_import(client, headers, server.url("/media/clip.mp4"))
    ready = await settled(client, headers, created["id"])
    clip = server.notes["clip"]
    assert isinstance(clip, bytes)
    assert ready["status"] == "ready" and ready["error"] is None
    assert ready["kind"] == "video" and ready["filename"] == "clip.mp4"
    assert ready["size"] == len(clip)
    assert ready["checksum_sha256"] == hashlib.sha256(clip).hexdigest()
    assert ready["metadata"]["duration"] == pytest.approx(2.0, abs=0.1)
    assert ready["metadata"]["width"] == 320
    downloaded = await client.get(f"/api/v1/files/{created['id']}/download", headers=headers)
    assert downloaded.status_code == 200 and downloaded.content == clip
    await keep_history(temporal_env, import_workflow_id_for(created["id"]), "import_file")


async def test_a_redirect_chain_is_followed_and_named_by_the_request(
    client: httpx.AsyncClient, headers: dict, server: Origin
) -> None:
    created = await start_import(client, headers, server.url("/r/3"), filename="intro.mov")
    ready = await settled(client, headers, created["id"])
    assert ready["status"] == "ready", ready
    assert ready["filename"] == "intro.mp4"  # the probe's extension, the client's name
    assert [server.hits[p] for p in ("/r/3", "/r/2", "/r/1", "/media/clip.mp4")] == [1] * 4
    assert set(server.host_headers) == {server.base.removeprefix("http://")}


async def test_with_private_targets_off_a_redirect_to_metadata_is_refused_at_that_hop(
    settings: Settings, server: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with other_app(settings, import_allow_private=False) as (client, _):
        headers = await new_user_headers(client)
        refused = await client.post("/api/v1/files/import", headers=headers,
                                    json={"url": server.url("/media/clip.mp4")})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "url"]
        assert "MEDIAFLOW_IMPORT_ALLOW_PRIVATE" in refused.json()["detail"][0]["msg"]
        assert server.hits["/media/clip.mp4"] == 0

        # this loopback server stands in for a public one; the metadata address stays private
        judged = core.webhooks._address_is_public
        monkeypatch.setattr(core.webhooks, "_address_is_public",
                            lambda address: address == "127.0.0.1" or judged(address))
        created = await start_import(client, headers, server.url("/to-metadata"))
        failed = await settled(client, headers, created["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "ImportRefused"
    assert "redirect 1" in failed["error"]["message"]
    assert "169.254.169.254" in failed["error"]["message"]
    assert server.hits["/to-metadata"] == 1  # one attempt: a refusal is not retried


async def test_a_declared_length_over_2_gib_is_refused_without_reading_the_body(
    client: httpx.AsyncClient, headers: dict, server: Origin
) -> None:
    started = time.monotonic()
    created = await start_import(client, headers, server.url("/huge.mp4"))
    failed = await settled(client, headers, created["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "TooLarge"
    assert str(2 * GIB + 1) in failed["error"]["message"]
    assert time.monotonic() - started < 15
    for _ in range(50):
        if "huge_closed" in server.notes:
            break
        await asyncio.sleep(0.1)
    assert server.notes["huge_closed"] is True, "the client hung up on the headers"
    assert server.hits["/huge.mp4"] == 1


async def test_a_slow_server_meets_the_time_limit(settings: Settings, server: Origin) -> None:
    async with other_app(settings, import_timeout_seconds=2) as (client, _):
        headers = await new_user_headers(client)
        started = time.monotonic()
        created = await start_import(client, headers, server.url("/slow.mp4"))
        failed = await settled(client, headers, created["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "TimedOut"
    assert 2 <= time.monotonic() - started < 15
    assert server.hits["/slow.mp4"] == 1


async def test_a_text_file_is_refused_by_the_probe(
    client: httpx.AsyncClient, headers: dict, server: Origin
) -> None:
    created = await start_import(client, headers, server.url("/notes.mp4"))
    failed = await settled(client, headers, created["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "UnsupportedMedia"
    assert failed["kind"] is None and failed["size"] == 0
    assert (await client.get(f"/api/v1/files/{created['id']}/download",
                             headers=headers)).status_code == 409
    assert (await client.delete(f"/api/v1/files/{created['id']}",
                                headers=headers)).status_code == 204


async def test_a_server_error_is_retried_and_the_retry_completes_the_import(
    client: httpx.AsyncClient, headers: dict, server: Origin
) -> None:
    created = await start_import(client, headers, server.url("/flaky.mp4"))
    ready = await settled(client, headers, created["id"])
    assert ready["status"] == "ready" and server.hits["/flaky.mp4"] == 2
    listed = (await client.get("/api/v1/files?limit=200", headers=headers)).json()
    assert [f["id"] for f in listed["items"]].count(created["id"]) == 1


async def test_a_job_submitted_while_importing_waits_then_runs(
    client: httpx.AsyncClient, headers: dict, server: Origin, media_dir: Path, temporal_env
) -> None:
    created = await start_import(client, headers, server.url("/gated/clip.mp4"))
    other = await upload(client, headers, media_dir / "b.mp4")
    spec = {"type": "join", "params": {"inputs": [created["id"], other], "mode": "reencode"}}
    plan = (await client.post("/api/v1/jobs/validate", headers=headers, json=spec)).json()
    assert plan["waits_for"] == [created["id"]] and plan["plan"] == []
    job = await submit(client, headers, spec)
    assert job["status"] == "pending"
    await asyncio.sleep(1.5)
    waiting = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
    assert waiting["status"] == "pending" and waiting["started_at"] is None
    assert (await client.delete(f"/api/v1/files/{created['id']}",
                                headers=headers)).status_code == 409  # the job needs it
    gate = server.notes["gate"]
    assert isinstance(gate, asyncio.Event)
    gate.set()
    done = await wait_for(client, headers, job["id"], timeout=120)
    assert done["status"] == "completed", done
    output = (await client.get(f"/api/v1/files/{done['output_files'][0]}",
                               headers=headers)).json()
    assert output["metadata"]["duration"] == pytest.approx(3.5, abs=0.2)
    await keep_history(temporal_env, job["workflow_id"], "waited_for_import")


async def test_a_job_waiting_for_an_import_that_fails_fails_cleanly(
    client: httpx.AsyncClient, headers: dict, server: Origin
) -> None:
    created = await start_import(client, headers, server.url("/gated/missing.mp4"))
    job = await submit(client, headers, {"type": "transcode", "params": {"input": created["id"]}})
    gate = server.notes["gate"]
    assert isinstance(gate, asyncio.Event)
    gate.set()
    done = await wait_for(client, headers, job["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "ImportFailed"
    assert "HTTP 404" in done["error"]["message"] and done["output_files"] == []
    failed = await settled(client, headers, created["id"])
    assert failed["error"]["code"] == "HttpError"
    again = await client.post("/api/v1/jobs", headers=headers, json={
        "type": "transcode", "params": {"input": created["id"]}})
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "params", "input"]


async def test_deleting_an_importing_file_cancels_its_import(
    client: httpx.AsyncClient, headers: dict, server: Origin, temporal_env
) -> None:
    created = await start_import(client, headers, server.url("/gated/clip.mp4"))
    handle = temporal_env.client.get_workflow_handle(import_workflow_id_for(created["id"]))
    for _ in range(100):  # the download is under way, held by the server
        if server.hits["/gated/clip.mp4"]:
            break
        await asyncio.sleep(0.1)
    assert (await client.delete(f"/api/v1/files/{created['id']}",
                                headers=headers)).status_code == 204
    for _ in range(100):
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.1)
    assert described.status == WorkflowExecutionStatus.CANCELED
    assert (await client.get(f"/api/v1/files/{created['id']}",
                             headers=headers)).status_code == 404


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/x.mp4", "file:///etc/passwd", "http://user:pw@127.0.0.1/x.mp4",
    "not a url", "http://127.0.0.1:99999/x.mp4", "",
])
async def test_urls_that_are_not_plain_http_are_422(
    client: httpx.AsyncClient, headers: dict, url: str
) -> None:
    response = await client.post("/api/v1/files/import", headers=headers, json={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "url"]
