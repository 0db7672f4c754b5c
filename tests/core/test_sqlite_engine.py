"""The embedded SQLite engine's connection pool under contention and failure: it never
grows past its size, and a transaction that fails at BEGIN, at a write or at its end
hands back a connection with no transaction open (or drops it), never a leaked one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from piccolo.engine.sqlite import TransactionType
from piccolo.querystring import QueryString

from core import db
from core.db import SharedSQLiteEngine, write_transaction

LOCKED = "database is locked"


@pytest.fixture
async def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[SharedSQLiteEngine]:
    # a short busy timeout, so that a held write lock fails a BEGIN in 50 ms, not 10 s
    monkeypatch.setattr(db, "SQLITE_PRAGMAS", tuple(
        "PRAGMA busy_timeout = 50" if "busy_timeout" in p else p for p in db.SQLITE_PRAGMAS))
    engine = SharedSQLiteEngine(str(tmp_path / "pool.sqlite"))
    await engine.run_ddl("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
    yield engine
    await engine.close_shared()


async def insert(engine: SharedSQLiteEngine, name: str) -> None:
    """A write outside any transaction, as every plain Piccolo save runs."""
    await engine.run_querystring(QueryString("INSERT INTO item (name) VALUES ({})", name))


def names(engine: SharedSQLiteEngine) -> list[str]:
    """What another process would see: only committed rows."""
    with sqlite3.connect(engine.path) as other:
        return [row[0] for row in other.execute("SELECT name FROM item ORDER BY id")]


async def test_concurrent_writes_share_at_most_the_pool_size(
    engine: SharedSQLiteEngine,
) -> None:
    await asyncio.gather(*(insert(engine, f"n{n}")
                           for n in range(30)))
    assert len(names(engine)) == 30
    assert 1 <= engine.connections <= SharedSQLiteEngine.POOL_SIZE


async def test_a_begin_that_fails_returns_its_connection(engine: SharedSQLiteEngine) -> None:
    holder = sqlite3.connect(engine.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        for _ in range(SharedSQLiteEngine.POOL_SIZE + 2):
            with pytest.raises(sqlite3.OperationalError, match=LOCKED):
                async with engine.transaction(TransactionType.immediate):
                    pytest.fail("the transaction cannot have begun")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # before the fix every failed BEGIN kept its connection, and this write waited forever
    await asyncio.wait_for(engine.run_ddl("INSERT INTO item (name) VALUES ('after')"), 10)
    assert names(engine) == ["after"]
    assert engine.connections <= SharedSQLiteEngine.POOL_SIZE
    assert engine.current_transaction.get() is None


async def test_a_transaction_that_fails_midway_leaves_nothing_open(
    engine: SharedSQLiteEngine,
) -> None:
    await engine.run_ddl("INSERT INTO item (name) VALUES ('first')")
    with pytest.raises(sqlite3.OperationalError, match=LOCKED):
        async with engine.transaction():  # DEFERRED: reads first, then tries to write
            await engine.run_ddl("SELECT * FROM item")
            with sqlite3.connect(engine.path) as other:  # commits behind its snapshot
                other.execute("INSERT INTO item (name) VALUES ('other')")
            await engine.run_ddl("INSERT INTO item (name) VALUES ('lost')")
    # every pooled connection is usable, none sits in the failed transaction: each
    # of these writes commits on its own
    await asyncio.gather(*(insert(engine, f"w{n}")
                           for n in range(SharedSQLiteEngine.POOL_SIZE * 2)))
    assert names(engine)[:2] == ["first", "other"] and "lost" not in names(engine)
    assert len(names(engine)) == 2 + SharedSQLiteEngine.POOL_SIZE * 2


async def test_a_write_transaction_takes_the_lock_before_it_reads(
    engine: SharedSQLiteEngine,
) -> None:
    """The quota check reads, then inserts: begun IMMEDIATE, a commit by another
    connection cannot slip in between and fail the insert."""
    async with write_transaction(engine):
        await engine.run_ddl("SELECT COUNT(*) FROM item")
        with sqlite3.connect(engine.path, timeout=0.05) as other, pytest.raises(
                sqlite3.OperationalError, match=LOCKED):
            other.execute("INSERT INTO item (name) VALUES ('other')")  # has to wait
        await engine.run_ddl("INSERT INTO item (name) VALUES ('mine')")
    assert names(engine) == ["mine"]


async def test_a_cancelled_transaction_frees_the_lock_and_its_connection(
    engine: SharedSQLiteEngine,
) -> None:
    entered = asyncio.Event()

    async def slow() -> None:
        async with engine.transaction():
            await engine.run_ddl("INSERT INTO item (name) VALUES ('cancelled')")
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(slow())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with engine.transaction():  # the queue's lock was released
        await engine.run_ddl("INSERT INTO item (name) VALUES ('next')")
    assert names(engine) == ["next"]
    assert engine.connections <= SharedSQLiteEngine.POOL_SIZE
