"""Database engine from settings, shared by piccolo_conf, the API and workers."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from core.config import Settings

log = logging.getLogger("mediaflow.db")


def engine_for(url: str) -> Engine:
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        return PostgresEngine(config={"dsn": url.replace("postgres://", "postgresql://", 1)})
    if parsed.scheme == "sqlite" and url.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute.db
        return SQLiteEngine(path=url[len("sqlite:///") :])
    raise ValueError(f"unsupported MEDIAFLOW_DATABASE_URL scheme: {parsed.scheme!r}")


def engine_from_settings(settings: Settings) -> Engine:
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return engine_for(settings.resolved_database_url)


async def start_pool(engine: Engine) -> bool:
    """Open the PostgreSQL pool; False (and per-query connections) while the server is down,
    so a process can start and report the database as failing instead of crashing."""
    if not isinstance(engine, PostgresEngine):
        return True
    try:
        await engine.start_connection_pool(min_size=1, max_size=10)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("database unreachable at startup (%s); will retry per query", exc)
        return False
    return True


async def close_pool(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()


async def ping(engine: Engine) -> None:
    await engine.run_ddl("SELECT 1")


def bind_tables(engine: Engine) -> None:
    """Point every mediaflow table at ``engine`` (the API and workers own theirs)."""
    from core.piccolo_app import APP_CONFIG

    for table in APP_CONFIG.table_classes:
        table._meta.db = engine
