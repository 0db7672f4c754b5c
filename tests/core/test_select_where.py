"""``core.db.select_where`` returns exactly what Piccolo's select returns, on both
databases: the hot read paths use it instead (it skips the query compiler)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from core.db import TOTAL_COLUMN, count_where, page_where, select_where, write_transaction
from core.tables import Job, MediaFile
from tests.utils.apps import fresh_sqlite
from tests.utils.users import create_user


async def rows_of_every_shape() -> tuple[uuid.UUID, uuid.UUID]:
    user, _ = await create_user()
    job = Job(user=user.id, type="text_overlay", spec={"type": "text_overlay", "n": 1.5},
              input_files=[str(uuid.uuid4())], progress={"percent": 12.5, "eta": None},
              error={"code": "X", "message": "é ✓"}, workflow_id=f"job-{uuid.uuid4()}",
              template_id=uuid.uuid4())
    await job.save()
    media = MediaFile(user=user.id, filename="a.mp4", original_filename="a.mp4", size=10,
                      content_type="video/mp4", kind="video", storage_key="k",
                      checksum_sha256="0" * 64, metadata={"duration": 1.0}, job=job.id,
                      is_deleted=True, deleted_at=dt.datetime.now(dt.UTC), error=None)
    await media.save()
    return job.id, media.id


def kinds(row: dict) -> dict[str, type]:
    """Each value's type; Piccolo's JSON values are dict and list subclasses."""
    return {k: dict if isinstance(v, dict) else list if isinstance(v, list) else type(v)
            for k, v in row.items()}


async def assert_same_as_piccolo() -> None:
    job_id, file_id = await rows_of_every_shape()
    for table, key in ((Job, job_id), (MediaFile, file_id)):
        expected = await table.select().where(table.id == key).output(load_json=True)
        got = await select_where(table, '"id" = {}', key)
        assert got == expected
        assert [kinds(row) for row in got] == [kinds(row) for row in expected]
    assert await select_where(MediaFile, '"id" = {} AND "is_deleted" = {}', file_id,
                              False) == []
    assert await select_where(Job, '"id" = {}', uuid.uuid4()) == []
    assert await count_where(Job, '"id" = {} AND "status" = {}', job_id, "pending") == 1
    assert await count_where(Job, '"id" = {}', uuid.uuid4()) == 0
    paged = await select_where(Job, '"id" = {} ORDER BY "created_at" LIMIT {} OFFSET {}',
                               job_id, 1, 0)
    assert [row["id"] for row in paged] == [job_id]
    # named columns: those only, decoded the same; a wide JSON column left out
    wanted = (MediaFile.id, MediaFile.kind, MediaFile.metadata, MediaFile.is_deleted)
    expected = await MediaFile.select(*wanted).where(MediaFile.id == file_id).output(
        load_json=True)
    got = await select_where(MediaFile, '"id" = {}', file_id,
                             columns=tuple(column._meta.name for column in wanted))
    assert got == expected and set(got[0]) == {"id", "kind", "metadata", "is_deleted"}
    assert [kinds(row) for row in got] == [kinds(row) for row in expected]
    either = await select_where(MediaFile, '"id" IN ({}, {})', file_id, uuid.uuid4(),
                                columns=("id",))
    assert either == [{"id": file_id}]
    rows, total = await page_where(Job, '"id" = {}', '"created_at"', 5, 0, job_id,
                                   columns=("id", "spec"))
    assert (rows, total) == ([{"id": job_id, "spec": {"type": "text_overlay", "n": 1.5}}], 1)


async def assert_pages() -> None:
    user, _ = await create_user()
    made = []
    for n in range(5):
        job = Job(user=user.id, type="trim", workflow_id=f"job-{uuid.uuid4()}", spec={"n": n},
                  status="failed" if n % 2 else "completed",
                  created_at=dt.datetime(2026, 1, 1, 0, 0, n, tzinfo=dt.UTC))
        await job.save()
        made.append(job.id)
    mine = '"user" = {}'
    rows, total = await page_where(Job, mine, '"created_at" DESC', 2, 1, user.id)
    assert [row["id"] for row in rows] == [made[3], made[2]] and total == 5
    assert rows[0]["spec"] == {"n": 3} and TOTAL_COLUMN not in rows[0]
    every, total = await page_where(Job, mine, '"created_at"', 10, 0, user.id)
    assert total == 5 and every == await select_where(Job, mine + ' ORDER BY "created_at"',
                                                      user.id)
    assert await page_where(Job, mine, '"created_at"', 2, 9, user.id) == ([], 5)  # past the end
    assert await page_where(Job, mine, '"created_at"', 2, 0, uuid.uuid4()) == ([], 0)
    # the total counts what the condition selects, its parameters given to both counts
    failed, total = await page_where(Job, mine + ' AND "status" = {}', '"created_at"', 1, 1,
                                     user.id, "failed")
    assert [row["id"] for row in failed] == [made[3]] and total == 2


async def test_postgres(db_engine: object) -> None:
    await assert_same_as_piccolo()
    await assert_pages()


async def test_sqlite(tmp_path: Path) -> None:
    async with fresh_sqlite(tmp_path):
        await assert_same_as_piccolo()
        await assert_pages()


async def assert_a_transaction_reads_its_own_writes() -> None:
    """Outside a transaction a read goes straight to the engine's reader connection or
    pool; inside one it must see what the transaction wrote and has not committed."""
    user, _ = await create_user()
    async with write_transaction(Job._meta.db):
        job = Job(user=user.id, type="trim", workflow_id=f"job-{uuid.uuid4()}", spec={})
        await job.save()
        assert [row["id"] for row in await select_where(Job, '"id" = {}', job.id)] == [job.id]
        assert await count_where(Job, '"id" = {}', job.id) == 1


async def test_postgres_in_a_transaction_reads_on_its_connection(db_engine: object) -> None:
    await assert_a_transaction_reads_its_own_writes()


async def test_sqlite_in_a_transaction_reads_on_its_connection(tmp_path: Path) -> None:
    async with fresh_sqlite(tmp_path):
        await assert_a_transaction_reads_its_own_writes()


async def test_the_jobs_list_filters_orders_and_pages(client, headers: dict) -> None:  # noqa: ANN001
    """``GET /jobs`` (page_of_jobs on select_where/count_where): filters combine, newest
    first, ``total`` counts the filtered set, not the page."""
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    made = []
    for n, (type_, status_) in enumerate([("trim", "failed"), ("trim", "completed"),
                                          ("trim", "failed"), ("join", "failed")]):
        job = Job(user=uuid.UUID(me["id"]), type=type_, status=status_,
                  workflow_id=f"job-{uuid.uuid4()}", spec={"type": type_},
                  created_at=dt.datetime(2026, 1, 1, 0, 0, n, tzinfo=dt.UTC))
        await job.save()
        made.append(str(job.id))

    async def ids(query: str) -> tuple[list[str], int]:
        body = (await client.get(f"/api/v1/jobs?{query}", headers=headers)).json()
        return [item["id"] for item in body["items"]], body["total"]

    assert await ids("limit=10") == (made[::-1], 4)
    assert await ids("status=failed&type=trim&limit=10") == ([made[2], made[0]], 2)
    assert await ids("status=failed&limit=1&offset=1") == ([made[2]], 3)
    assert await ids("type=join&status=completed") == ([], 0)


async def test_columns_must_be_column_names() -> None:
    """Column names are the code's own, but a list is joined into SQL: anything that is
    not a plain lower-case name is refused before a query is made."""
    for bad in (('"id"',), ("id; DROP TABLE mf_job",), ("id, probe",), ("",), ("ID",)):
        with pytest.raises(ValueError, match="not column names"):
            await select_where(MediaFile, '"id" = {}', uuid.uuid4(), columns=bad)
