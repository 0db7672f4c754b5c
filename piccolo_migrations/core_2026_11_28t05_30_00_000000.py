from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Text, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T05:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "URL imports: media file status (ready | importing | failed), error, source_url"

COMMON = {
    "primary_key": False,
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

    manager.add_column(
        table_class_name="MediaFile",
        tablename="mf_media_file",
        column_name="status",
        db_column_name="status",
        column_class_name="Varchar",
        column_class=Varchar,
        params={**COMMON, "length": 16, "default": "ready", "null": False},
        schema=None,
    )
    manager.add_column(
        table_class_name="MediaFile",
        tablename="mf_media_file",
        column_name="error",
        db_column_name="error",
        column_class_name="JSON",
        column_class=JSON,
        params={**COMMON, "default": None, "null": True},
        schema=None,
    )
    manager.add_column(
        table_class_name="MediaFile",
        tablename="mf_media_file",
        column_name="source_url",
        db_column_name="source_url",
        column_class_name="Text",
        column_class=Text,
        params={**COMMON, "default": None, "null": True},
        schema=None,
    )

    return manager
