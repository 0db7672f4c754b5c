"""Apps with other settings: a second API app, and fresh rate limits for the session app."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from api.main import create_app
from api.ratelimit import RateLimiter
from core.config import Settings
from core.db import bind_tables
from core.tables import User
from core.volume import MARKER


@asynccontextmanager
async def other_app(settings: Settings, **overrides: Any,
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """Run an app built from ``settings`` with ``overrides`` (its own lifespan) and yield a
    client for it. Its lifespan binds the tables to its own engine: they are bound back
    to the engine they had, so later tests keep a live pool."""
    previous = User._meta._db
    changed = settings.model_copy(update=overrides)
    if "data_dir" in overrides:
        same_volume(settings, changed.data_dir)
    application = create_app(changed)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c, changed
    finally:
        if previous is not None:
            bind_tables(previous)


def reset_rate_limits(app: Any, **limits: str) -> None:
    """Forget every counter of ``app`` (and use other limits if given): tests cannot
    spend each other's budgets."""
    settings: Settings = app.state.settings
    app.state.rate_limiter = RateLimiter(settings.model_copy(update=limits))


def same_volume(settings: Settings, data_dir: Path) -> None:
    """Give ``data_dir`` the local storage marker of ``settings``' installation: a test that
    wants a data dir of its own (scratch, metrics files) beside the session's database
    plays a restored copy of the same storage, which may start (core/volume.py)."""
    marker = settings.local_storage_root / MARKER
    if marker.exists():
        target = settings.model_copy(update={"data_dir": data_dir}).local_storage_root
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(marker, target / MARKER)


@asynccontextmanager
async def fresh_sqlite(directory: Path) -> AsyncIterator[str]:
    """A new migrated SQLite database in ``directory`` with every table bound to it for
    the block (bound back afterwards, as :func:`other_app` does); yields its URL."""
    from core.db import close_pool, engine_for, start_pool
    from tests.conftest import run_cli

    url = f"sqlite:///{directory / 'fresh.sqlite'}"
    migrated = run_cli("migrate", env={"MEDIAFLOW_DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr
    previous = User._meta._db
    engine = engine_for(url)
    await start_pool(engine)
    bind_tables(engine)
    try:
        yield url
    finally:
        await close_pool(engine)
        if previous is not None:
            bind_tables(previous)
