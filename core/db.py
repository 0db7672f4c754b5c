"""Database engine from settings, shared by piccolo_conf, the API and workers.

PostgreSQL runs on an asyncpg pool. Piccolo's SQLite engine opens a connection — and
with aiosqlite a thread — for every query, which under load cost most of the API's
time; :class:`SharedSQLiteEngine` keeps long-lived connections per process for the
queries that run outside a transaction. Writes go through a few aiosqlite connections
(each on its own thread, queueing on a busy timeout instead of failing with "database
is locked", whether the other writer is this process or a worker). Plain ``SELECT``s run
on one read-only connection on the event loop's own thread: in WAL mode a reader never
waits for a lock, and an indexed read costs far less than the hop to a thread and back.
A read that scans a large table holds the loop while it runs; the embedded default is
for one machine's worth of jobs, and PostgreSQL has no such shortcut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import uuid
from functools import cache
from typing import Any
from urllib.parse import urlparse

import aiosqlite
import asyncpg
from piccolo.columns import JSON, Boolean
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import (
    SQLiteEngine,
    SQLiteTransaction,
    TransactionType,
    dict_factory,
)
from piccolo.table import Table

from core.config import Settings

log = logging.getLogger("mediaflow.db")


SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = 1",
    "PRAGMA busy_timeout = 10000",  # wait for another process's write instead of failing
    "PRAGMA synchronous = NORMAL",  # with WAL: durable at checkpoints, fast commits
)


class _QueuedTransaction(SQLiteTransaction):
    """A transaction on one of the engine's pooled connections that first waits its turn
    among this process's transactions: they queue on an asyncio lock rather than on
    SQLite's busy handler, which sleeps in growing steps between tries."""

    engine: SharedSQLiteEngine

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        lock = self.engine.transaction_lock()
        await lock.acquire()
        try:
            self.connection = await self.engine.acquire()
        except BaseException:
            lock.release()
            raise
        try:
            await self.begin()
        except BaseException:
            # "database is locked" after the busy timeout, or a cancellation: the
            # connection goes back (or, in doubt, is dropped) and the lock is freed
            await self.engine.settle(self.connection)
            lock.release()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            # a failed COMMIT or ROLLBACK leaves the transaction open: settle() rolls
            # it back or drops the connection, never pools it mid-transaction
            await asyncio.shield(self.engine.settle(self.connection))
            self.engine.current_transaction.reset(self.context)
            self.engine.transaction_lock().release()
        return exception is None


class SharedSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine with at most :data:`POOL_SIZE` long-lived aiosqlite
    connections, shared by writes outside a transaction and by transactions, plus one
    read-only connection for plain ``SELECT``s on the event loop's thread."""

    POOL_SIZE = 4

    def __init__(self, path: str) -> None:
        super().__init__(path=path)
        self._pool: asyncio.Queue[aiosqlite.Connection] | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._opened: list[aiosqlite.Connection] = []
        self._opening = 0
        self._reader: sqlite3.Connection | None = None
        self._wal = False
        self._transactions: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @property
    def connections(self) -> int:
        """Pooled connections open (or being opened) on this event loop."""
        return len(self._opened) + self._opening

    def transaction(self, transaction_type: TransactionType = TransactionType.deferred,
                    allow_nested: bool = True) -> SQLiteTransaction:
        return _QueuedTransaction(self, transaction_type, allow_nested)

    def transaction_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._transactions is None or self._transactions[0] is not loop:
            self._transactions = (loop, asyncio.Lock())
        return self._transactions[1]

    def _read(self, query: str, args: list[Any]) -> list[dict[str, Any]]:
        if self._reader is None:
            self._reader = sqlite3.connect(**self.connection_kwargs, check_same_thread=False)
            self._reader.row_factory = dict_factory
            # WAL first, so that this reader never waits on a writer: a wait here
            # would hold the event loop
            self._reader.execute("PRAGMA busy_timeout = 2000")
            self._reader.execute("PRAGMA journal_mode = WAL")
            self._reader.execute("PRAGMA busy_timeout = 100")
            self._reader.execute("PRAGMA query_only = 1")
        return self._reader.execute(query, args).fetchall()

    async def get_connection(self) -> aiosqlite.Connection:
        pending = aiosqlite.connect(**self.connection_kwargs)
        # aiosqlite's worker thread would keep a finished process (`mediaflow migrate`)
        # alive until the connection is closed; the OS closes the file for us instead
        pending._thread.daemon = True
        connection = await pending
        connection.row_factory = dict_factory  # type: ignore[assignment]
        if not self._wal:  # a property of the file: once per process is enough
            await connection.execute("PRAGMA journal_mode = WAL")
            self._wal = True
        for pragma in SQLITE_PRAGMAS:
            await connection.execute(pragma)
        return connection

    def _current_pool(self) -> asyncio.Queue[aiosqlite.Connection]:
        """This event loop's pool; connections are opened on demand up to the size."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool, self._pool_loop, self._opened, self._opening = (
                asyncio.Queue(), loop, [], 0)
        return self._pool

    async def acquire(self) -> aiosqlite.Connection:
        pool = self._current_pool()
        if pool.empty() and len(self._opened) + self._opening < self.POOL_SIZE:
            self._opening += 1  # the slot is taken before the await, not after
            try:
                connection = await self.get_connection()
            finally:
                self._opening -= 1
            self._opened.append(connection)
            return connection
        return await pool.get()

    def release(self, connection: aiosqlite.Connection) -> None:
        self._current_pool().put_nowait(connection)

    async def settle(self, connection: aiosqlite.Connection) -> None:
        """Return ``connection`` to the pool with no transaction open. If it cannot be
        rolled back it is closed and dropped, and a fresh one takes its slot."""
        try:
            if connection.in_transaction:
                await connection.rollback()
        except BaseException:
            if connection in self._opened:
                self._opened.remove(connection)
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - already broken; the slot is what matters
                log.warning("could not close a broken SQLite connection", exc_info=True)
            raise
        self.release(connection)

    async def _run_in_new_connection(self, query: str, args: list[Any] | None = None,
                                     query_type: str = "generic", table: Any = None) -> Any:
        if query.lstrip()[:7].upper() == "SELECT ":
            return self._read(query, args or [])
        connection = await self.acquire()
        try:
            async with connection.execute(query, args or []) as cursor:
                rows = await cursor.fetchall()
            await connection.commit()
        finally:
            await asyncio.shield(self.settle(connection))  # never pooled mid-transaction
        return rows

    async def close_shared(self) -> None:
        if self._pool_loop is asyncio.get_running_loop():
            for connection in self._opened:
                await connection.close()
        self._pool, self._opened = None, []
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def write_transaction(engine: Engine) -> Any:
    """A transaction that reads and then writes. On SQLite it takes the write lock at
    BEGIN (IMMEDIATE): a DEFERRED one that read first fails at once with "database is
    locked" if another connection committed meanwhile, the busy timeout notwithstanding."""
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(TransactionType.immediate)
    return engine.transaction()


