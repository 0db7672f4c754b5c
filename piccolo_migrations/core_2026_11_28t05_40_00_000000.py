from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T05:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "installation facts (mf_instance_fact): the local storage volume's id"

COMMON = {
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="core", description=DESCRIPTION
    )

    manager.add_table(
        class_name="InstanceFact", tablename="mf_instance_fact", schema=None, columns=None
    )
    manager.add_column(
        table_class_name="InstanceFact",
        tablename="mf_instance_fact",
        column_name="key",
        db_column_name="key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={**COMMON, "length": 64, "default": "", "null": False, "primary_key": True},
        schema=None,
    )
    manager.add_column(
        table_class_name="InstanceFact",
        tablename="mf_instance_fact",
        column_name="value",
        db_column_name="value",
        column_class_name="Text",
        column_class=Text,
        params={**COMMON, "default": "", "null": False, "primary_key": False},
        schema=None,
    )

    return manager
