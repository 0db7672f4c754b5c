from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T03:59:40:251266"
VERSION = "1.38.0"
DESCRIPTION = "operation log decoder"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="core", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="OperationLog",
        tablename="mf_operation_log",
        column_name="decoder",
        db_column_name="decoder",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 16,
            "default": "cpu",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
