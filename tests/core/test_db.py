"""The PostgreSQL pool hands connections back without asyncpg's session reset
(core/db.py, ``_no_session_state``): what makes that safe is checked here."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from piccolo.engine.postgres import PostgresEngine

REPO = Path(__file__).resolve().parents[2]
SESSION_STATE = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\(|\bLISTEN\b|add_listener\(|SET SESSION|"
    r"set_config\(|WITH HOLD|[\"']SET (?!LOCAL)")
"""What would outlive a transaction on a pooled connection: session advisory locks,
notifications, session settings, holdable cursors."""


def test_no_code_leaves_session_state_on_a_connection() -> None:
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for folder in ("api", "core", "activities", "workflows", "cli")
             for path in sorted((REPO / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if SESSION_STATE.search(line)]
    assert found == []
    assert SESSION_STATE.search('"SELECT pg_advisory_lock(1)"')  # the pattern does catch them
    assert SESSION_STATE.search("await connection.execute('SET search_path TO x')")
    assert not SESSION_STATE.search('"SELECT pg_advisory_xact_lock(hashtextextended({}, 0))"')


async def test_a_transaction_left_open_is_rolled_back_on_release(db_engine: object) -> None:
    """asyncpg still rolls back what a borrower left open before the connection is
    pooled again; nothing of it is seen afterwards, on that connection or any other."""
    assert isinstance(db_engine, PostgresEngine) and db_engine.pool is not None
    email = f"left-open-{uuid.uuid4().hex[:8]}@example.com"
    async with db_engine.pool.acquire() as connection:
        await connection.execute("BEGIN")
        await connection.execute(
            'INSERT INTO "mf_user" (id, email, username, hashed_password, is_active, '
            "is_superuser, is_verified) VALUES ($1, $2, $3, 'x', true, false, false)",
            uuid.uuid4(), email, email.split("@")[0])
    for _ in range(3):  # the pool's connections, the released one among them
        async with db_engine.pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval(
                'SELECT count(*) FROM "mf_user" WHERE email = $1', email) == 0