def engine_for(url: str) -> Engine:
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        return PostgresEngine(config={"dsn": url.replace("postgres://", "postgresql://", 1)})
    if parsed.scheme == "sqlite" and url.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute.db
        return SharedSQLiteEngine(path=url[len("sqlite:///") :])
    raise ValueError(f"unsupported MEDIAFLOW_DATABASE_URL scheme: {parsed.scheme!r}")


def engine_from_settings(settings: Settings) -> Engine:
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return engine_for(settings.resolved_database_url)


async def start_pool(engine: Engine) -> bool:
    """Open the PostgreSQL pool; False (and per-query connections) while the server is down,
    so a process can start and report the database as failing instead of crashing."""
    if not isinstance(engine, PostgresEngine):
        return True
    try:
        await engine.start_connection_pool(min_size=1, max_size=10, reset=_no_session_state)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("database unreachable at startup (%s); will retry per query", exc)
        return False
    return True


async def _no_session_state(connection: asyncpg.Connection) -> None:
    """What a pooled connection needs on its way back to the pool beyond what asyncpg
    always does first (rolling back a transaction left open): nothing, for mediaflow
    leaves no session state on one. Its advisory locks are transaction-scoped
    (``pg_advisory_xact_lock``), and it never LISTENs, SETs a session variable or keeps a
    cursor past a transaction (``tests/core/test_db.py`` keeps it so). asyncpg's default,
    ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, was a second round
    trip to the server on every read."""


