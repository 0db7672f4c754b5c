"""Additive, and run by SQLite as well as PostgreSQL:

* ``mf_user.deleted_at``: an account whose deletion has started is closed at once
  (``DeleteUserWorkflow`` then removes its data);
* ``mf_media_file.share_generation``: bumped to revoke every share link of a file;
* an index of the operation log by operation type and time, for operators' questions
  ("every failed webhook of the last hour") that read one type's range, not every row.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer, Timestamptz
from piccolo.engine import engine_finder

ID = "2026-11-28T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user deleted_at, media file share_generation, operation log type/time index"

INDEX = "mf_operation_log_type_started"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    for table, tablename, column, column_class, params in (
        ("User", "mf_user", "deleted_at", Timestamptz, {"null": True, "default": None}),
        ("MediaFile", "mf_media_file", "share_generation", Integer, {"default": 0}),
    ):
        manager.add_column(table_class_name=table, tablename=tablename, column_name=column,
                           db_column_name=column, column_class_name=column_class.__name__,
                           column_class=column_class, params=params, schema=None)

    async def create_index():
        await engine_finder().run_ddl(f"CREATE INDEX IF NOT EXISTS {INDEX} "
                                      "ON mf_operation_log (operation_type, started_at)")

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
