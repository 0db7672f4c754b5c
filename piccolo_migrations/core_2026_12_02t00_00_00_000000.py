"""The operation log indexed by operation type and time: operators' questions ("every
failed webhook of the last hour", "ffmpeg runs of type join today") read a range of one
type instead of every row. Plain SQL both PostgreSQL and SQLite run; additive."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mf_operation_log (operation_type, started_at)"

INDEXES = [
    (
        "mf_operation_log_type_started",
        "CREATE INDEX IF NOT EXISTS mf_operation_log_type_started "
        "ON mf_operation_log (operation_type, started_at)",
    ),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def create():
        db = engine_finder()
        for _, sql in INDEXES:
            await db.run_ddl(sql)

    async def drop():
        db = engine_finder()
        for name, _ in reversed(INDEXES):
            await db.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
