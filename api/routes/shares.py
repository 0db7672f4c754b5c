"""Share links (docs/API.md, "Share links"; docs/SECURITY.md #27).

``POST /files/{id}/share`` signs a token for one of the caller's files and answers its
absolute URL, ``<base>/s/<token>/<name>``; ``DELETE /files/{id}/share`` revokes every link
of the file by bumping its ``share_generation``. ``GET /s/<token>/<path>`` (outside
``/api/v1``, no credentials) serves the file — or, for a package, any member — with Range
and ``Access-Control-Allow-Origin: *``, so a web player on any site can stream it; the
relative URLs inside a playlist resolve to siblings under the same token.

What a token can reach is decided by the token alone (core/shares.py): the file it names,
and only the paths listed in that file's members; expired, revoked or tampered tokens are
403, names and paths it does not cover are 404.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, SettingsDep, StorageDep
from api.routes.files import load_file, require_ready
from api.routing import ApiRouter
from api.serving import member_response, object_response
from core.enums import FileKind
from core.shares import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    MIN_EXPIRES_IN,
    ShareGrant,
    ShareTokenExpired,
    ShareTokenInvalid,
    make_token,
    read_token,
)
from core.tables import MediaFile

router = ApiRouter(prefix="/files", tags=["shares"])
public_router = APIRouter(prefix="/s", tags=["shares"])

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Accept-Ranges, Content-Length, Content-Range, ETag",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-Range",
    "Access-Control-Max-Age": "86400",
}


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: Annotated[int, Field(ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN)] = DEFAULT_EXPIRES_IN


class SharePublic(BaseModel):
    url: str
    expires_at: dt.datetime


def share_name(row: dict[str, Any]) -> str:
    """The last part of a share URL: the package's entry, else the file's name."""
    if row["kind"] == FileKind.package:
        return str((row["metadata"] or {}).get("entry") or "")
    return str(row["filename"])


def public_base(request: Request, public_url: str | None) -> str:
    return public_url or str(request.base_url).rstrip("/")


@router.post("/{file_id}/share", status_code=status.HTTP_201_CREATED,
             response_model=SharePublic,
             responses={404: {"description": "no such file (or someone else's)"},
                        409: {"description": "an import still running, or failed"}})
async def create_share(
    file_id: str, request: Request, user: CurrentUser, settings: SettingsDep,
    body: Annotated[ShareCreate | None, Body()] = None,
) -> dict[str, Any]:
    """A link anyone can open without credentials until ``expires_in`` seconds pass or
    the file's links are revoked."""
    row = await load_file(file_id, user.id)
    require_ready(row)
    expires_at = int(time.time()) + (body or ShareCreate()).expires_in
    token = make_token(settings.jwt_secret_value(),
                       ShareGrant(row["id"], expires_at, row["share_generation"]))
    base = public_base(request, settings.public_url)
    return {"url": f"{base}/s/{token}/{quote(share_name(row), safe='')}",
            "expires_at": dt.datetime.fromtimestamp(expires_at, dt.UTC)}


@router.delete("/{file_id}/share", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such file (or someone else's)"}})
async def revoke_shares(file_id: str, user: CurrentUser) -> Response:
    """Every share link of the file stops working at once (403); new ones can be made."""
    row = await load_file(file_id, user.id)
    await MediaFile.update({MediaFile.share_generation: MediaFile.share_generation + 1,
                            MediaFile.updated_at: dt.datetime.now(dt.UTC)}).where(
        MediaFile.id == row["id"])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _refuse(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=CORS_HEADERS)


async def _shared_file(token: str, secret: str) -> dict[str, Any] | JSONResponse:
    """The file row a token grants, or the refusal to send."""
    try:
        grant = read_token(secret, token, time.time())
    except ShareTokenExpired as exc:
        return _refuse(status.HTTP_403_FORBIDDEN, str(exc))
    except ShareTokenInvalid:
        return _refuse(status.HTTP_403_FORBIDDEN, "invalid share link")
    row = await MediaFile.select(
        MediaFile.id, MediaFile.kind, MediaFile.filename, MediaFile.size,
        MediaFile.content_type, MediaFile.storage_key, MediaFile.metadata,
        MediaFile.checksum_sha256, MediaFile.share_generation,
        MediaFile.user.is_active.as_alias("owner_active"),
    ).where(MediaFile.id == grant.file_id, MediaFile.is_deleted.eq(False)).output(
        load_json=True).first()
    if row is None:
        return _refuse(status.HTTP_404_NOT_FOUND, "the shared file no longer exists")
    if row["share_generation"] != grant.generation or not row["owner_active"]:
        return _refuse(status.HTTP_403_FORBIDDEN, "the share link was revoked")
    return row


@public_router.head("/{token}/{path:path}", include_in_schema=False)
@public_router.get(
    "/{token}/{path:path}", response_class=StreamingResponse,
    responses={206: {"description": "partial content (Range)"},
               403: {"description": "expired, revoked or invalid link"},
               404: {"description": "the file is gone, or the path is not part of it"},
               416: {"description": "range not satisfiable"}})
async def open_share(token: str, path: str, request: Request, settings: SettingsDep,
                     storage: StorageDep) -> Response:
    """The shared file, or one member of a shared package; no credentials."""
    found = await _shared_file(token, settings.jwt_secret_value())
    if isinstance(found, JSONResponse):
        return found
    row = found
    etag = {"ETag": f'"{row["checksum_sha256"]}"', **CORS_HEADERS}
    if row["kind"] == FileKind.package:
        member = member_response(storage, row, path, request, headers={**CORS_HEADERS})
        if member is None:
            return _refuse(status.HTTP_404_NOT_FOUND, "not part of the shared package")
        return member
    if path != row["filename"]:
        return _refuse(status.HTTP_404_NOT_FOUND, "not the shared file")
    return object_response(storage, row["storage_key"], row["size"], request,
                           content_type=row["content_type"], headers=etag)


@public_router.options("/{token}/{path:path}", status_code=status.HTTP_204_NO_CONTENT,
                       include_in_schema=False)
async def share_preflight(token: str, path: str) -> Response:
    """CORS preflight: any origin may GET/HEAD share links, with Range."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=PREFLIGHT_HEADERS)
