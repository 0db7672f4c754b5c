"""``POST /files/import`` (docs/API.md, "Import from a URL"): a file downloaded from an
http(s) URL by a Temporal workflow (``ImportFileWorkflow``, ``activities/imports.py``).

The answer comes at once: a ``File`` with ``status: "importing"``. The URL is judged here
by the webhooks' SSRF guard (docs/SECURITY.md #19) so an obvious refusal is a 422 now;
the worker judges it again, and every redirect, before it connects.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import CurrentUser, SettingsDep, TemporalDep
from api.routes.files import FilePublic, file_public, load_file, storage_key_for, used_bytes
from api.routing import ApiRouter
from core.enums import FileSource, FileStatus
from core.filenames import display_name, storable_original, url_name
from core.spec import HttpUrlText
from core.tables import MediaFile
from core.temporal import IMPORT_WORKFLOW_TYPE, JOBS_QUEUE, import_workflow_id_for
from core.webhooks import WebhookTargetRefused, check_target
from workflows.types import ImportInput

router = ApiRouter(prefix="/files", tags=["files"])


class ImportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: HttpUrlText = Field(description="http(s) URL of a media file; redirects are followed "
                                         "(at most 5), each checked like the URL itself")
    filename: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="display name (the extension comes from the probe); default: the "
                          "URL's last path segment")


@router.post("/import", name="import", status_code=status.HTTP_202_ACCEPTED,
             response_model=FilePublic,
             responses={413: {"description": "your quota is used up"},
                        422: {"description": "invalid body, or a URL that is refused (not "
                                             "http(s), credentials in it, a private address)"}})
async def import_from_url(body: ImportCreate, user: CurrentUser, settings: SettingsDep,
                          temporal: TemporalDep) -> dict[str, Any]:
    """Download a media file from a URL into your files, then probe it like an upload; the
    File is ``importing`` until it is ``ready`` or ``failed`` (with ``error``)."""
    allow_private = bool(settings.import_allow_private)
    try:
        await asyncio.to_thread(check_target, body.url, allow_private=allow_private,
                                purpose="import")
    except WebhookTargetRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"type": "url_refused", "loc": ["body", "url"], "msg": str(exc)}]) from exc
    used, _ = await used_bytes(user.id)
    remaining = settings.user_quota_bytes - used
    if remaining <= 0:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            detail=f"your quota of {settings.user_quota_bytes} bytes is used up")
    file_id = uuid.uuid4()
    name = body.filename or url_name(body.url) or "import"
    await MediaFile(
        id=file_id, user=user.id, filename=display_name(name, "", fallback="import"),
        original_filename=storable_original(name), size=0,
        content_type="application/octet-stream", kind="",
        storage_key=storage_key_for(user.id, file_id), checksum_sha256="", metadata={},
        probe={}, source=FileSource.imported, status=FileStatus.importing,
        source_url=body.url,
    ).save()
    request = ImportInput(
        file_id=str(file_id), user_id=str(user.id), url=body.url, filename=body.filename or "",
        max_bytes=min(settings.max_upload_bytes, remaining),
        timeout_seconds=settings.import_timeout_seconds, allow_private=allow_private)
    try:
        await temporal.start_workflow(
            IMPORT_WORKFLOW_TYPE, request, id=import_workflow_id_for(str(file_id)),
            task_queue=JOBS_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            memo={"summary": f"import of {body.url[:200]}", "file_id": str(file_id)})
    except RPCError as exc:
        await MediaFile.delete().where(MediaFile.id == file_id)  # nothing half-created
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="Temporal is unavailable; nothing was imported") from exc
    return file_public(await load_file(str(file_id), user.id))

