"""A template name is unique per owner (``POST /templates`` answers 409 otherwise). Plain
SQL both PostgreSQL and SQLite run; additive."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-28T05:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mf_template unique (owner, name)"

INDEXES = [
    (
        "mf_template_owner_name",
        'CREATE UNIQUE INDEX IF NOT EXISTS mf_template_owner_name ON mf_template ("owner", name)',
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
