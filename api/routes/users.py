"""``/users``: fastapi-users' router. ``GET/PATCH /users/me`` for everyone;
``GET/PATCH/DELETE /users/{id}`` for superusers (403 otherwise, 404 for unknown ids)."""

from __future__ import annotations

from fastapi import APIRouter

from api.users.auth import fastapi_users
from api.users.schemas import UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])
router.include_router(fastapi_users.get_users_router(UserRead, UserUpdate))
