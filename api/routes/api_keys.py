"""``/api-keys``: create (the key is shown once), list and revoke the caller's keys.

Another user's key id answers 404, exactly like an unknown one.
"""

from __future__ import annotations

import uuid

from fastapi import HTTPException, Response, status

from api.deps import CurrentUser
from api.routing import ApiRouter
from api.users.api_keys import create_api_key, list_api_keys, revoke_api_key
from api.users.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
)

router = ApiRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create(body: ApiKeyCreate, user: CurrentUser) -> ApiKeyCreated:
    row, key = await create_api_key(user.id, body.name)
    return ApiKeyCreated(**row, key=key)


@router.get("", name="list", response_model=ApiKeysPublic)
async def list_keys(user: CurrentUser) -> ApiKeysPublic:
    items = [ApiKeyPublic(**row) for row in await list_api_keys(user.id)]
    return ApiKeysPublic(items=items, total=len(items))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke(key_id: uuid.UUID, user: CurrentUser) -> None:
    if not await revoke_api_key(user.id, key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="API key not found")
