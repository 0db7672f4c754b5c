"""Webhooks (docs/API.md "Webhook", docs/SECURITY.md #19) against a real local receiver.

The receiver is a stdlib HTTP server on 127.0.0.1 in a thread; the session's settings allow
private targets (as dev does), and a second app built with ``webhook_allow_private=False``
shows that the same targets are refused by default.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.webhooks import deliver
from core.config import Settings
from core.storage import get_storage
from core.tables import Job, MediaFile
from core.webhooks import verify
from tests.utils.apps import other_app
from tests.utils.jobs import keep_history, submit, upload, wait_for
from tests.utils.users import new_user_headers
from workflows.types import WebhookInput

pytestmark = pytest.mark.usefixtures("worker")

SECRET = "whsec-test-0123456789"
QUIET_SECONDS = 1.5  # how long we watch for a duplicate after the first delivery


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next status of ``statuses`` (then 200) and records it."""

    url: str
    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.deliveries.append(Delivery(headers, body, status))
            return status

    async def wait(self, count: int, timeout: float = 30) -> list[Delivery]:
        """The first ``count`` deliveries, then a quiet spell that must bring no more."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            assert time.monotonic() < deadline, f"only {len(self.deliveries)} deliveries"
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET_SECONDS)
        assert len(self.deliveries) == count, [d.payload["event"] for d in self.deliveries]
        return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = holder["r"].answer(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/mediaflow")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()


def webhook(receiver: Receiver) -> dict:
    return {"url": receiver.url, "secret": SECRET}


def assert_signed(delivery: Delivery) -> None:
    header = delivery.headers["X-Mediaflow-Signature"]
    assert verify(SECRET, header, delivery.body, now=int(time.time()))
    assert not verify("another-secret", header, delivery.body, now=int(time.time()))
    assert uuid.UUID(delivery.headers["X-Mediaflow-Delivery"]).version == 5  # (job, event)
    assert delivery.headers["Content-Type"] == "application/json"


async def overlay_with_webhook(client: httpx.AsyncClient, headers: dict, video: str,
                               receiver: Receiver, text: str) -> dict:
    """A text_overlay job of ``video`` with a webhook to ``receiver``, once it has ended."""
    job = await submit(client, headers, {
        "type": "text_overlay", "params": {"video": video, "text": text},
        "output": {"preset": "ultrafast"}, "webhook": webhook(receiver)})
    return await wait_for(client, headers, job["id"])


async def webhook_logs(client: httpx.AsyncClient, headers: dict, job_id: str) -> list[dict]:
    logs = (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=headers)).json()
    return [row for row in logs if row["operation_type"] == "webhook"]


async def test_completed_job_is_delivered_once_signed(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, receiver: Receiver, temporal_env
) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    done = await overlay_with_webhook(client, headers, video, receiver, "hook")
    assert done["status"] == "completed", done
    [delivery] = await receiver.wait(1)
    assert_signed(delivery)
    payload = delivery.payload
    assert set(payload) == {"event", "job"}
    assert payload["event"] == "job.completed"
    assert delivery.headers["X-Mediaflow-Event"] == "job.completed"
    # the same shape as GET /jobs/{id}, with the final state
    view = (await client.get(f"/api/v1/jobs/{done['id']}", headers=headers)).json()
    assert payload["job"] == view
    assert payload["job"]["status"] == "completed"
    assert payload["job"]["output_files"] == done["output_files"] != []
    assert payload["job"]["progress"]["percent"] == 100.0
    [row] = await webhook_logs(client, headers, done["id"])
    assert (row["success"], row["attempt"], row["step"]) == (True, 1, -1)
    await keep_history(temporal_env, done["workflow_id"], "webhook")


async def test_a_named_host_is_called_on_the_address_that_was_checked(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, receiver: Receiver
) -> None:
    """``localhost`` may resolve to ::1 first, where nothing listens: the delivery moves on
    to the next checked address, and the receiver still sees its own host name."""
    port = receiver.url.split(":")[2].split("/")[0]
    video = await upload(client, headers, media_dir / "b.mp4")
    job = await submit(client, headers, {
        "type": "text_overlay", "params": {"video": video, "text": "named"},
        "output": {"preset": "ultrafast"},
        "webhook": {"url": f"http://localhost:{port}/hooks", "secret": SECRET}})
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "completed", done
    [delivery] = await receiver.wait(1)
    assert_signed(delivery)
    assert delivery.headers["Host"] == f"localhost:{port}"


async def test_cancelled_job_is_delivered_once(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, receiver: Receiver
) -> None:
    video = await upload(client, headers, media_dir / "long.mp4")
    job = await submit(client, headers, {
        "type": "text_overlay", "params": {"video": video, "text": "cancel me"},
        "output": {"preset": "veryslow"}, "webhook": webhook(receiver)})
    await wait_for(client, headers, job["id"], {"processing"}, timeout=30)
    response = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert response.status_code == 202, response.text
    done = await wait_for(client, headers, job["id"])
    assert done["status"] == "cancelled", done
    [delivery] = await receiver.wait(1)
    assert_signed(delivery)
    assert delivery.payload["event"] == "job.cancelled"
    assert delivery.payload["job"]["status"] == "cancelled"
    assert delivery.payload["job"]["output_files"] == []


async def test_failed_job_is_delivered_once(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, receiver: Receiver,
    settings: Settings, temporal_env,
) -> None:
    """A real failure: the input's stored bytes are gone, so ffmpeg rejects the input."""
    video = await upload(client, headers, media_dir / "a.mp4")
    row = await MediaFile.select(MediaFile.storage_key).where(
        MediaFile.id == uuid.UUID(video)).first()
    stored = get_storage(settings).local_path(row["storage_key"])
    assert stored is not None and stored.exists()
    stored.write_bytes(b"")
    done = await overlay_with_webhook(client, headers, video, receiver, "doomed")
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "InvalidMedia", done["error"]
    [delivery] = await receiver.wait(1)
    assert_signed(delivery)
    assert delivery.payload["event"] == "job.failed"
    assert delivery.payload["job"]["status"] == "failed"
    assert delivery.payload["job"]["error"] == done["error"]
    await keep_history(temporal_env, done["workflow_id"], "failed")


