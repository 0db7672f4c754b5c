"""Database engine from settings, shared by piccolo_conf, the API and workers."""

from __future__ import annotations

from urllib.parse import urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from core.config import Settings


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


async def start_pool(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=10)


async def close_pool(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: Engine) -> None:
    await engine.run_ddl("SELECT 1")
