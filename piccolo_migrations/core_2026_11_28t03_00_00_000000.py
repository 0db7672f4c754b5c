"""Additive, and run by SQLite as well as PostgreSQL: ``mf_user.deleted_at``. An account
whose deletion has started is closed at once (``DeleteUserWorkflow`` then removes its
data)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz

ID = "2026-11-28T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user deleted_at: an account being deleted is closed at once"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_column(table_class_name="User", tablename="mf_user", column_name="deleted_at",
                       db_column_name="deleted_at", column_class_name="Timestamptz",
                       column_class=Timestamptz, params={"null": True, "default": None},
                       schema=None)
    return manager
