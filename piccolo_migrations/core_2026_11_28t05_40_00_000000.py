from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text, Varchar

# the column parameters every migration of this day spells out (migrations never change)
from piccolo_migrations.core_2026_11_28t05_30_00_000000 import COMMON

ID = "2026-11-28T05:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "installation facts (mf_instance_fact): the local storage volume's id"

COLUMNS = (
    ("key", Varchar, {"length": 64, "primary_key": True}),
    ("value", Text, {}),
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="core", description=DESCRIPTION
    )
    manager.add_table(
        class_name="InstanceFact", tablename="mf_instance_fact", schema=None, columns=None
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="InstanceFact", tablename="mf_instance_fact",
            column_name=name, db_column_name=name,
            column_class_name=column_class.__name__, column_class=column_class,
            params={**COMMON, "default": "", "null": False, **params}, schema=None,
        )
    return manager