async def close_pool(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
    if isinstance(engine, SharedSQLiteEngine):
        await engine.close_shared()


async def ping(engine: Engine) -> None:
    """Touch a real table: on SQLite ``SELECT 1`` never opens the database file."""
    await engine.run_ddl("SELECT 1 FROM mf_user LIMIT 1")


def bind_tables(engine: Engine) -> None:
    """Point every mediaflow table at ``engine`` (the API and workers own theirs)."""
    from core.piccolo_app import APP_CONFIG

    for table in APP_CONFIG.table_classes:
        table._meta.db = engine


TOTAL_COLUMN = "mf_rows_in_all"
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
"""What a column name in the code's own SQL may be."""


def placeholders(count: int) -> str:
    """``{}, {}, …``: the placeholders of an ``IN (…)`` list of ``count`` values."""
    return ", ".join(["{}"] * count)


async def select_where(table: type[Table], condition: str, *args: Any,
                       columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``SELECT *`` rows of ``table`` matching ``condition`` (SQL with ``{}`` placeholders
    for ``args``, column names double-quoted; it may go on with ``ORDER BY``/``LIMIT``),
    JSON columns and booleans decoded: what
    ``table.select().where(…).output(load_json=True)`` returns, for the hot read paths.
    ``columns`` names the only columns wanted, where a reader needs few: a wide JSON
    column left out is neither sent nor decoded.

    Piccolo compiles a select afresh on every call, about 0.6 ms for a wide table on this
    machine against 0.06 ms for the query itself; this one string skips that.
    """
    # the condition and columns are code's own text; values only ever travel as parameters
    sql = (f'SELECT {_column_list(columns)} '  # noqa: S608
           f'FROM "{table._meta.tablename}" WHERE {condition}')
    return _decoded(table, await _raw_rows(table, sql, args))


@cache
def _column_list(columns: tuple[str, ...]) -> str:
    """``*``, or the named columns quoted (names are code's constants, checked here)."""
    if not columns:
        return "*"
    if not all(IDENTIFIER.fullmatch(name) for name in columns):
        raise ValueError(f"not column names: {columns!r}")
    return ", ".join(f'"{name}"' for name in columns)


async def page_where(table: type[Table], condition: str, order: str, limit: int, offset: int,
                     *args: Any, columns: tuple[str, ...] = (),
                     ) -> tuple[list[dict[str, Any]], int]:
    """A page of :func:`select_where`'s rows (``ORDER BY order LIMIT limit OFFSET offset``)
    and how many rows match in all, in one query: the count is a subquery the database
    evaluates once, where a second query (:func:`count_where`) was a second round trip.
    (A window, ``count(*) OVER ()``, made SQLite materialise every matching row, whole,
    to count them: 30 ms a page for a user with 10,000 jobs.) Only a page past the end,
    which has no row to carry it, counts apart."""
    where = f'FROM "{table._meta.tablename}" WHERE {condition}'
    sql = (f'SELECT {_column_list(columns)}, (SELECT count(*) {where}) '  # noqa: S608
           f'AS "{TOTAL_COLUMN}" {where} ORDER BY {order} LIMIT {{}} OFFSET {{}}')
    rows = _decoded(table, await _raw_rows(table, sql, (*args, *args, limit, offset)))
    if not rows:
        return rows, await count_where(table, condition, *args) if offset else 0
    total = int(rows[0][TOTAL_COLUMN])
    for row in rows:
        del row[TOTAL_COLUMN]
    return rows, total


def _decoded(table: type[Table], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON columns and booleans as Python values, in place."""
    decoded, booleans = _json_columns(table), _boolean_columns(table)
    for row in rows:
        for name in decoded:
            if isinstance(row.get(name), str):
                row[name] = json.loads(row[name])
        for name in booleans:
            if isinstance(row.get(name), int):  # SQLite keeps booleans as 0 and 1
                row[name] = bool(row[name])
    return rows


async def count_where(table: type[Table], condition: str, *args: Any) -> int:
    """``SELECT count(*)`` of ``table`` where ``condition`` (as in :func:`select_where`)."""
    sql = f'SELECT count(*) AS "n" FROM "{table._meta.tablename}" WHERE {condition}'  # noqa: S608
    rows = await _raw_rows(table, sql, args)
    return int(rows[0]["n"])


async def _raw_rows(table: type[Table], sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """``table.raw(sql, *args)``, outside a transaction straight to the engine's reader
    connection (SQLite) or pool (PostgreSQL): Piccolo's raw query parses the string into
    fragments, compiles and post-processes on every call, about as long again as the
    indexed read itself (a sixth of ``GET /jobs/{id}`` under wrk, the read included).
    The rows are the same: Piccolo's SQLite adapters and converters are sqlite3's own,
    and on PostgreSQL it hands asyncpg the same query and makes dicts of its records."""
    engine = table._meta.db
    if engine.current_transaction.get() is None:
        if isinstance(engine, SharedSQLiteEngine):
            return engine._read(sql.replace("{}", "?"), list(args))
        if isinstance(engine, PostgresEngine) and engine.pool is not None:
            first, *rest = sql.split("{}")
            query = first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))
            async with engine.pool.acquire() as connection:
                return [dict(record) for record in await connection.fetch(query, *args)]
    return await table.raw(sql, *args)  # in a transaction: on its connection, as Piccolo does


@cache
def _json_columns(table: type[Table]) -> tuple[str, ...]:
    return tuple(column._meta.db_column_name for column in table._meta.columns
                 if isinstance(column, JSON))


@cache
def _boolean_columns(table: type[Table]) -> tuple[str, ...]:
    return tuple(column._meta.db_column_name for column in table._meta.columns
                 if isinstance(column, Boolean))


async def create_database(server: str, prefix: str = "mediaflow_test") -> str:
    """A new, empty database on the PostgreSQL ``server`` (``postgresql://user@host:port``,
    no database name) for a test session or a benchmark run: its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{server}/{name}"


async def drop_database(url: str) -> None:
    """Drop a database :func:`create_database` made, whoever is still connected to it."""
    server, name = url.rsplit("/", 1)
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
