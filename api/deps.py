"""Annotated dependency aliases that keep route signatures short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from temporalio.client import Client

from api.users.auth import current_active_user, current_superuser
from api.users.models import UserModel
from core.config import Settings
from core.storage import Storage


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_storage_dep(request: Request) -> Storage:
    return request.app.state.storage


async def get_temporal(request: Request) -> Client:
    try:
        return await request.app.state.temporal.get()
    except Exception as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="Temporal is unavailable"
        ) from exc


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StorageDep = Annotated[Storage, Depends(get_storage_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CurrentUser = Annotated[UserModel, Depends(current_active_user)]
"""The active user behind a bearer token or an ``X-API-Key`` (401 otherwise);
charges the user's request budget (429 when spent)."""
SuperUser = Annotated[UserModel, Depends(current_superuser)]
"""As ``CurrentUser``, and 403 unless the user is a superuser."""
