"""Webhook delivery: a signed POST of ``{event, job}``, retried by Temporal.

The delivery id is derived from (job, event), so every retry of one delivery
carries the same ``X-Mediaflow-Delivery`` and a receiver can drop duplicates.
Each attempt's outcome is written to the job's operation log.

Every attempt checks the target again (off the event loop: resolving is blocking) and
connects only to an address that check approved (:func:`core.webhooks.pinned`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.enums import TERMINAL_STATUSES
from core.tables import Job, OperationLog
from core.views import job_public
from core.webhooks import WebhookTargetRefused, check_target, pinned, signature
from workflows.types import WebhookInput

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRYABLE_STATUS = {408, 425, 429}


async def _log(job_id: uuid.UUID, *, success: bool, detail: str, started: float) -> None:
    info = activity.info()
    await OperationLog(
        job=job_id, step=-1, step_id="webhook", operation_type="webhook", pool="-",
        attempt=info.attempt, success=success, error_details=None if success else detail,
        duration=round(time.monotonic() - started, 3), argv=[detail] if success else [],
        started_at=dt.datetime.now(dt.UTC),
    ).save()


async def _post(url: str, addresses: list[str], body: bytes,
                headers: dict[str, str]) -> httpx.Response:
    """POST to the first checked address that accepts a connection; redirects not followed."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        for position, address in enumerate(addresses):
            target, host, server_name = pinned(url, address)
            try:
                return await client.post(target, content=body,
                                         headers={**headers, "Host": host},
                                         extensions={"sni_hostname": server_name})
            except httpx.ConnectError:
                if position == len(addresses) - 1:
                    raise
    raise httpx.ConnectError(f"no address for {url}")


class WebhookActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, request: WebhookInput) -> None:
        await deliver(self.settings, request)


async def deliver(settings: Settings, request: WebhookInput) -> None:
    job_id = uuid.UUID(request.job_id)
    row = await Job.select().where(Job.id == job_id).output(load_json=True).first()
    hook = (row or {}).get("spec", {}).get("webhook") if row else None
    if not row or not hook or not hook.get("url"):
        return
    started = time.monotonic()
    try:
        addresses = await asyncio.to_thread(
            check_target, hook["url"], allow_private=bool(settings.webhook_allow_private))
    except WebhookTargetRefused as exc:
        await _log(job_id, success=False, detail=f"refused: {exc}", started=started)
        raise ApplicationError(str(exc), type="WebhookRefused", non_retryable=True) from exc

    # the ending the row records: a cancel that raced the publishing ends the workflow
    # cancelled, but the job stays completed with its files, and so says its webhook
    event = f"job.{row['status']}" if row["status"] in TERMINAL_STATUSES else request.event
    body = json.dumps({"event": event, "job": job_public(row)},
                      separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mediaflow-webhook/1",
        "X-Mediaflow-Event": event,
        "X-Mediaflow-Delivery": str(uuid.uuid5(job_id, event)),
    }
    if hook.get("secret"):
        headers["X-Mediaflow-Signature"] = signature(hook["secret"], int(time.time()), body)
    try:
        response = await _post(hook["url"], addresses, body, headers)
    except httpx.HTTPError as exc:
        await _log(job_id, success=False, detail=f"{type(exc).__name__}: {exc}", started=started)
        raise ApplicationError(f"webhook delivery failed: {exc}", type="WebhookFailed") from exc
    detail = f"HTTP {response.status_code}"
    ok = 200 <= response.status_code < 300
    await _log(job_id, success=ok, detail=detail, started=started)
    if ok:
        return
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
    raise ApplicationError(f"webhook answered {detail}", type="WebhookFailed",
                           non_retryable=not retryable)
