"""A page of a user's jobs (``GET /jobs?limit=20``'s read) for a user with 10 jobs and for
one with 10,000, side by side, on SQLite and on PostgreSQL: the list must not slow down
with the user's history.

Each database is migrated afresh (``mediaflow migrate``) and filled with two users' jobs
(the other user's rows are there to be skipped); ``api.job_control.page_of_jobs`` reads
the first page, newest first, with its total, as the route does.

    .venv/bin/python -m bench.list_scale [--jobs 10000] [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from core.db import bind_tables, close_pool, create_database, drop_database, engine_for, start_pool

REPO = Path(__file__).resolve().parent.parent
SMALL = 10
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
Row = tuple[uuid.UUID, uuid.UUID, str, dt.datetime]
COLUMNS = ('id, "user", type, status, spec, input_files, output_files, progress, result, '
           'retry_count, workflow_id, priority, created_at, updated_at')


def jobs_of(users: dict[uuid.UUID, int]) -> list[Row]:
    """``count`` finished jobs for each user, interleaved in time."""
    rows = []
    for index, (user, count) in enumerate(users.items()):
        rows += [(uuid.uuid4(), user, f"job-{index}-{n}",
                  BASE + dt.timedelta(seconds=2 * n + index)) for n in range(count)]
    return rows


def migrate(url: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", "migrate"], cwd=REPO, check=True,
                   env={**os.environ, "MEDIAFLOW_DATABASE_URL": url},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fill_sqlite(path: str, users: dict[uuid.UUID, int]) -> None:
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO mf_user (id, email, username, hashed_password, is_active, "
                       "is_superuser, is_verified) VALUES (?, ?, ?, 'x', 1, 0, 1)",
                       [(str(u), f"{u}@example.com", u.hex[:12]) for u in users])
        db.executemany(f"INSERT INTO mf_job ({COLUMNS}) VALUES (?, ?, 'trim', 'completed', "  # noqa: S608
                       "'{\"type\": \"trim\"}', '[]', '[]', '{}', '{}', 0, ?, 3, ?, ?)",
                       [(str(i), str(u), w, t.isoformat(), t.isoformat())
                        for i, u, w, t in jobs_of(users)])


async def fill_postgres(url: str, users: dict[uuid.UUID, int]) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.executemany("INSERT INTO mf_user (id, email, username, hashed_password, "
                             "is_active, is_superuser, is_verified) VALUES "
                             "($1, $2, $3, 'x', true, false, true)",
                             [(u, f"{u}@example.com", u.hex[:12]) for u in users])
        await db.executemany(f"INSERT INTO mf_job ({COLUMNS}) VALUES ($1, $2, 'trim', "  # noqa: S608
                             "'completed', '{\"type\": \"trim\"}', '[]', '[]', '{}', '{}', 0, "
                             "$3, 3, $4, $4)", jobs_of(users))
        await db.execute("ANALYZE")
    finally:
        await db.close()


@asynccontextmanager
async def sqlite_database(users: dict[uuid.UUID, int], _: str) -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-list-") as directory:
        path = f"{directory}/list.sqlite"
        migrate(f"sqlite:///{path}")
        fill_sqlite(path, users)
        yield f"sqlite:///{path}"


@asynccontextmanager
async def postgres_database(users: dict[uuid.UUID, int], server: str) -> AsyncIterator[str]:
    url = await create_database(server, "mediaflow_bench")
    try:
        migrate(url)
        await fill_postgres(url, users)
        yield url
    finally:
        await drop_database(url)


async def page_ms(user: uuid.UUID, rounds: int = 5, reads: int = 20) -> float:
    """Milliseconds per first page of ``user``'s jobs: the best of ``rounds`` medians."""
    from api.job_control import page_of_jobs

    best = float("inf")
    for _ in range(rounds):
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            await page_of_jobs(20, 0, user, None, None)
            times.append(time.perf_counter() - started)
        best = min(best, statistics.median(times))
    return best * 1000


async def measure(name: str, database: Callable, jobs: int, server: str) -> None:
    small, large = uuid.uuid4(), uuid.uuid4()
    async with database({small: SMALL, large: jobs}, server) as url:
        engine = engine_for(url)
        await start_pool(engine)
        bind_tables(engine)
        try:
            few, many = await page_ms(small), await page_ms(large)
        finally:
            await close_pool(engine)
    print(f"{name:10} a page of 20: {SMALL} jobs {few:6.2f} ms, {jobs:,} jobs {many:6.2f} ms; "
          f"ratio {many / few:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                        metavar="SERVER", help="where a database for the run is made")
    args = parser.parse_args()
    os.environ.setdefault("MEDIAFLOW_ENV", "dev")
    asyncio.run(measure("SQLite", sqlite_database, args.jobs, ""))
    asyncio.run(measure("PostgreSQL", postgres_database, args.jobs, args.postgres.rstrip("/")))


if __name__ == "__main__":
    main()
