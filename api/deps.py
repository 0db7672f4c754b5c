"""Annotated dependency aliases that keep route signatures short."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from temporalio.client import Client

from api.users.auth import authenticated_superuser, authenticated_user
from api.users.models import UserModel
from core.config import Settings
from core.storage import Storage


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_storage_dep(request: Request) -> Storage:
    return request.app.state.storage


async def get_temporal(request: Request) -> Client:
    try:
        return await request.app.state.temporal.get()
    except Exception as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="Temporal is unavailable"
        ) from exc


async def get_optional_temporal(request: Request) -> Client | None:
    """For reads that fall back to the database while Temporal is away."""
    try:
        return await request.app.state.temporal.get(timeout=2.0)
    except Exception:  # noqa: BLE001 - unreachable Temporal is an answer here, not an error
        return None


MAX_OFFSET = 1_000_000
"""Deepest page a list route serves: far past any real listing, far inside every integer
type a database has (a bigger number is a 422, never a query)."""
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]

SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StorageDep = Annotated[Storage, Depends(get_storage_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
"""The Temporal client; 503 while Temporal is unreachable."""
OptionalTemporal = Annotated[Client | None, Depends(get_optional_temporal)]
"""The Temporal client, or None while it is unreachable."""
CurrentUser = Annotated[UserModel, Depends(authenticated_user)]
"""The active user behind a bearer token or an ``X-API-Key`` (401 otherwise);
charges the user's request budget (429 when spent)."""
SuperUser = Annotated[UserModel, Depends(authenticated_superuser)]
"""As ``CurrentUser``, and 403 unless the user is a superuser."""


def uuid_or_404(value: str, what: str) -> uuid.UUID:
    """A path id as a UUID; anything else names nothing, so it is the same 404 as an id
    that does not exist (``"<what> not found"``)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found") from None
