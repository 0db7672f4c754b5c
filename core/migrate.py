"""Run Piccolo migrations forwards against the configured database."""

from __future__ import annotations

import os

from core.config import Settings


async def migrate_forwards(settings: Settings) -> None:
    # piccolo_conf builds its engine from the environment: point it at these settings.
    os.environ["MEDIAFLOW_DATABASE_URL"] = settings.resolved_database_url
    os.environ.setdefault("PICCOLO_CONF", "piccolo_conf")
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    response = await run_forwards(app_name="core", migration_id="all", fake=False)
    if not response.success:
        raise RuntimeError(f"migrations failed: {response.message}")
