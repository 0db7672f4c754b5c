"""URL imports (docs/API.md, "Import from a URL"; docs/SECURITY.md #19, #28): download,
probe and keep a file, on the worker that runs ``ImportFileWorkflow``.

* **The SSRF guard on every hop.** Redirects are followed by hand: each URL, the first and
  every ``Location``, is judged by ``core.webhooks.check_target`` and the request goes to
  an address that check approved (``pinned``), never to a name resolved again. Proxies
  from the environment are ignored, so nothing routes around the check.
* **Streamed, bounded.** The body goes to the worker's scratch space chunk by chunk,
  hashed on the way, never whole in memory. A declared ``Content-Length`` over the limit
  (the upload limit, and what is left of the quota) is refused before a byte of the body
  is read; a body that passes it is cut off there. The whole download has a time limit
  (``MEDIAFLOW_IMPORT_TIMEOUT_SECONDS``), and a stall of 30 s ends an attempt.
* **The upload gate.** The file then goes through ``core.probe.probe_file``, exactly as an
  upload does: what it refuses fails the import with its reason.
* **Idempotent.** Each attempt writes its own scratch file; the object key is the file's
  (``users/<user>/files/<file>``), so a retry overwrites rather than duplicates, and a
  file already ``ready`` is returned as it is.
* **Cancellable.** A heartbeat every few seconds carries Temporal's cancel (the file was
  deleted, or an operator cancelled the workflow) into the download, which stops and
  removes its scratch file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.enums import FileStatus
from core.filenames import display_name, url_name
from core.probe import MediaRejected, ProbeUnavailable, probe_file
from core.storage import Storage
from core.tables import MediaFile
from core.temporal import import_workflow_id_for
from core.webhooks import WebhookTargetRefused, check_target, pinned
from workflows.types import ImportFailure, ImportInput, ImportResult, ImportWait

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CHUNK = 256 * 1024
USER_AGENT = "mediaflow-import/1"
KEEPALIVE_SECONDS = 2.0
WAIT_POLL_SECONDS = 0.5
WORKFLOW_CHECK_SECONDS = 10.0


def failure(code: str, message: str, *, retryable: bool = False) -> ApplicationError:
    return ApplicationError(message, type=code, non_retryable=not retryable)


@dataclass
class Downloaded:
    size: int
    sha256: str
    redirects: int
    name_hint: str


def _declared_length(response: httpx.Response) -> int | None:
    text = response.headers.get("content-length", "").strip()
    return int(text) if text.isdigit() and len(text) <= 18 else None


async def _send(client: httpx.AsyncClient, url: str, addresses: list[str]) -> httpx.Response:
    """GET ``url`` from the first checked address that accepts a connection (streamed)."""
    for position, address in enumerate(addresses):
        target, host, server_name = pinned(url, address)
        request = client.build_request(
            "GET", target, headers={"Host": host, "User-Agent": USER_AGENT, "Accept": "*/*"},
            extensions={"sni_hostname": server_name})
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError:
            if position == len(addresses) - 1:
                raise
    raise httpx.ConnectError(f"no address for {url}")


async def fetch(url: str, path: Path, *, max_bytes: int, allow_private: bool) -> Downloaded:
    """Follow ``url`` through at most :data:`MAX_REDIRECTS` checked redirects and write its
    body to ``path``; ApplicationError for everything that stops it."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                                 trust_env=False) as client:
        for hop in range(MAX_REDIRECTS + 1):
            where = "the url" if hop == 0 else f"redirect {hop} ({url})"
            try:
                addresses = await asyncio.to_thread(check_target, url,
                                                    allow_private=allow_private,
                                                    purpose="import")
            except WebhookTargetRefused as exc:
                raise failure("ImportRefused", f"{where} was refused: {exc}") from exc
            try:
                response = await _send(client, url, addresses)
            except httpx.HTTPError as exc:
                raise failure("DownloadFailed", f"{where}: {type(exc).__name__}: {exc}",
                              retryable=True) from exc
            try:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location", "").strip()
                    if not location:
                        raise failure("HttpError", f"{where} answered "
                                      f"{response.status_code} without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status_code != 200:
                    retryable = response.status_code in RETRYABLE_STATUSES
                    raise failure("DownloadFailed" if retryable else "HttpError",
                                  f"{where} answered HTTP {response.status_code}",
                                  retryable=retryable)
                declared = _declared_length(response)
                if declared is not None and declared > max_bytes:
                    raise failure("TooLarge", f"the server declares {declared} bytes; the "
                                  f"limit is {max_bytes}")
                size, sha256 = await _write_body(response, path, max_bytes)
                return Downloaded(size, sha256, hop, url_name(url))
            finally:
                await response.aclose()
    raise failure("ImportRefused", f"more than {MAX_REDIRECTS} redirects")


async def _write_body(response: httpx.Response, path: Path, max_bytes: int) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    try:
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in response.aiter_bytes(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise failure("TooLarge", f"the body passed the limit of {max_bytes} bytes")
                digest.update(chunk)
                await out.write(chunk)
    except httpx.HTTPError as exc:
        raise failure("DownloadFailed", f"the download broke off: {type(exc).__name__}",
                      retryable=True) from exc
    if size == 0:
        raise failure("UnsupportedMedia", "the server sent an empty body")
    return size, digest.hexdigest()


async def _keep_heartbeating(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)


class ImportActivities:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    def limits(self, request: ImportInput) -> tuple[int, float, bool]:
        """The stricter of the API's limits (in the request) and this worker's settings."""
        max_bytes = min(request.max_bytes or self.settings.max_upload_bytes,
                        self.settings.max_upload_bytes)
        timeout = min(request.timeout_seconds, self.settings.import_timeout_seconds)
        allow_private = request.allow_private and bool(self.settings.import_allow_private)
        return max_bytes, timeout, allow_private

    @activity.defn(name="import_file")
    async def import_file(self, request: ImportInput) -> ImportResult:
        file_id = uuid.UUID(request.file_id)
        row = await MediaFile.select(
            MediaFile.status, MediaFile.is_deleted, MediaFile.size, MediaFile.kind,
            MediaFile.checksum_sha256, MediaFile.storage_key,
        ).where(MediaFile.id == file_id).first()
        if row is None or row["is_deleted"]:
            raise failure("Gone", "the file was deleted before its import finished")
        if row["status"] == FileStatus.ready:  # an earlier attempt got through
            return ImportResult(request.file_id, row["size"], row["kind"],
                                row["checksum_sha256"])
        max_bytes, timeout, allow_private = self.limits(request)
        scratch = self.settings.scratch_root / "imports"
        await anyio.Path(scratch).mkdir(parents=True, exist_ok=True)
        async for stale in anyio.Path(scratch).glob(f"{file_id}-a*.part"):
            await stale.unlink(missing_ok=True)  # a killed worker's attempt
        path = scratch / f"{file_id}-a{activity.info().attempt}.part"
        keepalive = asyncio.create_task(_keep_heartbeating(KEEPALIVE_SECONDS))
        try:
            try:
                async with asyncio.timeout(timeout):
                    got = await fetch(request.url, path, max_bytes=max_bytes,
                                      allow_private=allow_private)
            except TimeoutError:
                raise failure("TimedOut", f"the download took longer than {timeout:g} s") \
                    from None
            return await self._keep(request, row["storage_key"], path, got)
        finally:
            keepalive.cancel()
            path.unlink(missing_ok=True)  # noqa: ASYNC240 - must run under cancellation too

    async def _keep(self, request: ImportInput, key: str, path: Path,
                    got: Downloaded) -> ImportResult:
        """The upload gate, then storage, then the row (within the quota)."""
        try:
            probe = await probe_file(path, settings=self.settings)
        except MediaRejected as exc:
            code = "MediaLimitExceeded" if exc.http_status == 422 else "UnsupportedMedia"
            raise failure(code, exc.reason) from exc
        except ProbeUnavailable as exc:
            raise failure("ProbeUnavailable", "media probing is unavailable on this worker",
                          retryable=True) from exc
        size, sha256 = got.size, got.sha256
        if probe.sanitized is not None:  # subtitles: keep the cleaned text, as uploads do
            await anyio.Path(path).write_bytes(probe.sanitized)
            size, sha256 = len(probe.sanitized), hashlib.sha256(probe.sanitized).hexdigest()
        await self.storage.adopt_file(key, path, content_type=probe.content_type,
                                      sha256=sha256)
        try:
            await self._publish(request, {
                MediaFile.status: FileStatus.ready, MediaFile.kind: probe.kind,
                MediaFile.size: size, MediaFile.checksum_sha256: sha256,
                MediaFile.content_type: probe.content_type, MediaFile.metadata: probe.metadata,
                MediaFile.probe: probe.raw or {}, MediaFile.error: None,
                MediaFile.filename: display_name(request.filename or got.name_hint,
                                                 probe.extension, fallback="import"),
                MediaFile.updated_at: dt.datetime.now(dt.UTC),
            })
        except BaseException:
            await asyncio.shield(self.storage.delete(key))  # no object without its row
            raise
        return ImportResult(request.file_id, size, probe.kind, sha256, got.redirects)

    async def _publish(self, request: ImportInput, values: dict[Any, Any]) -> None:
        """Make the file ``ready`` unless it was deleted meanwhile or the user's live files
        would pass the quota (checked under the same lock as uploads)."""
        file_id, user_id = uuid.UUID(request.file_id), uuid.UUID(request.user_id)
        async with MediaFile._meta.db.transaction():
            if self.settings.is_postgres:
                await MediaFile.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))",
                                    f"mediaflow-quota:{user_id}")
            current = await MediaFile.select(MediaFile.is_deleted).where(
                MediaFile.id == file_id).first()
            if current is None or current["is_deleted"]:
                raise failure("Gone", "the file was deleted before its import finished")
            used = await MediaFile.raw(
                "SELECT COALESCE(SUM(size), 0) AS used FROM mf_media_file "
                "WHERE \"user\" = {} AND is_deleted = {} AND id != {}",
                user_id, False, file_id)
            quota = self.settings.user_quota_bytes
            if int(used[0]["used"]) + values[MediaFile.size] > quota:
                raise failure("QuotaExceeded", f"the file would pass your quota of {quota} "
                              "bytes")
            await MediaFile.update(values).where(MediaFile.id == file_id)

    @activity.defn(name="fail_import")
    async def fail_import(self, request: ImportFailure) -> None:
        row = await MediaFile.select(MediaFile.storage_key, MediaFile.status).where(
            MediaFile.id == uuid.UUID(request.file_id)).first()
        if row is None or row["status"] == FileStatus.ready:
            return
        await self.storage.delete(row["storage_key"])
        await MediaFile.update({
            MediaFile.status: FileStatus.failed, MediaFile.updated_at: dt.datetime.now(dt.UTC),
            MediaFile.error: {"code": request.code, "message": request.message[:2000]},
        }).where(MediaFile.id == uuid.UUID(request.file_id))


