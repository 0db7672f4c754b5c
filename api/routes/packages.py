"""Package files (docs/API.md, "Package files"): one member of a package, with Range.

The zip of a whole package is ``GET /files/{id}/download`` (``api.routes.files``). Only
paths listed in the File's ``metadata.members`` are served, so nothing outside the package
can be named (docs/SECURITY.md #27); another user's package is a 404 like a missing one.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, StorageDep
from api.routes.files import load_file
from api.routing import ApiRouter
from api.serving import member_response

router = ApiRouter(prefix="/files", tags=["files"])


@router.head("/{file_id}/members/{path:path}", include_in_schema=False)
@router.get(
    "/{file_id}/members/{path:path}", response_class=StreamingResponse,
    responses={206: {"description": "partial content (Range)"},
               404: {"description": "no such file, or no such member in the package"},
               416: {"description": "range not satisfiable"}})
async def get_member(file_id: str, path: str, request: Request, user: CurrentUser,
                     storage: StorageDep) -> Response:
    """One member of a package (a playlist, a segment, an image), by its path in
    ``metadata.members``."""
    response = member_response(storage, await load_file(file_id, user.id), path, request)
    if response is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such member")
    return response
