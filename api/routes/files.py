"""Files (docs/API.md, "Files"): streaming upload with probe, list, read, download, delete.

Every query is scoped by owner: another user's file is a 404, exactly like a
file that does not exist (docs/SECURITY.md #13). Object keys are server-generated
(``users/<user id>/files/<file id>``); the client's name is only data
(#10). The kind comes from the probe, never from the client's name or
Content-Type (#12).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from temporalio.service import RPCError

from api.deps import (
    CurrentUser,
    Limit,
    Offset,
    OptionalTemporal,
    SettingsDep,
    StorageDep,
    uuid_or_404,
)
from api.lean import lean_get
from api.routing import ApiRouter
from api.serving import object_response, zip_response
from api.uploads import UploadTooLarge, move_into, receive_file
from core.config import Settings
from core.db import page_where, select_where, write_transaction
from core.enums import ACTIVE_STATUSES, FileKind, FileSource, FileStatus
from core.filenames import content_disposition, display_name, storable_original
from core.files import files_locked
from core.probe import MediaRejected, ProbeUnavailable, probe_file
from core.storage import Storage
from core.tables import Job, MediaFile
from core.temporal import import_workflow_id_for

router = ApiRouter(prefix="/files", tags=["files"])

MULTIPART_SLACK = 64 * 1024
"""Room for the multipart framing when judging a declared Content-Length."""


class FileMetadata(BaseModel):
    """What the probe found. A ``package`` File (docs/API.md, "Package files") carries
    instead ``entry`` (the member to open first), ``members`` (``[{path, size}]``) and the
    package's own facts (``format``, ``renditions``, a sprite's layout, ...)."""

    duration: float | None = None
    duration_source: Literal["header", "measured"] | None = None
    """Audio and video: ``header`` when the file declares its duration, ``measured`` when
    the probe measured it from the packets (browser recordings)."""
    format: str | None = None
    width: int | None = None
    """Displayed width: a video turned by its ``rotation`` reports the upright size."""
    height: int | None = None
    fps: float | None = None
    vfr: bool | None = None
    """Video: whether its frames come at varying intervals (``fps`` is then the average)."""
    rotation: int | None = None
    """Video: degrees the stored picture is turned on display (0, 90, 180 or 270)."""
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bit_rate: int | None = None
    streams: list[dict[str, Any]] = []

    model_config = ConfigDict(extra="allow")  # a package's facts pass through as they are


class FileError(BaseModel):
    code: str
    message: str


class FilePublic(BaseModel):
    id: uuid.UUID
    filename: str
    """Sanitised display name, with the extension the probe found."""
    original_filename: str
    """The name the client sent, as data (NUL replaced); never used as a path."""
    size: int
    content_type: str
    kind: FileKind | None
    """None until an import is probed."""
    checksum_sha256: str
    metadata: FileMetadata
    source: FileSource
    job_id: uuid.UUID | None
    status: FileStatus = FileStatus.ready
    """``importing`` while a URL import runs, then ``ready`` or ``failed``."""
    error: FileError | None = None
    """Why an import failed."""
    source_url: str | None = None
    """Where an import came from."""
    created_at: dt.datetime


class FilesPublic(BaseModel):
    items: list[FilePublic]
    total: int


class FileUsage(BaseModel):
    used_bytes: int
    quota_bytes: int
    file_count: int


PUBLIC_COLUMNS = ("id", "filename", "original_filename", "size", "content_type", "kind",
                  "checksum_sha256", "metadata", "source", "job", "status", "error",
                  "source_url", "created_at")
"""The columns :func:`file_public` reads: not ``probe``, ffprobe's whole JSON for the job
compiler, the widest column of all and a fifth of a file's read to decode."""


def file_public(row: dict[str, Any]) -> dict[str, Any]:
    """The public ``File`` of a ``MediaFile`` row (selected with ``load_json=True``)."""
    return {
        "id": str(row["id"]),
        "filename": row["filename"],
        "original_filename": row["original_filename"],
        "size": row["size"],
        "content_type": row["content_type"],
        "kind": row["kind"] or None,
        "checksum_sha256": row["checksum_sha256"],
        "metadata": row["metadata"] or {},
        "source": row["source"],
        "job_id": str(row["job"]) if row.get("job") else None,
        "status": row.get("status") or FileStatus.ready,
        "error": row.get("error") or None,
        "source_url": row.get("source_url"),
        "created_at": row["created_at"],
    }