async def _import_closed(file_id: str) -> bool:
    """Whether the file's ImportFileWorkflow has ended (terminated in the UI, say) while the
    file still says ``importing``."""
    handle = activity.client().get_workflow_handle(import_workflow_id_for(file_id))
    try:
        described = await handle.describe()
    except Exception:  # noqa: BLE001 - not found or unreachable: ask again later
        return False
    return described.status not in (None, WorkflowExecutionStatus.RUNNING)


@activity.defn(name="await_imports")
async def await_imports(request: ImportWait) -> None:
    """Return once every file is ``ready``; ``ImportFailed`` (not retried) when one failed,
    was deleted, or its import ended without a result. Heartbeats while it waits, so a
    cancelled job stops waiting at once."""
    ids = [uuid.UUID(f) for f in request.file_ids]
    checked_workflows = time.monotonic()
    while True:
        activity.heartbeat()
        rows = await MediaFile.select(
            MediaFile.id, MediaFile.status, MediaFile.error, MediaFile.is_deleted,
        ).where(MediaFile.id.is_in(ids), MediaFile.user == uuid.UUID(request.user_id)).output(
            load_json=True)
        found = {str(r["id"]): r for r in rows}
        waiting = []
        for file_id in request.file_ids:
            row = found.get(file_id)
            if row is None or row["is_deleted"]:
                raise failure("ImportFailed", f"input file {file_id} was deleted")
            if row["status"] == FileStatus.failed:
                reason = (row["error"] or {}).get("message") or "unknown"
                raise failure("ImportFailed", f"input file {file_id} could not be imported: "
                                              f"{reason}")
            if row["status"] == FileStatus.importing:
                waiting.append(file_id)
        if not waiting:
            return
        if time.monotonic() - checked_workflows >= WORKFLOW_CHECK_SECONDS:
            checked_workflows = time.monotonic()
            for file_id in waiting:
                if await _import_closed(file_id):
                    raise failure("ImportFailed", f"the import of input file {file_id} "
                                                  "ended without a result")
        await asyncio.sleep(WAIT_POLL_SECONDS)