async def test_failing_receiver_is_retried_with_the_same_delivery_id(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500]
    video = await upload(client, headers, media_dir / "b.mp4")
    done = await overlay_with_webhook(client, headers, video, receiver, "retry")
    assert done["status"] == "completed", done
    deliveries = await receiver.wait(3, timeout=40)  # backoff: 2 s, then 4 s
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert len({d.headers["X-Mediaflow-Delivery"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1  # the same event, the same job view
    for delivery in deliveries:
        assert_signed(delivery)
    rows = await webhook_logs(client, headers, done["id"])
    assert [(r["attempt"], r["success"]) for r in rows] == [(1, False), (2, False), (3, True)]
    assert [r["error_details"] for r in rows[:2]] == ["HTTP 500", "HTTP 500"]


async def test_private_targets_are_refused_by_default(
    settings: Settings, db_engine: object, media_dir: Path, receiver: Receiver
) -> None:
    async with other_app(settings, webhook_allow_private=False) as (client, _):
        headers = await new_user_headers(client)
        video = await upload(client, headers, media_dir / "b.mp4")
        for url in (receiver.url, "http://169.254.169.254/latest/meta-data/"):
            response = await client.post("/api/v1/jobs", headers=headers, json={
                "type": "text_overlay", "params": {"video": video, "text": "x"},
                "webhook": {"url": url, "secret": SECRET}})
            assert response.status_code == 422, response.text
            [error] = response.json()["detail"]
            assert error["loc"] == ["body", "webhook", "url"], error
        jobs = (await client.get("/api/v1/jobs", headers=headers)).json()
        assert jobs["total"] == 0
    assert receiver.deliveries == []


async def test_the_webhook_tells_the_ending_the_job_has(
    client: httpx.AsyncClient, headers: dict, settings: Settings, receiver: Receiver
) -> None:
    """A cancel that reached the workflow together with the step that had published ends
    the workflow cancelled while the job stays completed with its files: the webhook says
    ``job.completed``, as the job does."""
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    job = Job(user=uuid.UUID(me["id"]), type="text_overlay", status="completed",
              workflow_id="job-raced", spec={"type": "text_overlay", "webhook": webhook(receiver)})
    await job.save()
    await ActivityEnvironment().run(deliver, settings, WebhookInput(str(job.id),
                                                                    "job.cancelled"))
    [delivery] = await receiver.wait(1)
    assert delivery.headers["X-Mediaflow-Event"] == delivery.payload["event"] == "job.completed"
    assert delivery.payload["job"]["status"] == "completed"
    assert delivery.headers["X-Mediaflow-Delivery"] == str(uuid.uuid5(job.id, "job.completed"))