def storage_key_for(user_id: uuid.UUID, file_id: uuid.UUID) -> str:
    return f"users/{user_id}/files/{file_id}"


async def used_bytes(user_id: uuid.UUID) -> tuple[int, int]:
    """Bytes and count of the user's live files (soft-deleted ones no longer count)."""
    rows = await MediaFile.raw(
        "SELECT COALESCE(SUM(size), 0) AS used, COUNT(*) AS n FROM mf_media_file "
        "WHERE \"user\" = {} AND is_deleted = {}", user_id, False,
    )
    return int(rows[0]["used"]), int(rows[0]["n"])


async def load_file(file_id: str, owner: uuid.UUID,
                    columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """The owner's live file (``columns`` of it, else all), or a 404."""
    rows = await select_where(MediaFile, '"id" = {} AND "user" = {} AND "is_deleted" = {}',
                              uuid_or_404(file_id, "file"), owner, False, columns=columns)
    row = rows[0] if rows else None
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="file not found")
    return row


def require_ready(row: dict[str, Any]) -> None:
    """409 for a file whose bytes are not there: an import still running, or failed."""
    status_ = row.get("status") or FileStatus.ready
    if status_ == FileStatus.importing:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the file is still importing")
    if status_ != FileStatus.ready:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the file's import failed")


def declared_length(request: Request) -> int:
    try:
        return max(int(request.headers.get("content-length") or 0), 0)
    except ValueError:
        return 0  # the server would have refused it; judge by the bytes instead


@router.post("", name="upload", status_code=status.HTTP_201_CREATED, response_model=FilePublic,
             responses={413: {"description": "over the size limit or the quota"},
                        415: {"description": "not a supported media file"},
                        422: {"description": "no 'file' field, or media beyond a limit"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"],
                     "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def upload_file(request: Request, user: CurrentUser, settings: SettingsDep,
                      storage: StorageDep) -> dict[str, Any]:
    """Stream one file (multipart field ``file``) to storage, probe it, and keep it."""
    used, _ = await used_bytes(user.id)
    remaining = settings.user_quota_bytes - used
    limit = min(settings.max_upload_bytes, max(remaining, 0))
    if declared_length(request) > limit + MULTIPART_SLACK:
        raise too_large(settings, remaining)  # refused before a byte of the body is read
    try:
        received = await receive_file(request, settings.scratch_root / "uploads", limit)
    except UploadTooLarge:
        raise too_large(settings, remaining) from None
    try:
        try:
            probe = await probe_file(received.path, settings=settings)
        except MediaRejected as exc:
            raise HTTPException(exc.http_status, detail=exc.reason) from exc
        except ProbeUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                detail="media probing is unavailable") from exc
        file_id = uuid.uuid4()
        key = storage_key_for(user.id, file_id)
        size, checksum = received.size, received.sha256
        if probe.sanitized is not None:  # subtitles: store the cleaned text
            received.path.write_bytes(probe.sanitized)
            size = len(probe.sanitized)
            checksum = hashlib.sha256(probe.sanitized).hexdigest()
        await store(storage, key, received.path, probe.content_type)
    finally:
        received.path.unlink(missing_ok=True)
    row = MediaFile(
        id=file_id, user=user.id,
        filename=display_name(received.filename, probe.extension),
        original_filename=storable_original(received.filename), size=size,
        content_type=probe.content_type, kind=probe.kind, storage_key=key,
        checksum_sha256=checksum, metadata=probe.metadata, probe=probe.raw or {},
        source="upload",
    )
    try:
        await save_within_quota(row, user.id, settings)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await storage.delete(key)  # no object without its row
        raise
    return file_public(await load_file(str(file_id), user.id))


async def save_within_quota(row: MediaFile, user_id: uuid.UUID, settings: Settings) -> None:
    """Insert the row unless the user's live files plus this one pass the quota.

    Checked again here because the check before receiving cannot see uploads
    running in parallel; on PostgreSQL a per-user advisory lock makes the
    check and the insert one step, so parallel uploads cannot both squeeze in.
    """
    async with write_transaction(MediaFile._meta.db):
        if settings.is_postgres:
            await MediaFile.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))",
                                f"mediaflow-quota:{user_id}")
        used, _ = await used_bytes(user_id)
        if used + row.size > settings.user_quota_bytes:
            raise too_large(settings, settings.user_quota_bytes - used)
        await row.save()


