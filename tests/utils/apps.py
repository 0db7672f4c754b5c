"""A second API app with changed settings, for limits the session app cannot show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from api.main import create_app
from core.config import Settings
from core.db import bind_tables
from core.tables import User


@asynccontextmanager
async def other_app(settings: Settings, **overrides: Any,
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """Run an app built from ``settings`` with ``overrides`` (its own lifespan) and yield a
    client for it. Its lifespan binds the tables to its own engine: they are bound back
    to the engine they had, so later tests keep a live pool."""
    previous = User._meta._db
    changed = settings.model_copy(update=overrides)
    application = create_app(changed)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c, changed
    finally:
        if previous is not None:
            bind_tables(previous)
