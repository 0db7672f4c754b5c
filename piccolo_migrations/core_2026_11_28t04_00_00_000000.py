"""Additive, and run by SQLite as well as PostgreSQL:

* ``mf_media_file.share_generation``: bumped to revoke every share link of a file;
* an index of the operation log by operation type and time, for operators' questions
  ("every failed webhook of the last hour") that read one type's range, not every row.

Both may already exist: for a while one migration under the previous id added them
together with ``deleted_at``, so each is added only where it is missing.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.engine import engine_finder

ID = "2026-11-28T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "media file share_generation, operation log type/time index"

INDEX = "mf_operation_log_type_started"


async def _has_share_generation() -> bool:
    engine = engine_finder()
    if engine.engine_type == "sqlite":
        rows = await engine.run_ddl("PRAGMA table_info(mf_media_file)")
        return any(row["name"] == "share_generation" for row in rows)
    return bool(await engine.run_ddl(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'mf_media_file' AND column_name = 'share_generation'"))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    if not await _has_share_generation():
        manager.add_column(table_class_name="MediaFile", tablename="mf_media_file",
                           column_name="share_generation", db_column_name="share_generation",
                           column_class_name="Integer", column_class=Integer,
                           params={"default": 0}, schema=None)

    async def create_index():
        await engine_finder().run_ddl(f"CREATE INDEX IF NOT EXISTS {INDEX} "
                                      "ON mf_operation_log (operation_type, started_at)")

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