def _fsync_and_move(path: Path, target: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())  # as LocalStorage does before its rename: a 201 survives a crash
    move_into(path, target)


async def store(storage: Storage, key: str, path: Path, content_type: str) -> None:
    local = storage.local_path(key)
    if local is not None:
        await anyio.to_thread.run_sync(_fsync_and_move, path, local)
    else:
        await storage.put_file(key, path, content_type=content_type)


def too_large(settings: Settings, remaining: int) -> HTTPException:
    if remaining < settings.max_upload_bytes:
        detail = (f"upload exceeds your remaining quota ({max(remaining, 0)} of "
                  f"{settings.user_quota_bytes} bytes left)")
    else:
        detail = f"upload exceeds the {settings.max_upload_bytes}-byte limit"
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail)


@router.get("", name="list", response_model=FilesPublic)
async def list_files(
    user: CurrentUser,
    kind: Annotated[FileKind | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The caller's files, newest first."""
    where, args = '"user" = {} AND "is_deleted" = {}', [user.id, False]
    if kind:
        where, args = where + ' AND "kind" = {}', [*args, kind.value]
    # created_at, then id: a stable order, so pages never overlap
    rows, total = await page_where(MediaFile, where, '"created_at" DESC, "id" DESC', limit,
                                   offset, *args, columns=PUBLIC_COLUMNS)
    return {"items": [file_public(r) for r in rows], "total": total}


@router.get("/usage", name="usage", response_model=FileUsage)
async def usage(user: CurrentUser, settings: SettingsDep) -> dict[str, int]:
    used, count = await used_bytes(user.id)
    return {"used_bytes": used, "quota_bytes": settings.user_quota_bytes, "file_count": count}


@lean_get(router, "/{file_id}", name="get", response_model=FilePublic)
async def get_file(file_id: str, user: CurrentUser) -> dict[str, Any]:
    return file_public(await load_file(file_id, user.id, PUBLIC_COLUMNS))


@router.get("/{file_id}/download", name="download", response_class=StreamingResponse,
            responses={206: {"description": "partial content (Range)"},
                       307: {"description": "redirect to a presigned S3 URL"},
                       409: {"description": "an import still running, or failed"},
                       416: {"description": "range not satisfiable"}})
async def download_file(file_id: str, request: Request, user: CurrentUser,
                        storage: StorageDep) -> Response:
    """The bytes, with Range support and a safe Content-Disposition; or a 307 to S3. A
    package is a zip of its members, streamed as it is written."""
    row = await load_file(file_id, user.id)
    require_ready(row)
    if row["kind"] == FileKind.package:
        return zip_response(storage, row)
    url = await storage.presign_get(row["storage_key"], filename=row["filename"],
                                    content_type=row["content_type"])
    if url:
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    return object_response(storage, row["storage_key"], row["size"], request,
                           content_type=row["content_type"], headers={
                               "ETag": f'"{row["checksum_sha256"]}"',
                               "Content-Disposition": content_disposition(row["filename"])})


@router.delete("/{file_id}", name="delete", status_code=status.HTTP_204_NO_CONTENT,
               responses={409: {"description": "a pending, running or paused job uses it"}})
async def delete_file(file_id: str, user: CurrentUser, temporal: OptionalTemporal) -> Response:
    """Soft delete: the bytes are purged later by the scheduled cleanup. An import still
    running is cancelled."""
    row = await load_file(file_id, user.id)
    async with files_locked(user.id, [str(row["id"])]) as live:
        if not live:  # deleted meanwhile
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="file not found")
        active = await Job.select(Job.input_files).where(
            Job.user == user.id, Job.status.is_in(list(ACTIVE_STATUSES))).output(load_json=True)
        if any(str(row["id"]) in map(str, j["input_files"] or []) for j in active):
            raise HTTPException(status.HTTP_409_CONFLICT, detail="a running job uses this file")
        now = dt.datetime.now(dt.UTC)
        await MediaFile.update({MediaFile.is_deleted: True, MediaFile.deleted_at: now,
                                MediaFile.updated_at: now}).where(MediaFile.id == row["id"])
    if row.get("status") == FileStatus.importing and temporal is not None:
        with contextlib.suppress(RPCError):  # ended meanwhile: it finds the file deleted
            await temporal.get_workflow_handle(import_workflow_id_for(str(row["id"]))).cancel()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
