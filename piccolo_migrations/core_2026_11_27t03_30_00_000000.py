"""Composite indexes the queries need (plain SQL both SQLite and PostgreSQL run)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T03:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes and unique idempotency key per user"

INDEXES = [
    ("mf_job_user_status", "CREATE INDEX IF NOT EXISTS mf_job_user_status ON mf_job (\"user\", status)"),
    ("mf_job_user_created", "CREATE INDEX IF NOT EXISTS mf_job_user_created ON mf_job (\"user\", created_at)"),
    (
        "mf_job_user_idempotency",
        "CREATE UNIQUE INDEX IF NOT EXISTS mf_job_user_idempotency "
        "ON mf_job (\"user\", idempotency_key)",
    ),
    (
        "mf_media_file_user_kind",
        "CREATE INDEX IF NOT EXISTS mf_media_file_user_kind "
        "ON mf_media_file (\"user\", is_deleted, kind)",
    ),
    (
        "mf_media_file_purge",
        "CREATE INDEX IF NOT EXISTS mf_media_file_purge ON mf_media_file (is_deleted, purged_at)",
    ),
    (
        "mf_operation_log_job_step",
        "CREATE INDEX IF NOT EXISTS mf_operation_log_job_step ON mf_operation_log (job, step)",
    ),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def create():
        DB = engine_finder()

        for _, sql in INDEXES:
            await DB.run_ddl(sql)

    async def drop():
        DB = engine_finder()

        for name, _ in reversed(INDEXES):
            await DB.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
