"""Case-insensitive uniqueness of emails and usernames, enforced by the database.

The user manager already refuses a second ``Ada@x`` next to ``ada@x``; these indexes
close the race between two concurrent registrations and make the lookups indexed.
Expression indexes run on both PostgreSQL and SQLite (>= 3.9).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T05:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique lower(email) and lower(username)"

INDEXES = [
    ("mf_user_email_lower", "CREATE UNIQUE INDEX IF NOT EXISTS mf_user_email_lower "
                            "ON mf_user (LOWER(email))"),
    ("mf_user_username_lower", "CREATE UNIQUE INDEX IF NOT EXISTS mf_user_username_lower "
                               "ON mf_user (LOWER(username))"),
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
